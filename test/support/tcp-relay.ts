/**
 * A TCP relay for tests and benchmarks: it adds a delay each way (0: none) and counts the bytes it
 * carries, so a test can show what crossed it (TURN over TLS) and a benchmark can add RTT.
 */
import net from 'node:net';

/** A TCP relay that holds every chunk `oneWayMs` in each direction: +2×oneWayMs of RTT. */
export interface DelayRelay {
  port: number;
  /** Bytes carried so far: toward the target (up) and back (down). */
  bytes: { up: number; down: number };
  close(): void;
}

/** A TCP relay that adds `oneWayMs` each way (0: none) and counts the bytes it carries. */
export function delayRelay(targetPort: number, oneWayMs: number): Promise<DelayRelay> {
  const bytes = { up: 0, down: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pipe = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
      from.on('data', (chunk) => {
        bytes[dir] += chunk.length;
        if (oneWayMs > 0) setTimeout(() => to.write(chunk), oneWayMs);
        else to.write(chunk);
      });
      from.on('end', () => (oneWayMs > 0 ? setTimeout(() => to.end(), oneWayMs) : to.end()));
      from.on('error', () => to.destroy());
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        bytes,
        close: () => server.close(),
      }),
    ),
  );
}
