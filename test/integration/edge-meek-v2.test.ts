/**
 * meek v2 at the real edge process (PROTOCOL.md §1.1): pipelined uploads in seq order with
 * nothing reaching the upstream twice, the refusals, a streaming response (headers and lead at
 * once, bytes as they come, ended by a newer down request or by --stream-max), resending from the
 * acknowledged offset, and the Node client byte-exact through a relay that kills every connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { startCompanion, type Companion } from '../support/processes.ts';
import { echoServer, listen, type TestServer } from '../support/servers.ts';
import { killingRelay } from '../support/killing-relay.ts';
import { meekMux } from '../support/node-meek.ts';
import { exchange } from '../support/stream-exchange.ts';
import { SegmentReader } from '../../shared/meek/segments.ts';
import type { PipelinedMeekSession } from '../../shared/meek/pipelined-session.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** n bytes whose value tells their offset: byte i is i mod 251. */
const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));

/** A lane's body after its lead: its segments, and whether it ended with the end marker. */
function laneSegments(body: Buffer, lead: number): { segments: Array<{ at: number; bytes: Uint8Array }>; complete: boolean } {
  const segments: Array<{ at: number; bytes: Uint8Array }> = [];
  const reader = new SegmentReader({ data: (at, bytes) => segments.push({ at, bytes: bytes.slice() }), end: () => {} });
  reader.push(body.subarray(lead));
  return { segments, complete: reader.complete };
}
const newId = () => randomBytes(16).toString('base64url');

interface V2Post {
  id: string;
  seq?: number;
  body?: Uint8Array;
  ack?: number;
  down?: 'poll' | 'stream';
  hold?: number;
  lane?: number;
  rewind?: boolean;
  version?: string | null;
}

function v2Headers(p: V2Post): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-session-id': p.id };
  if (p.version !== null) h['x-meek-version'] = p.version ?? '2';
  if (p.seq !== undefined) h['x-meek-seq'] = String(p.seq);
  if (p.ack !== undefined) h['x-meek-ack'] = String(p.ack);
  if (p.down) h['x-meek-down'] = p.down;
  if (p.hold !== undefined) h['x-meek-hold'] = String(p.hold);
  if (p.lane !== undefined) h['x-meek-lane'] = String(p.lane);
  if (p.rewind) h['x-meek-rewind'] = '1';
  return h;
}

async function post(edge: Companion, p: V2Post): Promise<{ status: number; body: Uint8Array; headers: Headers }> {
  const res = await fetch(edge.url + '/', { method: 'POST', headers: v2Headers(p), body: new Uint8Array(p.body ?? new Uint8Array(0)) });
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()), headers: res.headers };
}

/** A streaming down request over node:http, read as it arrives. */
function openStream(edge: Companion, p: V2Post): Promise<{ res: http.IncomingMessage; chunks: Buffer[]; ended: Promise<void>; at: number[] }> {
  const url = new URL(edge.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: '/', method: 'POST', headers: { ...v2Headers({ ...p, down: 'stream' }), 'content-length': '0' } }, (res) => {
      const chunks: Buffer[] = [];
      const at: number[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        at.push(Date.now());
      });
      const ended = new Promise<void>((r) => res.once('end', r).once('close', r));
      resolve({ res, chunks, ended, at });
    });
    req.on('error', reject);
    req.end();
  });
}


