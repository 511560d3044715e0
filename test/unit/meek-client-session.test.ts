import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  MeekClientSession,
  type MeekRequest,
  type MeekResponse,
} from '../../shared/meek/client-session.ts';
import { MeekServerSession } from '../../shared/meek/server-session.ts';
import { negotiateResponseLimit } from '../../shared/meek/server-session.ts';
import type { ProtocolError } from '../../shared/errors.ts';
import { FakeClock, seeded } from '../support/fake-clock.ts';
import { concat } from '../support/bytes.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Seen {
  at: number;
  seq: number | null;
  body: string;
  size: number;
}

/**
 * A scripted edge: the real MeekServerSession over an in-memory echo upstream, with faults:
 * responses dropped after processing, requests answered twice, statuses injected.
 */
function scriptedEdge(clock: FakeClock, faults: { dropEvery?: number; duplicateEvery?: number; serverMax?: number } = {}) {
  const server = new MeekServerSession<Uint8Array>();
  const pending: Uint8Array[] = [];
  const upstreamGot: Uint8Array[] = [];
  const seen: Seen[] = [];
  let n = 0;
  const serverMax = faults.serverMax ?? 262144;
  const roundTrip = async (req: MeekRequest): Promise<MeekResponse> => {
    seen.push({ at: clock.now(), seq: req.seq, body: sha(req.body), size: req.body.length });
    const limit = negotiateResponseLimit(serverMax, req.acceptMaxBody);
    const run = () =>
      server.handle(req.seq, async () => {
        upstreamGot.push(req.body.slice());
        pending.push(req.body.slice()); // echo
        const all = concat(pending.splice(0));
        const out = all.subarray(0, limit);
        if (all.length > limit) pending.push(all.subarray(limit));
        return out;
      });
    n++;
    if (faults.duplicateEvery && n % faults.duplicateEvery === 0) await run(); // a duplicate arrives first
    const { response } = await run();
    if (faults.dropEvery && n % faults.dropEvery === 0) throw new Error('response lost');
    return { status: 200, body: response, serverMaxBody: serverMax };
  };
  return { roundTrip, seen, upstreamGot };
}

function randomChunks(total: number, rnd: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let left = total; left > 0; ) {
    const n = Math.min(left, 1 + Math.floor(rnd() * 100_000));
    const c = new Uint8Array(n);
    for (let i = 0; i < n; i += 997) c[i] = Math.floor(rnd() * 256);
    out.push(c);
    left -= n;
  }
  return out;
}

