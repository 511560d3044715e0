/**
 * Several edges as one service behind Debian's HAProxy, with deploy/haproxy.cfg as shipped:
 * every request of a session reaches one edge (pipelined uploads and streaming downloads too),
 * sessions spread, the client address travels in PROXY v2 (and on to a raw upstream), a killed
 * edge costs only its own sessions, and a SIGTERM'd edge drains: out of balancing first, its
 * sessions told to move, its open streams finished, then it exits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCompanion, streamsOpened as edgeStreamsOpened, type Companion } from '../support/processes.ts';
import { echoServer, listen, type TestServer } from '../support/servers.ts';
import { meekMux } from '../support/node-meek.ts';
import { exchange } from '../support/stream-exchange.ts';
import { edgePorts, selfSigned, startHaproxy, type Haproxy } from '../support/reverse-proxies.ts';
import { concat } from '../support/bytes.ts';
import { waitFor } from '../support/wait.ts';
import { decodeProxyV2 } from '../../shared/proxy-protocol.ts';
import { encodeDestination } from '../../shared/eagersocks.ts';
import { startWebTransportClient } from '../support/webtransport-client.ts';
import type { MeekMux } from '../../shared/meek/meek-mux.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ECHO = (port: number) => ({ type: 'ipv4' as const, host: '127.0.0.1', port });
const EDGE_ARGS = ['--listen', '127.0.0.1:0', '--path', '/m/', '--allow-private', '--trusted-proxy', '127.0.0.1', '--drain-notice', '1', '--log-level', 'warn'];

/** A stream that echoes a message at a time: ping-pong keeps it busy for as long as the test wants. */
function pingPong(stream: MuxStream) {
  let got: Uint8Array[] = [];
  let waiting: { want: number; resolve(b: Uint8Array): void; reject(e: Error): void } | null = null;
  let failed: Error | null = null;
  let endedBy: (() => void) | null = null;
  const ended = new Promise<void>((r) => (endedBy = r));
  let isEnded = false;
  const check = () => {
    const have = got.reduce((n, p) => n + p.length, 0);
    if (waiting && have >= waiting.want) {
      const all = concat(got);
      got = [all.subarray(waiting.want)];
      waiting.resolve(all.subarray(0, waiting.want));
      waiting = null;
    }
  };
  stream.attach({
    data: (p) => {
      got.push(p.slice());
      stream.consume(p.length);
      check();
    },
    end: () => {
      isEnded = true;
      endedBy!();
    },
    reset: (code) => {
      failed = Object.assign(new Error(`reset 0x0${code}`), { code });
      waiting?.reject(failed);
    },
  });
  return {
    /** The edge ended the stream (FIN toward us). */
    ended,
    get isEnded() {
      return isEnded;
    },
    async round(size = 8192): Promise<void> {
      if (failed) throw failed;
      const msg = randomBytes(size);
      const back = new Promise<Uint8Array>((resolve, reject) => {
        waiting = { want: size, resolve, reject };
      });
      stream.write(msg);
      check();
      expect(sha(await back)).toBe(sha(msg));
    },
    end: () => stream.end(),
  };
}

