/**
 * meek/remux throughput through the real edge process on loopback, driven by the Node meek client
 * built from shared/, with no added delay and with 50 ms added RTT (a delaying TCP relay in
 * front of the edge). Also the edge's memory with 1,000 idle sessions.
 */
import http from 'node:http';
import { startCompanion, rssBytes, type Companion } from '../support/processes.ts';
import { listen, sourceServer, type TestServer } from '../support/servers.ts';
import { meekMux, type NodeMeekOptions } from '../support/node-meek.ts';
import { delayRelay } from '../support/tcp-relay.ts';
import type { MeekMux } from '../../shared/meek/meek-mux.ts';

export interface ThroughputResult {
  direction: 'up' | 'down';
  sessions: number;
  rttMs: number;
  mbPerSecond: number;
  boundMbPerSecond: number | null;
}

/**
 * Moves `bytesPerSession` in one direction over `sessions` parallel meek sessions; MB/s. The
 * sessions are meek v1 over plain HTTP unless `client` makes them otherwise.
 */
export async function transfer(
  edgeUrl: string,
  target: TestServer,
  direction: 'up' | 'down',
  sessions: number,
  bytesPerSession: number,
  client?: { agent: http.Agent; options?: Partial<NodeMeekOptions>; made?: (c: MeekMux) => void },
): Promise<number> {
  const agent = client?.agent ?? new http.Agent({ keepAlive: true, maxSockets: sessions * 2 });
  const clients = Array.from({ length: sessions }, () => {
    const c = meekMux({ url: edgeUrl, agent, ...client?.options });
    client?.made?.(c);
    return c;
  });
  const chunk = new Uint8Array(64 * 1024);
  const start = process.hrtime.bigint();
  await Promise.all(
    clients.map(
      ({ mux }) =>
        new Promise<void>((resolve, reject) => {
          const s = mux.open({ type: 'ipv4', host: '127.0.0.1', port: target.port });
          let got = 0;
          s.attach({
            data: (p) => {
              got += p.length;
              s.consume(p.length);
              if (direction === 'down' && got >= bytesPerSession) resolve();
            },
            end: () => (direction === 'up' ? resolve() : reject(new Error(`early end after ${got}`))),
            reset: (code) => reject(new Error(`reset ${code}`)),
          });
          if (direction === 'up') {
            void (async () => {
              for (let sent = 0; sent < bytesPerSession; sent += chunk.length) {
                if (!s.write(chunk)) await new Promise<void>((r) => s.attach({ drain: r }));
              }
              s.end();
            })();
          } else {
            s.write(new TextEncoder().encode(String(bytesPerSession)));
          }
        }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  for (const c of clients) c.session.close();
  if (!client) agent.destroy();
  return (sessions * bytesPerSession) / 1e6 / seconds;
}

/** Upload sink: reads everything, and answers "done" at the end so the sender knows it all landed. */
const sinkServer = () =>
  listen((s) => {
    s.on('data', () => {});
    s.on('end', () => s.end());
  });

export async function benchEdgeThroughput(): Promise<ThroughputResult[]> {
  const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--log-level', 'warn']);
  const sink = await sinkServer();
  const source = await sourceServer();
  const results: ThroughputResult[] = [];
  const maxBody = 262144;
  try {
    for (const rttMs of [0, 50]) {
      const relay = rttMs ? await delayRelay(edge.port, rttMs / 2) : null;
      const url = relay ? `http://127.0.0.1:${relay.port}/` : `${edge.url}/`;
      for (const sessions of [1, 4]) {
        for (const direction of ['up', 'down'] as const) {
          const bytes = rttMs ? 8 * 1024 * 1024 : 64 * 1024 * 1024;
          const mb = await transfer(url, direction === 'up' ? sink : source, direction, sessions, bytes);
          results.push({ direction, sessions, rttMs, mbPerSecond: mb, boundMbPerSecond: rttMs ? ((maxBody / (rttMs / 1000)) * sessions) / 1e6 : null });
        }
      }
      relay?.close();
    }
  } finally {
    await edge.stop();
    await sink.close();
    await source.close();
  }
  return results;
}

/** The edge's resident memory with 1,000 idle remux sessions (each opened by one poll). */
export async function benchIdleSessions(count = 1000): Promise<{ baseline: number; withSessions: number }> {
  // One client address here: its share of the table is lifted. Empty sessions end after 10 s; this measures before that.
  const edge: Companion = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--log-level', 'warn', '--max-sessions', String(count), '--max-sessions-per-client', String(count)]);
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const post = (id: string) =>
      new Promise<number>((resolve, reject) => {
        const r = http.request(`${edge.url}/`, { method: 'POST', agent, headers: { 'x-session-id': id, 'x-meek-seq': '1', 'content-length': '0' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        r.on('error', reject);
        r.end();
      });
    const baseline = await rssBytes(edge.child.pid!);
    for (let i = 0; i < count; i += 50) {
      const statuses = await Promise.all(Array.from({ length: 50 }, (_, j) => post(`idle-session-${i + j}`.padEnd(16, 'x'))));
      if (statuses.some((s) => s !== 200)) throw new Error(`idle session setup got ${statuses.find((s) => s !== 200)}`);
    }
    const health = (await (await fetch(`${edge.adminUrl}/healthz`)).json()) as { sessions: number };
    if (health.sessions !== count) throw new Error(`expected ${count} sessions, edge reports ${health.sessions}`);
    const withSessions = await rssBytes(edge.child.pid!);
    agent.destroy();
    return { baseline, withSessions };
  } finally {
    await edge.stop();
  }
}