describe('meek v2, raw mode (one recording upstream per session)', () => {
  let upstream: TestServer;
  const received = new Map<net.Socket, Buffer[]>();
  let edge: Companion;
  beforeAll(async () => {
    upstream = await listen((s) => {
      const parts: Buffer[] = [];
      received.set(s, parts);
      s.on('data', (d: Buffer) => {
        parts.push(d);
        if (String(d).startsWith('send:')) s.write(Buffer.alloc(Number(String(d).slice(5)), 7));
        if (String(d).startsWith('pattern:')) s.write(pattern(Number(String(d).slice(8))));
      });
    });
    edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${upstream.port}`, '--stream-max', '2', '--log-level', 'warn']);
  });
  afterAll(async () => {
    await edge?.stop();
    await upstream?.close();
  });

  const lastUpstream = () => [...received.values()].at(-1)!;

  it('uploads sent out of order, with retries among them, reach the upstream once each, in seq order', async () => {
    const id = newId();
    const first = await post(edge, { id, seq: 1, body: Buffer.from('a'), down: 'poll', hold: 0 });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-meek-version')).toBe('2');
    expect(Number(first.headers.get('x-meek-window'))).toBeGreaterThanOrEqual(2);
    const parts = ['b', 'c', 'd', 'e'].map((s) => Buffer.from(s.repeat(1000)));
    const order = [4, 2, 5, 3, 2, 4, 3]; // seqs 2–5, arriving backwards and twice
    const answers = await Promise.all(order.map((seq) => post(edge, { id, seq, body: parts[seq - 2]! })));
    expect(answers.map((a) => a.status)).toEqual(order.map(() => 200));
    expect(answers.every((a) => a.body.length === 0)).toBe(true);
    await post(edge, { id, seq: 5, body: parts[3]! }); // a late retry of the last
    await new Promise<void>((r) => setImmediate(r));
    const got = Buffer.concat(lastUpstream()).toString();
    expect(got).toBe('a' + parts.map(String).join(''));
  });

  it('refuses what breaks the rules, each with its status and without side effects', async () => {
    const id = newId();
    expect((await post(edge, { id, seq: 1, body: Buffer.from('x') })).status).toBe(200);
    expect((await post(edge, { id, seq: 1 + 9, body: Buffer.from('far') })).status).toBe(409); // beyond the window of 8
    expect((await post(edge, { id, body: Buffer.from('no seq') })).status).toBe(400);
    expect((await post(edge, { id, ack: 10_000 })).status).toBe(400); // acknowledges bytes never sent
    expect((await post(edge, { id, seq: 2, version: null, body: Buffer.from('v1 now') })).status).toBe(400);
    expect(Buffer.concat(lastUpstream()).toString()).toBe('x');
    // A v1 session does not turn into v2 either.
    const v1 = newId();
    expect((await post(edge, { id: v1, seq: 1, version: null })).status).toBe(200);
    expect((await post(edge, { id: v1, seq: 2 })).status).toBe(400);
    // An acknowledgement for an unknown session means one that ended: 410, never a new one.
    expect((await post(edge, { id: newId(), ack: 5, down: 'poll' })).status).toBe(410);
  });

  it('a stream sends headers and its lead at once, then bytes as they come, from the acknowledged offset', async () => {
    const id = newId();
    expect((await post(edge, { id, seq: 1, body: Buffer.from('send:5000') })).status).toBe(200);
    const opened = Date.now();
    const s = await openStream(edge, { id, ack: 0 });
    expect(s.res.statusCode).toBe(200);
    expect(s.res.headers['x-accel-buffering']).toBe('no');
    expect(s.res.headers['transfer-encoding']).toBe('chunked');
    const lead = Number(s.res.headers['x-meek-lead']);
    expect(lead).toBeGreaterThan(0);
    expect(s.res.headers['x-meek-offset']).toBe('0');
    // More bytes while the stream is open reach it without a new request.
    await post(edge, { id, seq: 2, body: Buffer.from('send:3000') });
    await s.ended; // --stream-max 2
    const elapsed = Date.now() - opened;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(4000);
    const body = Buffer.concat(s.chunks);
    expect(body.length).toBe(lead + 8000);
    expect(body.subarray(lead).every((b) => b === 7)).toBe(true);
    // Nothing was acknowledged: a new down request gets all 8000 again, from offset 0.
    const again = await post(edge, { id, ack: 0, down: 'poll' });
    expect(again.headers.get('x-meek-offset')).toBe('0');
    expect(again.body.length).toBe(8000);
    // After the acknowledgement, nothing is left to send.
    const after = await post(edge, { id, ack: 8000, down: 'poll', hold: 0 });
    expect(after.headers.get('x-meek-offset')).toBe('8000');
    expect(after.body.length).toBe(0);
  });

  it('a newer down request ends the stream before it; a held poll is answered when bytes arrive', async () => {
    const id = newId();
    await post(edge, { id, seq: 1, body: Buffer.from('hello') });
    const old = await openStream(edge, { id, ack: 0 });
    const poll = post(edge, { id, ack: 0, down: 'poll', hold: 5000 });
    await old.ended;
    const started = Date.now();
    await post(edge, { id, seq: 2, body: Buffer.from('send:10') });
    const answer = await poll;
    expect(answer.body.length).toBe(10);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('lanes run side by side and share the downstream in segments that put it back exactly; each ends with the end marker; a rewind sends again from the acknowledged offset', async () => {
    const id = newId();
    const total = 600_000;
    expect((await post(edge, { id, seq: 1 })).status).toBe(200);
    const lanes = await Promise.all([openStream(edge, { id, lane: 0 }), openStream(edge, { id, lane: 1 })]);
    for (const [i, l] of lanes.entries()) {
      expect(l.res.headers['x-meek-lane']).toBe(String(i));
      expect(l.res.headers['x-meek-offset']).toBeUndefined();
      expect(Number(l.res.headers['x-meek-retain'])).toBe((32 * 1024 * 1024) / 4); // --session-buffer (default 32 MiB) ÷ 4
    }
    await post(edge, { id, seq: 2, body: Buffer.from(`pattern:${total}`) });
    await Promise.all(lanes.map((l) => l.ended)); // --stream-max 2: a second lane did not end the first
    const parts = lanes.map((l) => laneSegments(Buffer.concat(l.chunks), Number(l.res.headers['x-meek-lead'])));
    expect(parts.every((p) => p.complete)).toBe(true);
    // Every offset exactly once across the lanes, with the bytes that belong there.
    const all = parts.flatMap((p) => p.segments).sort((a, b) => a.at - b.at);
    let next = 0;
    for (const seg of all) {
      expect(seg.at).toBe(next);
      next += seg.bytes.length;
    }
    expect(next).toBe(total);
    expect(sha(Buffer.concat(all.map((s) => s.bytes)))).toBe(sha(pattern(total)));
    // Every lane was given all of it: a new lane has nothing to send, and a newer request for its
    // lane ends it at once, with the end marker; with a rewind, the newer one sends again from the ack.
    const idle = await openStream(edge, { id, ack: 100_000, lane: 0 });
    const opened = Date.now();
    const rewound = await openStream(edge, { id, ack: 100_000, lane: 0, rewind: true });
    await idle.ended;
    expect(Date.now() - opened).toBeLessThan(1500);
    expect(laneSegments(Buffer.concat(idle.chunks), Number(idle.res.headers['x-meek-lead']))).toEqual({ segments: [], complete: true });
    await rewound.ended;
    const again = laneSegments(Buffer.concat(rewound.chunks), Number(rewound.res.headers['x-meek-lead']));
    expect(again.complete).toBe(true);
    expect(again.segments[0]!.at).toBe(100_000);
    expect(sha(Buffer.concat(again.segments.map((s) => s.bytes)))).toBe(sha(pattern(total).subarray(100_000)));
    // A poll ends every lane.
    const a = await openStream(edge, { id, ack: total, lane: 0 });
    const b = await openStream(edge, { id, ack: total, lane: 1 });
    const polled = Date.now();
    await post(edge, { id, ack: total, down: 'poll', hold: 0 });
    await Promise.all([a.ended, b.ended]);
    expect(Date.now() - polled).toBeLessThan(1500);
    // Lanes are for streams, and a rewind is for lanes.
    expect((await post(edge, { id, down: 'poll', lane: 0 })).status).toBe(400);
    expect((await post(edge, { id, down: 'stream', rewind: true })).status).toBe(400);
  });

  it('v2 answers carry random padding; --padding off leaves it out', async () => {
    const a = await post(edge, { id: newId(), seq: 1 });
    const b = await post(edge, { id: newId(), seq: 1 });
    expect(a.headers.get('x-meek-padding')?.length).toBeGreaterThanOrEqual(100);
    expect(a.headers.get('x-meek-padding')).not.toBe(b.headers.get('x-meek-padding'));
    const plain = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${upstream.port}`, '--padding', 'off', '--log-level', 'warn']);
    try {
      const r = await fetch(plain.url + '/', { method: 'POST', headers: v2Headers({ id: newId(), seq: 1 }), body: new Uint8Array(0) });
      expect(r.headers.get('x-meek-padding')).toBeNull();
    } finally {
      await plain.stop();
    }
  });
});