describe('edges behind HAProxy (deploy/haproxy.cfg)', () => {
  let dir: string;
  let tls: ReturnType<typeof selfSigned>;
  let echo: TestServer;
  let edges: Companion[];
  let haproxy: Haproxy;
  let url: string;
  const clients: MeekMux[] = [];
  const client = (o: { localAddress?: string; version?: 1 | 2 } = {}) => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: tls.ca, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const c = meekMux({ url, version: o.version ?? 2, agent });
    clients.push(c);
    return c;
  };
  /** A GET over HTTPS trusting the test's certificate, its JSON answer. */
  const getJson = (target: string, headers: Record<string, string>) =>
    new Promise<unknown>((resolve, reject) => {
      https
        .get(target, { ca: tls.ca, headers, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve(JSON.parse(text)));
        })
        .on('error', reject);
    });
  const streamsOpened = async (e: Companion) => (await edgeStreamsOpened(e.adminUrl)).webtransport;
  /** Which edge (0-based) HAProxy holds a session to. */
  const edgeOf = async (c: MeekMux) => (await haproxy.stickTable()).get(c.session.id)! - 1;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'passage-scale-'));
    tls = selfSigned(dir);
    echo = await echoServer();
    edges = await Promise.all([0, 1, 2].map(() => startCompanion(['edge', ...EDGE_ARGS, '--max-sessions-per-client', '200'])));
    haproxy = await startHaproxy({ edges: edges.map(edgePorts), tls });
    await haproxy.untilReady(3);
    url = `https://127.0.0.1:${haproxy.port}/m/`;
  });
  afterAll(async () => {
    for (const c of clients) c.session.close();
    await haproxy?.close();
    await Promise.all((edges ?? []).map((e) => e.stop('SIGKILL')));
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('affinity: 30 meek v2 sessions (pipelined, streaming) and 6 v1 ones each carry 256 KiB both ways byte-exact; each lives on one edge, all three used', async () => {
    const v2 = Array.from({ length: 30 }, () => client());
    const v1 = Array.from({ length: 6 }, () => client({ version: 1 }));
    await Promise.all(
      [...v2, ...v1].map(async (c) => {
        const data = randomBytes(256 * 1024);
        expect(sha(await exchange(c.mux.open(ECHO(echo.port)), data))).toBe(sha(data));
      }),
    );
    expect(v2.filter((c) => c.session.mode === 'stream').length).toBe(30);
    const table = await haproxy.stickTable();
    const perEdge = [0, 0, 0];
    for (const c of [...v2, ...v1]) perEdge[table.get(c.session.id)! - 1]!++;
    expect(perEdge.reduce((a, b) => a + b)).toBe(36);
    expect(Math.min(...perEdge)).toBeGreaterThan(0);
    // No request of a session reached another edge: that would have been a 410 (v2) or a second session (v1).
    const opened = await Promise.all(edges.map(async (e) => Number(/^passage_edge_sessions (\d+)/m.exec(await (await fetch(`${e.adminUrl}/metrics`)).text())?.[1] ?? 0)));
    expect(opened).toEqual(perEdge);
    for (const c of [...v2, ...v1]) c.session.close();
  });

  it('the client address travels in PROXY v2: per-client limits count each client, not HAProxy', async () => {
    const limited = await startCompanion(['edge', ...EDGE_ARGS, '--max-sessions-per-client', '2']);
    const one = await startHaproxy({ edges: [edgePorts(limited)], tls });
    try {
      await one.untilReady(1);
      const first = (localAddress: string) =>
        new Promise<number>((resolve, reject) => {
          const r = https.request(
            { host: '127.0.0.1', port: one.port, path: '/m/', method: 'POST', ca: tls.ca, localAddress, agent: false,
              headers: { 'x-session-id': randomBytes(12).toString('base64url'), 'x-meek-version': '2', 'x-meek-seq': '1', 'x-meek-down': 'poll', 'x-meek-hold': '0' } },
            (res) => (res.resume(), resolve(res.statusCode ?? 0)),
          );
          r.on('error', reject);
          r.end();
        });
      expect([await first('127.0.0.2'), await first('127.0.0.2'), await first('127.0.0.2')]).toEqual([200, 200, 503]);
      expect(await first('127.0.0.3')).toBe(200);
    } finally {
      await one.close();
      await limited.stop();
    }
  });

  it('raw mode through HAProxy, as Tor\'s meek-client drives it; --upstream-proxy-protocol v2 names the client to the upstream, byte-exact', async () => {
    const received: Buffer[] = [];
    let upstreamSocket: net.Socket | null = null;
    const upstream = await listen((s) => {
      upstreamSocket = s;
      s.on('data', (d: Buffer) => {
        received.push(d);
        s.write(d); // echo, header included: the client sees what the upstream got
      });
    });
    const raw = await Promise.all([0, 1].map(() => startCompanion(['edge', '--listen', '127.0.0.1:0', '--path', '/m/', '--mode', 'raw', '--upstream', `127.0.0.1:${upstream.port}`, '--upstream-proxy-protocol', 'v2', '--trusted-proxy', '127.0.0.1', '--log-level', 'warn'])));
    const front = await startHaproxy({ edges: raw.map(edgePorts), tls });
    try {
      await front.untilReady(2);
      // Tor's meek-client: an 11-character id, no seq, one request in flight, polls until the bytes are back.
      const id = randomBytes(8).toString('base64').slice(0, 11);
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: tls.ca, localAddress: '127.0.0.4' });
      const roundTrip = (body: Uint8Array) =>
        new Promise<Buffer>((resolve, reject) => {
          const r = https.request({ host: '127.0.0.1', port: front.port, path: '/m/', method: 'POST', agent, headers: { 'x-session-id': id, 'content-length': String(body.length) } }, (res) => {
            const parts: Buffer[] = [];
            expect(res.statusCode).toBe(200);
            res.on('data', (c: Buffer) => parts.push(c)).on('end', () => resolve(Buffer.concat(parts)));
          });
          r.on('error', reject);
          r.end(body);
        });
      const data = randomBytes(200 * 1024);
      const back: Buffer[] = [];
      for (let at = 0; at < data.length; at += 64 * 1024) back.push(await roundTrip(data.subarray(at, at + 64 * 1024)));
      const header = decodeProxyV2(new Uint8Array(Buffer.concat(received)))!;
      const want = header.length + data.length;
      for (let i = 0; i < 200 && Buffer.concat(back).length < want; i++) back.push(await roundTrip(new Uint8Array(0)));
      expect(header.header).toEqual({ command: 'proxy', family: 'ipv4', transport: 'stream', source: { address: '127.0.0.4', port: expect.any(Number) }, destination: { address: '127.0.0.1', port: front.port } });
      const echoed = Buffer.concat(back);
      expect(sha(echoed.subarray(header.length))).toBe(sha(data));
      expect(sha(Buffer.concat(received).subarray(header.length))).toBe(sha(data));
      agent.destroy();
    } finally {
      (upstreamSocket as net.Socket | null)?.destroy();
      await front.close();
      await Promise.all(raw.map((e) => e.stop()));
      await upstream.close();
    }
  });

  it("WebTransport: discovery through HAProxy hands out one edge's own URL (its --wt-advertise, or its ready line's) and hashes, and that edge carries the session", async () => {
    const wt = await Promise.all(
      [0, 1].map(async (i) => {
        const e = await startCompanion(['edge', ...EDGE_ARGS, '--auth-token', 'scale-out-token-0123456789', '--wt-listen', '127.0.0.1:0', '--config-dir', path.join(dir, `wt-${i}`)]);
        const offer = (await (await fetch(`${e.url}/m/config`, { headers: { 'x-meek-auth': 'scale-out-token-0123456789' } })).json()) as { webtransport: { url: string; certificateHashes: string[] } };
        return { edge: e, offer: offer.webtransport };
      }),
    );
    const front = await startHaproxy({ edges: wt.map((w) => edgePorts(w.edge)), tls });
    const quic = startWebTransportClient();
    const greeter = await listen((socket) => socket.end('hello from the edge\n'));
    try {
      await front.untilReady(2);
      expect(wt[0]!.offer.url).not.toBe(wt[1]!.offer.url);
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const body = ((await getJson(`https://127.0.0.1:${front.port}/m/config`, { 'x-meek-auth': 'scale-out-token-0123456789' })) as { webtransport: { url: string; certificateHashes: string[] } }).webtransport;
        // Always one edge's own pair: its URL with its hashes, never a mix.
        expect(wt.map((w) => w.offer)).toContainEqual(body);
        seen.add(body.url);
      }
      expect(seen.size).toBe(2);
      const chosen = wt[1]!;
      const before = await streamsOpened(chosen.edge);
      const r = await quic.builtin(`${chosen.offer.url}?token=scale-out-token-0123456789`, chosen.offer.certificateHashes[0]!, encodeDestination(ECHO(greeter.port)));
      expect(r).toMatchObject({ ready: true, fin: true, text: 'hello from the edge\n' });
      expect(await streamsOpened(chosen.edge)).toBe(before + 1);
      expect(await streamsOpened(wt[0]!.edge)).toBe(0);
    } finally {
      quic.stop();
      await greeter.close();
      await front.close();
      await Promise.all(wt.map((w) => w.edge.stop()));
    }
  });

  it('kill -9 of one edge: its sessions see a RESET and a new session works at once on another edge; the others notice nothing', async () => {
    const sessions = Array.from({ length: 12 }, () => client());
    const talks = sessions.map((c) => pingPong(c.mux.open(ECHO(echo.port))));
    await Promise.all(talks.map((t) => t.round()));
    const where = await Promise.all(sessions.map(edgeOf));
    const victim = where[0]!;
    await edges[victim]!.stop('SIGKILL');
    const outcomes = await Promise.all(
      talks.map(async (t) => {
        try {
          for (let i = 0; i < 5; i++) await t.round();
          t.end();
          return 'ok';
        } catch (e) {
          return (e as Error).message;
        }
      }),
    );
    expect(outcomes.filter((o, i) => where[i] === victim).every((o) => /^reset/.test(o))).toBe(true);
    expect(outcomes.filter((o, i) => where[i] !== victim)).toEqual(where.filter((w) => w !== victim).map(() => 'ok'));
    // The victim's clients' next connection: a new session, placed on a live edge.
    const started = Date.now();
    const next = client();
    const data = randomBytes(64 * 1024);
    expect(sha(await exchange(next.mux.open(ECHO(echo.port)), data))).toBe(sha(data));
    expect(await edgeOf(next)).not.toBe(victim);
    console.log(`scale-out: after kill -9, a new session carried 64 KiB in ${Date.now() - started} ms`);
    edges[victim] = await startCompanion(['edge', ...EDGE_ARGS, '--max-sessions-per-client', '200']);
    // The restarted edge has new ports: point a fresh HAProxy at the three live edges.
    await haproxy.close();
    haproxy = await startHaproxy({ edges: edges.map(edgePorts), tls });
    await haproxy.untilReady(3);
    url = `https://127.0.0.1:${haproxy.port}/m/`;
  });

  it('SIGTERM drains an edge: out of balancing first, its sessions told to move (GOAWAY), busy streams finish, quiet ones end with FIN, then exit 0', async () => {
    const silent = await listen((sock) => sock.resume()); // reads, never answers: a request waiting for its response
    const sessions = Array.from({ length: 12 }, () => client());
    const busy = sessions.map((c) => pingPong(c.mux.open(ECHO(echo.port))));
    await Promise.all(busy.map((t) => t.round()));
    const where = await Promise.all(sessions.map(edgeOf));
    const drainee = where[0]!;
    const mine = sessions.filter((_, i) => where[i] === drainee);
    // On the drainee: a keep-alive connection between requests (its last bytes came back), and one waiting for an answer.
    const idle = pingPong(mine[0]!.mux.open(ECHO(echo.port)));
    await idle.round();
    const waiting = mine[0]!.mux.open(ECHO(silent.port));
    let waitingEnded = false;
    waiting.attach({ end: () => (waitingEnded = true), reset: () => (waitingEnded = true) });
    waiting.write(randomBytes(100));
    let talking = true;
    const talks = busy.map(async (t) => {
      let rounds = 0;
      while (talking || rounds < 3) {
        await t.round(2048);
        rounds++;
      }
      t.end();
      return rounds;
    });
    const exited = edges[drainee]!.stop('SIGTERM');
    await waitFor('HAProxy to see the edge draining', async () => (await haproxy.servers())[drainee]!.state === 'draining', 20_000);
    // New sessions go elsewhere while the drainee still serves its own.
    const fresh = Array.from({ length: 12 }, () => client());
    await Promise.all(fresh.map((c) => exchange(c.mux.open(ECHO(echo.port)), randomBytes(1024))));
    expect((await Promise.all(fresh.map(edgeOf))).filter((e) => e === drainee)).toEqual([]);
    // Its sessions are told to move: no new stream may open on them, and the open ones go on.
    await waitFor('GOAWAY at the drainee\'s clients', () => mine.every((c) => !c.mux.canOpen), 20_000);
    await idle.ended;
    expect(waitingEnded).toBe(false);
    waiting.reset(0x05);
    talking = false;
    expect(Math.min(...(await Promise.all(talks)))).toBeGreaterThanOrEqual(3);
    expect(await exited).toBe(0);
    silent.close();
  });
});
