/** Small real TCP servers the tunnel dials in tests: echo, sink, source, RST. */
import net from 'node:net';

export interface TestServer {
  port: number;
  connections: net.Socket[];
  close(): Promise<void>;
}

export function listen(onConnection: (socket: net.Socket) => void, host = '127.0.0.1'): Promise<TestServer> {
  const connections: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections.push(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        connections,
        close: () =>
          new Promise<void>((r) => {
            for (const c of connections) c.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

/** Echoes everything and half-closes when the peer does. */
export const echoServer = () =>
  listen((s) => {
    s.pipe(s);
  });

/**
 * A loopback port where connecting hangs: a listener with backlog 0 that never accepts (one
 * connection fills the queue, later SYNs are dropped). Python's socket API can do what Node's
 * auto-accepting net.Server cannot; it stays on 127.0.0.1.
 */
export async function blackhole(): Promise<{ port: number; close(): void }> {
  const { spawn } = await import('node:child_process');
  const py = spawn('python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)']);
  const port = await new Promise<number>((resolve, reject) => {
    py.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    py.once('error', reject);
  });
  const filler = net.connect({ host: '127.0.0.1', port });
  filler.on('error', () => {});
  await new Promise((r) => filler.once('connect', r));
  return {
    port,
    close() {
      filler.destroy();
      py.kill();
    },
  };
}
