/**
 * The edge under load, then under load and attack at once (real process, loopback): 1,000 meek
 * sessions × 10 streams trickling data from 32 client addresses, and one legitimate client whose
 * download throughput and ping-pong latency are measured; the edge's RSS and CPU alongside. The
 * attacks are the ones docs/DEPLOY.md defends against: a control-frame flood, the session table
 * filled with one-shot sessions, destinations flooding streams whose client never polls, and
 * probes without the token. Everything is bounded in count and time and stops by itself.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { meekMux } from '../support/node-meek.ts';
import { cpuSeconds, rssBytes, startCompanion, type Companion } from '../support/processes.ts';
import { echoServer, sourceServer, type TestServer } from '../support/servers.ts';

export interface LoadFigures {
  rssMiB: number;
  cpuPercent: number;
  downloadMBs: number;
  pingMs: number;
}

const SESSIONS = 1000;
const STREAMS = 10;
const ADDRESSES = 64;
const WINDOW_MS = 15_000;
/** What each background address may hold (16 sessions each): an attacker's address gets the same. */
export const LOAD_SHARE = 32;
export const LOAD_MEMORY = 4 * 1024 ** 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The background: sessions × streams from many addresses, each stream echoing 1 KiB every 2 s. */
async function background(edge: Companion, echo: TestServer): Promise<() => void> {
  const agents = Array.from({ length: ADDRESSES }, (_, i) => new http.Agent({ keepAlive: true, maxSockets: 64, localAddress: `127.0.1.${i + 1}` }));
  const lanes: Array<ReturnType<typeof meekMux>> = [];
  const timers: NodeJS.Timeout[] = [];
  const piece = randomBytes(1024);
  for (let i = 0; i < SESSIONS; i++) {
    const lane = meekMux({ url: `${edge.url}/`, agent: agents[i % ADDRESSES]! });
    lanes.push(lane);
    const streams = Array.from({ length: STREAMS }, () => {
      const s = lane.mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port });
      s.attach({ data: (p) => s.consume(p.length), reset: () => undefined });
      return s;
    });
    timers.push(setInterval(() => streams.forEach((s) => s.write(piece)), 2000 + (i % 200)));
    if (i % 50 === 49) await sleep(100); // open gradually
  }
  return () => {
    timers.forEach(clearInterval);
    for (const l of lanes) {
      l.session.close();
      l.mux.destroy();
    }
    agents.forEach((a) => a.destroy());
  };
}

/** The legitimate client: download throughput and ping-pong latency, measured for `ms`. */
async function legitimate(edge: Companion, echo: TestServer, source: TestServer, ms: number): Promise<{ downloadMBs: number; pingMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4, localAddress: '127.0.2.1' });
  const rates: number[] = [];
  const pings: number[] = [];
  const end = Date.now() + ms;
  try {
    while (Date.now() < end) {
      const lane = meekMux({ url: `${edge.url}/`, agent });
      // Ping-pong: 20 sequential 64-byte echoes.
      const ping = lane.mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port });
      let answered: (() => void) | null = null;
      let failed: ((e: Error) => void) | null = null;
      ping.attach({ data: (p) => (ping.consume(p.length), answered?.()), reset: (c) => failed?.(new Error(`ping stream reset 0x0${c}`)) });
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await new Promise<void>((r, reject) => ((answered = r), (failed = reject), ping.write(randomBytes(64))));
        pings.push(performance.now() - t);
      }
      ping.end();
      // A 4 MiB download.
      const size = 4 * 1024 * 1024;
      const t = performance.now();
      await new Promise<void>((resolve, reject) => {
        const s = lane.mux.open({ type: 'ipv4', host: '127.0.0.1', port: source.port });
        let got = 0;
        s.attach({ data: (p) => ((got += p.length), s.consume(p.length), got >= size && resolve()), reset: (c) => reject(new Error(`reset ${c}`)) });
        s.write(new TextEncoder().encode(String(size)));
      });
      rates.push(size / 1e6 / ((performance.now() - t) / 1000));
      lane.session.close();
    }
  } finally {
    agent.destroy();
  }
  return { downloadMBs: median(rates), pingMs: median(pings) };
}

/** All the attacks at once, from their own process (so they do not starve the measuring client), until stopped. */
function attacks(edge: Companion): () => Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./edge-attacker.js', import.meta.url)), String(edge.port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

async function measure(edge: Companion, echo: TestServer, source: TestServer): Promise<LoadFigures> {
  const pid = edge.child.pid!;
  const cpu0 = await cpuSeconds(pid);
  const t0 = performance.now();
  const legit = await legitimate(edge, echo, source, WINDOW_MS);
  const cpu = ((await cpuSeconds(pid)) - cpu0) / ((performance.now() - t0) / 1000);
  return { rssMiB: (await rssBytes(pid)) / 2 ** 20, cpuPercent: 100 * cpu, ...legit };
}

export async function benchEdgeLoad(): Promise<{ quiet: LoadFigures; attacked: LoadFigures }> {
  // 10,000 streams commit 10,000 windows of 256 KiB (2.5 GiB): the memory budget must allow them (DEPLOY.md).
  const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--max-sessions', '2000', '--max-sessions-per-client', String(LOAD_SHARE), '--max-memory', String(LOAD_MEMORY), '--log-level', 'warn']);
  const echo = await echoServer();
  const source = await sourceServer();
  let stopBackground: (() => void) | null = null;
  try {
    stopBackground = await background(edge, echo);
    await sleep(3000); // let the background settle into its rhythm
    const quiet = await measure(edge, echo, source);
    const stopAttacks = attacks(edge);
    const attacked = await measure(edge, echo, source);
    await stopAttacks();
    return { quiet, attacked };
  } finally {
    stopBackground?.();
    await edge.stop();
    await Promise.all([echo.close(), source.close()]);
  }
}
