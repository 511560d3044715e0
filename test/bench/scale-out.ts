/**
 * Several edges behind the real HAProxy (deploy/haproxy.cfg, TLS at HAProxy): aggregate meek v2
 * throughput of 16 streaming sessions with 1, 2 and 4 edges on this machine, the edges' and
 * HAProxy's resident memory after the run, and how evenly the sessions spread (the stick table).
 */
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuSeconds, rssBytes, startCompanion, type Companion } from '../support/processes.ts';
import { listen, sourceServer } from '../support/servers.ts';
import { edgePorts, selfSigned, startHaproxy } from '../support/reverse-proxies.ts';
import { transfer } from './edge-throughput.ts';
import type { MeekMux } from '../../shared/meek/meek-mux.ts';

export interface ScaleOutResult {
  edges: number;
  sessions: number;
  downMBs: number;
  upMBs: number;
  /** Sum over the edges, after the run. */
  edgesRssMiB: number;
  haproxyRssMiB: number;
  /** Sessions per edge (both runs), from HAProxy's stick table. */
  spread: number[];
  /** CPU seconds each edge spent on both runs, and HAProxy's. */
  edgeCpu: number[];
  haproxyCpu: number;
}

const SESSIONS = 16;
const BYTES = 16 * 1024 * 1024;

export async function benchScaleOut(counts = [1, 2, 4]): Promise<ScaleOutResult[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-bench-scale-'));
  const tls = selfSigned(dir);
  const source = await sourceServer();
  const sink = await listen((s) => {
    s.on('data', () => {});
    s.on('end', () => s.end());
  });
  const results: ScaleOutResult[] = [];
  try {
    for (const n of counts) {
      const edges: Companion[] = await Promise.all(
        Array.from({ length: n }, () => startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--trusted-proxy', '127.0.0.1', '--max-sessions-per-client', '1000', '--log-level', 'warn'])),
      );
      const haproxy = await startHaproxy({ edges: edges.map(edgePorts), tls });
      try {
        await haproxy.untilReady(n);
        const url = `https://127.0.0.1:${haproxy.port}/`;
        const agent = new https.Agent({ keepAlive: true, maxSockets: SESSIONS * 3, ca: tls.ca });
        const made: MeekMux[] = [];
        const client = { agent, options: { version: 2 as const }, made: (c: MeekMux) => made.push(c) };
        const cpu0 = await Promise.all(edges.map((e) => cpuSeconds(e.child.pid!)));
        const haproxyCpu0 = await cpuSeconds(haproxy.pid!);
        const downMBs = await transfer(url, source, 'down', SESSIONS, BYTES, client);
        const upMBs = await transfer(url, sink, 'up', SESSIONS, BYTES, client);
        agent.destroy();
        const edgeCpu = await Promise.all(edges.map(async (e, i) => (await cpuSeconds(e.child.pid!)) - cpu0[i]!));
        const haproxyCpu = (await cpuSeconds(haproxy.pid!)) - haproxyCpu0;
        const table = await haproxy.stickTable();
        const spread = Array.from({ length: n }, () => 0);
        for (const c of made) {
          const at = table.get(c.session.id);
          if (at) spread[at - 1]!++;
        }
        const edgesRss = (await Promise.all(edges.map((e) => rssBytes(e.child.pid!)))).reduce((a, b) => a + b, 0);
        results.push({ edges: n, sessions: SESSIONS, downMBs, upMBs, edgesRssMiB: edgesRss / 2 ** 20, haproxyRssMiB: (await rssBytes(haproxy.pid!)) / 2 ** 20, spread, edgeCpu, haproxyCpu });
      } finally {
        await haproxy.close();
        await Promise.all(edges.map((e) => e.stop()));
      }
    }
  } finally {
    await source.close();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
