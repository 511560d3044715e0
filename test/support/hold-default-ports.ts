/**
 * vitest globalSetup: holds the companion's default ports (TCP 8080, 8081 and 8082, UDP 8443 on
 * 127.0.0.1) for the whole run, as an `npm start` in another checkout would. A test that binds a
 * fixed port, or starts the companion without choosing port 0, then fails here as it would there.
 * A port something else already holds is left to it: it is just as taken.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export const DEFAULT_TCP_PORTS = [8080, 8081, 8082];
export const DEFAULT_UDP_PORTS = [8443];

function holdTcp(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const server = net.createServer((s) => s.destroy());
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function holdUdp(port: number): Promise<dgram.Socket | null> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(null));
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

export default async function setup(): Promise<() => Promise<void>> {
  const tcp = await Promise.all(DEFAULT_TCP_PORTS.map(holdTcp));
  const udp = await Promise.all(DEFAULT_UDP_PORTS.map(holdUdp));
  return async () => {
    await Promise.all(tcp.map((s) => s && new Promise<void>((r) => s.close(() => r()))));
    for (const s of udp) s?.close();
  };
}
