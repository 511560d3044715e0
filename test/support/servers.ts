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
 * A loopback port where connecting hangs, in Node alone: a child listens with backlog 1 and then
 * blocks its event loop, so it never accepts; once two connections fill the accept queue, the
 * kernel drops further SYNs and a connect neither succeeds nor fails.
 */
export async function blackhole(): Promise<{ port: number; close(): void }> {
  const { spawn } = await import('node:child_process');
  const src = `const s = require('net').createServer(); s.listen(0, '127.0.0.1', 1, () => {
    require('fs').writeSync(1, s.address().port + '\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
  });`;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('error', reject);
  });
  // Linux queues backlog + 1 = 2 completed handshakes for a listener that never accepts; two
  // fillers fill the queue, and every later SYN is dropped.
  const fillers = [0, 1].map(() => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    return s;
  });
  await Promise.all(fillers.map((s) => new Promise((r) => s.once('connect', r))));
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

/** Download source: reads a decimal byte count, then sends that many bytes. */
export const sourceServer = () =>
  listen((s) => {
    s.once('data', (d) => {
      let left = Number(String(d));
      const block = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, block.length);
          left -= n;
          if (!s.write(n === block.length ? block : block.subarray(0, n))) return void s.once('drain', pump);
        }
      };
      pump();
    });
  });
