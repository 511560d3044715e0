/**
 * A real HTTP reverse proxy in front of an edge that loses every Nth POST's answer after the edge
 * has processed it — what a flaky CDN or a censor's RST does. The client must retry the same seq
 * and get the edge's stored reply. Fault injection lives here, never in the edge.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DroppingProxy {
  port: number;
  url: string;
  dropped: number;
  close(): Promise<void>;
}

export async function droppingProxy(targetPort: number, dropEvery: number): Promise<DroppingProxy> {
  const agent = new http.Agent({ keepAlive: true });
  let posts = 0;
  const self = { dropped: 0 } as DroppingProxy;
  const server = http.createServer((req, res) => {
    const drop = req.method === 'POST' && ++posts % dropEvery === 0;
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
      const parts: Buffer[] = [];
      upRes.on('data', (c: Buffer) => parts.push(c));
      upRes.on('end', () => {
        if (drop) {
          self.dropped++;
          return void req.socket.destroy(); // processed at the edge; the client never hears
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        res.end(Buffer.concat(parts));
      });
    });
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.port = (server.address() as AddressInfo).port;
  self.url = `http://127.0.0.1:${self.port}`;
  self.close = () =>
    new Promise<void>((resolve) => {
      agent.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return self;
}
