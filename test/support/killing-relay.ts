/**
 * A TCP relay that kills every connection it carries after a random 0.5–1 s (both sides
 * destroyed mid-flight, as Psiphon's TestMeekResiliency does), with a seeded lifetime so a
 * failing run can be replayed. Counts the kills.
 */
import net from 'node:net';
import { seeded } from './fake-clock.ts';

export interface KillingRelay {
  port: number;
  kills: number;
  close(): Promise<void>;
}

export async function killingRelay(targetPort: number, seed = 1, minMs = 500, maxMs = 1000): Promise<KillingRelay> {
  const random = seeded(seed);
  const open = new Set<net.Socket>();
  const self = { kills: 0 } as KillingRelay;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    open.add(client).add(upstream);
    const timer = setTimeout(() => {
      self.kills++;
      client.destroy();
      upstream.destroy();
    }, minMs + random() * (maxMs - minMs));
    const done = () => {
      clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.port = (server.address() as net.AddressInfo).port;
  self.close = () =>
    new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    });
  return self;
}