describe('MeekClientSession', () => {
  it('carries bytes exactly once both ways through dropped and duplicated responses', async () => {
    const clock = new FakeClock(seeded(1));
    const edge = scriptedEdge(clock, { dropEvery: 4, duplicateEvery: 7 });
    const received: Uint8Array[] = [];
    const session = new MeekClientSession({ roundTrip: edge.roundTrip, clock, onData: (b) => received.push(b.slice()), onClose: (e) => { throw e; } });
    session.setActive(true);
    const chunks = randomChunks(1536 * 1024, seeded(2));
    for (const c of chunks) session.write(c);
    const sent = concat(chunks);
    await clock.runUntil(() => received.reduce((a, b) => a + b.length, 0) >= sent.length);
    const got = concat(received);
    expect(got.length).toBe(sent.length);
    expect(sha(got)).toBe(sha(sent));
    // The upstream saw every byte exactly once despite drops and duplicates.
    expect(sha(concat(edge.upstreamGot))).toBe(sha(sent));
    // Seq rules: +1 per new poll; a retry repeats the seq with the same body.
    for (let i = 1; i < edge.seen.length; i++) {
      const [a, b] = [edge.seen[i - 1]!, edge.seen[i]!];
      if (b.seq === a.seq) expect(b.body).toBe(a.body);
      else expect(b.seq).toBe(a.seq! + 1);
    }
    expect(session.stats.retries).toBeGreaterThan(0);
    session.close();
  });

  it('uploads at most 64 KiB per request until it learns the server max body', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { serverMax: 131072 });
    const session = new MeekClientSession({ roundTrip: edge.roundTrip, clock, onData() {}, onClose() {} });
    session.write(new Uint8Array(600_000));
    await clock.runUntil(() => edge.seen.length >= 4);
    expect(edge.seen[0]!.size).toBe(65536);
    expect(edge.seen.slice(1, 4).map((s) => s.size)).toEqual([131072, 131072, 131072]);
    session.close();
  });

  it('polls at the documented intervals: 100 ms ×1.5 up to 5 s, jitter within ±30 %', async () => {
    for (const [r, factor] of [[() => 0.5, 1], [() => 0, 0.7], [() => 0.999999, 1.3]] as const) {
      const clock = new FakeClock(r);
      const seen: number[] = [];
      const session = new MeekClientSession({
        roundTrip: async () => (seen.push(clock.now()), { status: 200, body: new Uint8Array(0), serverMaxBody: 262144 }),
        clock,
        onData() {},
        onClose() {},
      });
      session.setActive(true);
      await clock.runUntil(() => seen.length >= 15);
      const gaps = seen.slice(1).map((t, i) => t - seen[i]!);
      const nominal = Array.from({ length: 14 }, (_, i) => Math.min(100 * 1.5 ** i, 5000));
      gaps.forEach((g, i) => expect(g).toBeCloseTo(nominal[i]! * factor, 0));
      session.close();
    }
  });

  it('does not poll while no stream is open and nothing is queued; a write wakes it at once', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    const session = new MeekClientSession({
      roundTrip: async () => (seen.push(clock.now()), { status: 200, body: new Uint8Array(0), serverMaxBody: 262144 }),
      clock,
      onData() {},
      onClose() {},
    });
    await clock.advance(60_000);
    expect(seen).toEqual([]);
    session.setActive(true);
    await clock.advance(10_000); // idle backoff grows toward 5 s
    const before = seen.length;
    const t = clock.now();
    session.write(new Uint8Array([1]));
    await clock.settle();
    expect(seen.length).toBeGreaterThan(before);
    expect(seen[before]).toBe(t); // no waiting out the backoff
    session.setActive(false);
    await clock.advance(1000); // one more round trip may finish; then it stops
    const settled = seen.length;
    await clock.advance(60_000);
    expect(seen.length).toBe(settled);
    session.close();
  });

  it('retries the same seq and body with 50 ms doubling backoff, at most 5 times, then gives up', async () => {
    const clock = new FakeClock();
    const calls: Array<{ at: number; seq: number | null; size: number }> = [];
    let closed: ProtocolError | null = null;
    const session = new MeekClientSession({
      roundTrip: async (req) => {
        calls.push({ at: clock.now(), seq: req.seq, size: req.body.length });
        throw new Error('connection refused');
      },
      clock,
      onData() {},
      onClose: (e) => (closed = e),
    });
    session.write(new Uint8Array(10));
    await clock.runUntil(() => closed !== null);
    expect(calls.map((c) => c.at)).toEqual([0, 50, 150, 350, 750, 1550]);
    expect(new Set(calls.map((c) => c.seq))).toEqual(new Set([1]));
    expect(calls.every((c) => c.size === 10)).toBe(true);
    expect(closed).toMatchObject({ code: 'MEEK_RETRIES' });
    expect(session.write(new Uint8Array(1))).toBe(false);
  });

  it('times a hung request out after 20 s and retries it', async () => {
    const clock = new FakeClock();
    const calls: number[] = [];
    const session = new MeekClientSession({
      roundTrip: (req) =>
        new Promise((resolve, reject) => {
          calls.push(clock.now());
          if (calls.length === 2) resolve({ status: 200, body: new Uint8Array(0), serverMaxBody: null });
          else (req.signal as unknown as EventTarget).addEventListener('abort', () => reject(new Error('aborted')));
        }),
      clock,
      onData() {},
      onClose() {},
    });
    session.write(new Uint8Array(1));
    await clock.runUntil(() => calls.length >= 2);
    expect(calls.slice(0, 2)).toEqual([0, 20_050]); // the timeout, then the first retry's 50 ms
    session.close();
  });

  it('treats 410 as the end, other 4xx as final, and retries 502/503', async () => {
    const run = async (statuses: number[]) => {
      const clock = new FakeClock();
      let closed: ProtocolError | null = null;
      let i = 0;
      const session = new MeekClientSession({
        roundTrip: async () => ({ status: statuses[Math.min(i++, statuses.length - 1)]!, body: new Uint8Array(0), serverMaxBody: null }),
        clock,
        onData() {},
        onClose: (e) => (closed = e),
      });
      session.write(new Uint8Array(1));
      await clock.runUntil(() => closed !== null || i >= statuses.length + 1, 50);
      session.close();
      return { closed: closed as ProtocolError | null, requests: i };
    };
    expect((await run([410])).closed?.code).toBe('MEEK_GONE');
    expect((await run([403])).closed?.code).toBe('MEEK_HTTP');
    expect((await run([409])).closed?.code).toBe('MEEK_HTTP');
    const r = await run([503, 502, 200]);
    expect(r.closed).toBeNull();
    expect(r.requests).toBeGreaterThanOrEqual(3);
  });

  it('bounds the write backlog and signals drain once a poll took from it', async () => {
    const clock = new FakeClock();
    let drained = 0;
    const edge = scriptedEdge(clock);
    const session = new MeekClientSession({ roundTrip: edge.roundTrip, clock, backlogLimit: 100_000, onData() {}, onDrain: () => drained++, onClose() {} });
    let accepted = 0;
    while (session.write(new Uint8Array(30_000))) accepted++;
    expect(accepted).toBe(3); // the fourth write takes the backlog to 120,000 ≥ 100,000
    expect(drained).toBe(0);
    await clock.step();
    expect(drained).toBe(1);
    session.close();
  });
});