describe('meek v2, remux mode, the Node client', () => {
  let echo: TestServer;
  let edge: Companion;
  beforeAll(async () => {
    echo = await echoServer();
    edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--log-level', 'warn']);
  });
  afterAll(async () => {
    await edge?.stop();
    await echo?.close();
  });

  for (const streaming of [true, false]) {
    it(`${streaming ? 'streaming' : 'polling'}: 20 concurrent streams up to 1 MiB each way, byte-exact`, async () => {
      const c = meekMux({ url: edge.url + '/', version: 2, streaming });
      try {
        const sizes = Array.from({ length: 20 }, () => Math.floor(Math.random() * 1024 * 1024));
        const ok = await Promise.all(
          sizes.map(async (size) => {
            const data = randomBytes(size);
            return sha(await exchange(c.mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port }), data)) === sha(data);
          }),
        );
        expect(ok.every(Boolean)).toBe(true);
        expect(c.session.mode).toBe(streaming ? 'stream' : 'poll');
        // Streaming, 10 MiB each way on average makes it a bulk session: the other lanes opened.
        expect((c.session as PipelinedMeekSession).stats.lanes > 0).toBe(streaming);
      } finally {
        c.session.close();
      }
    });
  }

  it('through a relay that kills every connection within 0.1–0.4 s, 16 MiB each way arrive byte-exact', async () => {
    const relay = await killingRelay(edge.port, 5, 100, 400);
    const c = meekMux({ url: `http://127.0.0.1:${relay.port}/`, version: 2 });
    try {
      const data = randomBytes(16 * 1024 * 1024);
      const back = await exchange(c.mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port }), data);
      expect(sha(back)).toBe(sha(data));
      expect(relay.kills).toBeGreaterThan(0);
      // Lanes were cut, and what the edge had given them came again.
      const stats = (c.session as PipelinedMeekSession).stats;
      expect(stats.lanes).toBeGreaterThan(0);
      expect(stats.rewinds).toBeGreaterThan(0);
    } finally {
      c.session.close();
      await relay.close();
    }
  }, 60_000);
});
