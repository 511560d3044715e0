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
