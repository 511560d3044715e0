import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  MeekClientSession,
  type MeekClientOptions,
  type MeekRequest,
  type MeekResponse,
} from '../../shared/meek/client-session.ts';
import { MeekServerSession, negotiateResponseLimit } from '../../shared/meek/server-session.ts';
import type { MeekError } from '../../shared/errors.ts';
import { FakeClock, seeded } from '../support/fake-clock.ts';
import { concat } from '../support/bytes.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const empty = (serverMaxBody: number | null = 262144): MeekResponse => ({ status: 200, body: new Uint8Array(0), serverMaxBody });
const total = (chunks: readonly Uint8Array[]) => chunks.reduce((a, b) => a + b.length, 0);

function randomBytes(n: number, rnd: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

interface Seen {
  at: number;
  seq: number | null;
  hash: string;
  size: number;
  accept: number;
}

/** What the scripted edge does with request number n (1-based). */
type Fault =
  | 'ok'
  | 'drop' // processed, then the response is lost
  | 'duplicate' // the request reaches the edge twice (a CDN retry), the client hears one answer
  | 'lost' // the request never reaches the edge
  | 502
  | 503
  | 504;

/**
 * A scripted edge: the real MeekServerSession over an in-memory upstream (which records every
 * uploaded byte and sends its own `downstream` bytes), with latency from the fake clock and faults.
 */
function scriptedEdge(
  clock: FakeClock,
  o: { serverMax?: number | null; downstream?: Uint8Array; fault?: (n: number, req: MeekRequest) => Fault; latency?: (n: number) => number } = {},
) {
  const server = new MeekServerSession<Uint8Array>();
  const serverMax = o.serverMax === undefined ? 262144 : o.serverMax;
  let down = o.downstream ?? new Uint8Array(0);
  const upstreamGot: Uint8Array[] = [];
  const seen: Seen[] = [];
  const faults: Fault[] = [];
  let n = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const roundTrip = async (req: MeekRequest): Promise<MeekResponse> => {
    const k = ++n;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      seen.push({ at: clock.now(), seq: req.seq, hash: sha(req.body), size: req.body.length, accept: req.acceptMaxBody });
      const body = req.body.slice(); // what went over the wire
      const latency = o.latency?.(k) ?? 0;
      if (latency > 0) await new Promise<void>((r) => clock.setTimeout(r, latency));
      const fault = o.fault?.(k, req) ?? 'ok';
      faults.push(fault);
      if (fault === 'lost') throw new Error('connection reset');
      if (typeof fault === 'number') return { status: fault, body: new Uint8Array(0), serverMaxBody: null };
      const limit = negotiateResponseLimit(serverMax ?? 262144, req.acceptMaxBody);
      const run = () =>
        server.handle(req.seq, async () => {
          upstreamGot.push(body);
          const out = down.subarray(0, limit);
          down = down.subarray(out.length);
          return out;
        });
      if (fault === 'duplicate') void run();
      const { response } = await run();
      if (fault === 'drop') throw new Error('response lost');
      return { status: 200, body: response, serverMaxBody: serverMax };
    } finally {
      inFlight--;
    }
  };
  return { roundTrip, seen, upstreamGot, faults, get maxInFlight() { return maxInFlight; }, get requests() { return n; } };
}

function session(clock: FakeClock, roundTrip: MeekClientOptions['roundTrip'], extra: Partial<MeekClientOptions> = {}) {
  const received: Uint8Array[] = [];
  const closes: MeekError[] = [];
  let drains = 0;
  const s = new MeekClientSession({
    roundTrip,
    clock,
    onData: (b) => received.push(b.slice()),
    onDrain: () => drains++,
    onClose: (e) => closes.push(e),
    ...extra,
  });
  return { s, received, closes, get drains() { return drains; } };
}

/** Checks the seq discipline: 1, then +1 per new poll; a repeated seq resends the same body. */
function expectSeqDiscipline(seen: readonly Seen[]) {
  expect(seen[0]!.seq).toBe(1);
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1]!, seen[i]!];
    if (b.seq === a.seq) expect(b.hash, `retry of seq ${b.seq}`).toBe(a.hash);
    else expect(b.seq).toBe(a.seq! + 1);
  }
}

describe('MeekClientSession: delivery', () => {
  it('carries ~1.5 MiB up and 2 MiB down byte-exact through drops, duplicates, lost requests, 5xx and latency', async () => {
    const clock = new FakeClock(seeded(1));
    const rnd = seeded(2);
    const up = randomBytes(1536 * 1024 + 17, rnd);
    const down = randomBytes(2 * 1024 * 1024 + 5, rnd);
    const latencyRnd = seeded(3);
    // A fixed cycle so every fault shows up, two and three in a row among them (under the retry limit).
    const cycle: Fault[] = ['ok', 'drop', 'ok', 'duplicate', 'lost', 'drop', 'ok', 502, 504, 'lost', 'ok', 'duplicate', 'drop', 'ok'];
    const edge = scriptedEdge(clock, {
      downstream: down,
      latency: () => Math.floor(latencyRnd() * 40),
      fault: (n) => (n === 1 ? 503 : cycle[n % cycle.length]!), // the first request meets a full edge
    });
    const c = session(clock, edge.roundTrip, {
      onDrain: () => pump(),
    });
    c.s.setActive(true);
    // A writer that honours backpressure: random-size writes until write() says wait, resumed by onDrain.
    let at = 0;
    let refusals = 0;
    const sizes = seeded(4);
    function pump() {
      while (at < up.length) {
        const n = Math.min(up.length - at, 1 + Math.floor(sizes() * 90_000));
        const ok = c.s.write(up.subarray(at, at + n));
        at += n;
        if (!ok) {
          refusals++;
          return;
        }
      }
    }
    pump();
    await clock.runUntil(() => total(c.received) >= down.length && total(edge.upstreamGot) >= up.length);

    expect(c.closes).toEqual([]);
    const got = concat(c.received);
    expect(got.length).toBe(down.length);
    expect(sha(got)).toBe(sha(down));
    const upstream = concat(edge.upstreamGot);
    expect(upstream.length).toBe(up.length);
    expect(sha(upstream)).toBe(sha(up));

    expectSeqDiscipline(edge.seen);
    const repeats = edge.seen.filter((s, i) => i > 0 && s.seq === edge.seen[i - 1]!.seq).length;
    // Every kind of fault happened, and each but a duplicate cost exactly one retry.
    for (const f of ['drop', 'duplicate', 'lost', 502, 503, 504] as const) expect(edge.faults, String(f)).toContain(f);
    expect(repeats).toBe(edge.faults.filter((f) => f !== 'ok' && f !== 'duplicate').length);
    expect(c.s.stats.retries).toBe(repeats);
    expect(edge.maxInFlight).toBe(1);
    expect(refusals).toBeGreaterThan(0); // backpressure was exercised
    // ≤ 64 KiB per upload until a 200 told the server max; larger afterwards.
    const firstOk = edge.seen.findIndex((s) => s.seq === 2);
    for (const s of edge.seen.slice(0, firstOk)) expect(s.size).toBeLessThanOrEqual(65536);
    expect(Math.max(...edge.seen.map((s) => s.size))).toBeGreaterThan(65536);
    expect(Math.max(...edge.seen.map((s) => s.size))).toBeLessThanOrEqual(262144);
    expect(edge.seen.every((s) => s.accept === 262144)).toBe(true);
    expect(c.s.stats.bytesUp).toBe(up.length);
    expect(c.s.stats.bytesDown).toBe(down.length);
    c.s.close();
  });

  it('delivers response bytes in order, exactly once, even when the edge answers a retry with a replay', async () => {
    const clock = new FakeClock();
    const down = randomBytes(300_000, seeded(9));
    // Every second request's response is lost after processing: each seq is answered twice.
    const edge = scriptedEdge(clock, { downstream: down, fault: (n) => (n % 2 === 0 ? 'drop' : 'ok') });
    const c = session(clock, edge.roundTrip);
    c.s.setActive(true);
    await clock.runUntil(() => total(c.received) >= down.length);
    expect(sha(concat(c.received))).toBe(sha(down));
    expect(c.received.every((b) => b.length <= 262144)).toBe(true);
    c.s.close();
  });
});

describe('MeekClientSession: body limits', () => {
  it('uploads at most 64 KiB per request until it learns the server max body, then min(own, server)', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { serverMax: 131072 });
    const c = session(clock, edge.roundTrip);
    c.s.write(new Uint8Array(600_000));
    await clock.runUntil(() => edge.seen.length >= 6);
    expect(edge.seen.slice(0, 6).map((s) => s.size)).toEqual([65536, 131072, 131072, 131072, 131072, 600_000 - 65536 - 4 * 131072]);
    c.s.close();
  });

  it('is bounded by its own acceptMaxBody, which it advertises in every request', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { serverMax: 262144 });
    const c = session(clock, edge.roundTrip, { acceptMaxBody: 100_000 });
    c.s.write(new Uint8Array(300_000));
    await clock.runUntil(() => edge.seen.length >= 4);
    expect(edge.seen.slice(0, 4).map((s) => s.size)).toEqual([65536, 100_000, 100_000, 34_464]);
    expect(edge.seen.every((s) => s.accept === 100_000)).toBe(true);
    c.s.close();
  });

  it('stays at 64 KiB while responses carry no server max', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { serverMax: null });
    const c = session(clock, edge.roundTrip);
    c.s.write(new Uint8Array(200_000));
    await clock.runUntil(() => edge.seen.length >= 4);
    expect(edge.seen.slice(0, 4).map((s) => s.size)).toEqual([65536, 65536, 65536, 200_000 - 3 * 65536]);
    c.s.close();
  });
  it('ignores a server max body no conforming edge sends, and floors a fractional one', async () => {
    const clock = new FakeClock();
    const announced = [NaN, 512, 0, 10_000.7];
    const sizes: number[] = [];
    const c = session(clock, async (req) => {
      sizes.push(req.body.length);
      return { status: 200, body: new Uint8Array(0), serverMaxBody: announced[Math.min(sizes.length - 1, announced.length - 1)]! };
    });
    c.s.write(new Uint8Array(300_000));
    await clock.runUntil(() => sizes.length >= 6);
    expect(sizes.slice(0, 6)).toEqual([65536, 65536, 65536, 65536, 10_000, 10_000]);
    expect(c.closes).toEqual([]);
    c.s.close();
  });
});

describe('MeekClientSession: retries', () => {
  it('retries the same seq and body with 50 ms doubling backoff up to 1 s, for 15 s from the first failure, then gives up', async () => {
    const clock = new FakeClock();
    const calls: Array<{ at: number; seq: number | null; hash: string }> = [];
    const c = session(clock, async (req) => {
      calls.push({ at: clock.now(), seq: req.seq, hash: sha(req.body) });
      throw new Error('connection refused');
    });
    const body = randomBytes(10, seeded(5));
    c.s.write(body);
    await clock.runUntil(() => c.closes.length > 0);
    // Gaps 50, 100, 200, 400, 800, then 1 s apart while the next try still starts within 15 s.
    const expected = [0, 50, 150, 350, 750, 1550];
    while (expected.at(-1)! + 1000 <= 15_000) expected.push(expected.at(-1)! + 1000);
    expect(calls.map((x) => x.at)).toEqual(expected);
    expect(calls.every((x) => x.seq === 1 && x.hash === sha(body))).toBe(true);
    expect(c.closes.map((e) => e.code)).toEqual(['RETRIES']);
    expect(c.s.stats.retries).toBe(expected.length - 1);
    expect(c.s.isClosed).toBe(true);
    expect(c.s.write(new Uint8Array(1))).toBe(false);
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(calls.length).toBe(expected.length);
  });

  it('starts the backoff over for the next seq after a success', async () => {
    const clock = new FakeClock();
    const calls: number[] = [];
    let i = 0;
    // seq 1: 4 failures then 200; seq 2: 5 failures then 200.
    const script = ['x', 'x', 'x', 'x', 'ok', 'x', 'x', 'x', 'x', 'x', 'ok'];
    const c = session(clock, async () => {
      calls.push(clock.now());
      if (script[i++] === 'x') throw new Error('flaky');
      return { status: 200, body: new Uint8Array(i === 5 ? 1 : 0), serverMaxBody: 262144 };
    });
    c.s.write(new Uint8Array(1));
    await clock.runUntil(() => i >= script.length);
    const gaps = calls.slice(1).map((t, k) => t - calls[k]!);
    expect(gaps).toEqual([50, 100, 200, 400, 0, 50, 100, 200, 400, 800]);
    expect(c.closes).toEqual([]);
    c.s.close();
  });

  it('times a hung request out after 20 s, aborts it, and retries — even if the transport ignores the abort', async () => {
    const clock = new FakeClock();
    const calls: Array<{ at: number; signal: AbortSignal }> = [];
    let lateAnswer!: (r: MeekResponse) => void;
    const c = session(clock, (req) => {
      calls.push({ at: clock.now(), signal: req.signal });
      if (calls.length === 1) return new Promise((resolve) => (lateAnswer = resolve)); // never settles on its own
      return Promise.resolve(empty());
    });
    c.s.write(new Uint8Array(1));
    await clock.runUntil(() => calls.length >= 2);
    expect(calls.slice(0, 2).map((x) => x.at)).toEqual([0, 20_050]); // the timeout, then the first retry's 50 ms
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(calls[1]!.signal.aborted).toBe(false);
    // The timed-out request's answer turns up late: it must not be delivered.
    lateAnswer({ status: 200, body: new Uint8Array([9, 9, 9]), serverMaxBody: 262144 });
    await clock.settle();
    expect(c.received).toEqual([]);
    expect(c.closes).toEqual([]);
    c.s.close();
  });

  it('honours a custom request timeout and gives up once retries would start past 15 s', async () => {
    const clock = new FakeClock();
    const calls: number[] = [];
    const c = session(clock, () => (calls.push(clock.now()), new Promise<MeekResponse>(() => {})), { requestTimeoutMs: 5000 });
    c.s.write(new Uint8Array(1));
    let closedAt = -1;
    await clock.runUntil(() => c.closes.length > 0 && (closedAt = clock.now()) >= 0);
    // Failures at 5000, 10050, 15150, 20350; a retry after the last would start past 15 s from the first.
    expect(calls).toEqual([0, 5050, 10_150, 15_350]);
    expect(closedAt).toBe(20_350);
    expect(c.closes.map((e) => e.code)).toEqual(['RETRIES']);
  });

  it('retries 502/503 on the first request with the same seq and body, then carries on', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { downstream: new Uint8Array([7, 7]), fault: (n) => (n === 1 ? 503 : n === 2 ? 502 : 'ok') });
    const c = session(clock, edge.roundTrip);
    c.s.write(new Uint8Array([1, 2, 3]));
    await clock.runUntil(() => c.received.length > 0);
    expect(edge.seen.slice(0, 3).map((s) => [s.at, s.seq])).toEqual([[0, 1], [50, 1], [150, 1]]);
    expect(new Set(edge.seen.slice(0, 3).map((s) => s.hash))).toEqual(new Set([sha(new Uint8Array([1, 2, 3]))]));
    expect(edge.seen[3]).toMatchObject({ at: 150, seq: 2, size: 0 }); // bytes moved: the next poll at once
    expect(concat(c.received)).toEqual(new Uint8Array([7, 7]));
    expect(concat(edge.upstreamGot)).toEqual(new Uint8Array([1, 2, 3]));
    expect(c.closes).toEqual([]);
    c.s.close();
  });

  it('a run of ten failures inside the window is survived: retries are bounded by time, not count', async () => {
    const clock = new FakeClock();
    let failures = 0;
    const c = session(clock, async () => {
      if (failures < 10) {
        failures++;
        throw new Error('connection reset');
      }
      return { status: 200, body: new Uint8Array(0), serverMaxBody: 262144 };
    });
    c.s.write(Uint8Array.of(1, 2, 3));
    await clock.runUntil(() => failures === 10 && c.s.stats.polls > 0, 1000);
    expect(c.closes).toEqual([]);
    expect(c.s.stats.retries).toBe(10);
    expect(c.s.isClosed).toBe(false);
    c.s.close();
  });

  it('ends with RETRIES when 503 persists', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { fault: () => 503 });
    const c = session(clock, edge.roundTrip);
    c.s.setActive(true);
    await clock.runUntil(() => c.closes.length > 0);
    expect(edge.requests).toBe(19); // 15 s of backoff from the first 503
    expect(c.closes.map((e) => e.code)).toEqual(['RETRIES']);
  });
});

describe('MeekClientSession: final statuses', () => {
  const statusRun = async (statuses: number[]) => {
    const clock = new FakeClock();
    let i = 0;
    const c = session(clock, async () => ({ status: statuses[Math.min(i++, statuses.length - 1)]!, body: new Uint8Array([1, 2]), serverMaxBody: null }));
    c.s.setActive(true);
    await clock.runUntil(() => c.closes.length > 0 || i > statuses.length + 3, 200);
    await clock.advance(30_000);
    return { c, requests: i, clock };
  };

  it('410 ends the session with GONE; the 410 body is not data', async () => {
    const { c, requests, clock } = await statusRun([410]);
    expect(c.closes.map((e) => e.code)).toEqual(['GONE']);
    expect(requests).toBe(1);
    expect(c.received).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('410 in the middle of a session ends it after the data already delivered', async () => {
    const { c, requests } = await statusRun([200, 200, 410]);
    expect(requests).toBe(3);
    expect(c.received.length).toBe(2);
    expect(c.closes.map((e) => e.code)).toEqual(['GONE']);
  });

  for (const status of [400, 403, 404, 409, 413, 301, 204]) {
    it(`${status} is final: HTTP, no retry`, async () => {
      const { c, requests } = await statusRun([status]);
      expect(c.closes.map((e) => e.code)).toEqual(['HTTP']);
      expect(requests).toBe(1);
    });
  }
});

describe('MeekClientSession: polling', () => {
  it('polls at 100 ms ×1.5 up to 5 s after empty round trips; jitter exactly as the random says', async () => {
    for (const [r, factor] of [[0.5, 1], [0, 0.7], [0.999999, 1.3]] as const) {
      const clock = new FakeClock(() => r);
      const seen: number[] = [];
      const c = session(clock, async () => (seen.push(clock.now()), empty()));
      c.s.setActive(true);
      await clock.runUntil(() => seen.length >= 16);
      const gaps = seen.slice(1).map((t, i) => t - seen[i]!);
      const nominal = Array.from({ length: 15 }, (_, i) => Math.min(100 * 1.5 ** i, 5000));
      expect(nominal.slice(0, 4)).toEqual([100, 150, 225, 337.5]);
      gaps.forEach((g, i) => expect(g).toBeCloseTo(nominal[i]! * factor, 2));
      c.s.close();
    }
  });

  it('jitters each delay independently within ±30 % with a seeded random', async () => {
    const clock = new FakeClock(seeded(11));
    const seen: number[] = [];
    const c = session(clock, async () => (seen.push(clock.now()), empty()));
    c.s.setActive(true);
    await clock.runUntil(() => seen.length >= 30);
    const ratios = seen.slice(1).map((t, i) => (t - seen[i]!) / Math.min(100 * 1.5 ** i, 5000));
    for (const q of ratios) {
      expect(q).toBeGreaterThanOrEqual(0.7 - 1e-9);
      expect(q).toBeLessThanOrEqual(1.3 + 1e-9);
    }
    expect(new Set(ratios.map((q) => q.toFixed(3))).size).toBeGreaterThan(20);
    c.s.close();
  });

  it('polls again at once after a round trip that carried bytes, then backs off from 100 ms anew', async () => {
    const clock = new FakeClock(() => 0.5);
    const seen: number[] = [];
    const c = session(clock, async () => {
      seen.push(clock.now());
      // The 5th response carries a byte.
      return { status: 200, body: new Uint8Array(seen.length === 5 ? 1 : 0), serverMaxBody: 262144 };
    });
    c.s.setActive(true);
    await clock.runUntil(() => seen.length >= 8);
    const gaps = seen.slice(1).map((t, i) => t - seen[i]!);
    expect(gaps).toEqual([100, 150, 225, 337.5, 0, 100, 150]);
    c.s.close();
  });

  it('does not poll while no stream is open and nothing is queued; a write wakes it at once', async () => {
    const clock = new FakeClock(() => 0.5);
    const seen: Array<{ at: number; size: number; seq: number | null }> = [];
    const c = session(clock, async (req) => (seen.push({ at: clock.now(), size: req.body.length, seq: req.seq }), empty()));
    await clock.advance(60_000);
    expect(seen).toEqual([]);
    expect(clock.pending).toBe(0);

    c.s.setActive(true);
    await clock.settle();
    expect(seen).toEqual([{ at: 60_000, size: 0, seq: 1 }]); // a stream opened: poll at once, seq 1
    await clock.advance(10_000); // idle backoff grows toward 5 s
    const before = seen.length;
    expect(seen.at(-1)!.at).toBeLessThan(70_000);
    const t = clock.now();
    c.s.write(new Uint8Array([1]));
    await clock.settle();
    // No waiting out the backoff; and since bytes moved, the follow-up poll goes at once too.
    expect(seen.slice(before)).toEqual([{ at: t, size: 1, seq: before + 1 }, { at: t, size: 0, seq: before + 2 }]);

    c.s.setActive(false);
    await clock.settle();
    const settled = seen.length;
    expect(settled).toBe(before + 2);
    expect(clock.pending).toBe(0); // the idle wait ended with the last stream
    await clock.advance(60_000);
    expect(seen.length).toBe(settled);
    c.s.close();
  });

  it('inactive: a write is sent, followed up once, then polling stops', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    const c = session(clock, async (req) => (seen.push(req.body.length), empty()));
    c.s.write(new Uint8Array(10));
    await clock.advance(60_000);
    expect(seen).toEqual([10, 0]);
  });

  it('going inactive ends an idle wait at once instead of letting its timer run', async () => {
    const clock = new FakeClock(() => 0.5);
    let polls = 0;
    const c = session(clock, async () => (polls++, empty()));
    c.s.setActive(true);
    await clock.advance(5000);
    expect(clock.pending).toBe(1); // the idle wait
    const p = polls;
    c.s.setActive(false);
    await clock.settle();
    expect(clock.pending).toBe(0);
    expect(polls).toBe(p);
    c.s.setActive(true); // and waking up again polls at once
    await clock.settle();
    expect(polls).toBe(p + 1);
    c.s.close();
  });

  it('runs one request at a time and holds writes made meanwhile for the next', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { latency: () => 500 });
    const c = session(clock, edge.roundTrip);
    c.s.write(new Uint8Array(100));
    await clock.settle();
    c.s.write(new Uint8Array(200));
    c.s.write(new Uint8Array(300));
    await clock.advance(2000);
    expect(edge.maxInFlight).toBe(1);
    expect(edge.seen.map((s) => [s.at, s.size])).toEqual([[0, 100], [500, 500], [1000, 0]]);
    c.s.close();
  });

  it('sends no seq when useSeq is false, and still resends the same body on a retry', async () => {
    const clock = new FakeClock();
    const seen: Array<{ seq: number | null; hash: string }> = [];
    let n = 0;
    const c = session(
      clock,
      async (req) => {
        seen.push({ seq: req.seq, hash: sha(req.body) });
        if (++n === 1) throw new Error('lost');
        return empty();
      },
      { useSeq: false },
    );
    c.s.write(new Uint8Array([1, 2, 3]));
    await clock.runUntil(() => seen.length >= 3);
    expect(seen.every((s) => s.seq === null)).toBe(true);
    expect(seen.slice(0, 2).map((s) => s.hash)).toEqual([sha(new Uint8Array([1, 2, 3])), sha(new Uint8Array([1, 2, 3]))]);
    expect(seen[2]!.hash).toBe(sha(new Uint8Array(0)));
    c.s.close();
  });
});

describe('MeekClientSession: backlog and close', () => {
  it('bounds the write backlog and signals drain once a poll took it below the limit', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { latency: () => 100 });
    const c = session(clock, edge.roundTrip, { backlogLimit: 100_000 });
    expect(c.s.write(new Uint8Array(30_000))).toBe(true);
    expect(c.s.write(new Uint8Array(30_000))).toBe(true);
    expect(c.s.write(new Uint8Array(30_000))).toBe(true);
    expect(c.s.write(new Uint8Array(10_000))).toBe(false); // 100,000: at the limit
    expect(c.s.write(new Uint8Array(5_000))).toBe(false); // still accepted, still over
    expect(c.drains).toBe(0);
    await clock.settle(); // the first poll takes 65,536 → 39,464 queued
    expect(c.drains).toBe(1);
    expect(c.s.write(new Uint8Array(1))).toBe(true);
    await clock.advance(1000);
    expect(c.drains).toBe(1); // no drain without a refusal first
    expect(total(edge.upstreamGot)).toBe(105_001);
    c.s.close();
  });

  it('never signals drain when write never refused', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock);
    const c = session(clock, edge.roundTrip);
    for (let i = 0; i < 10; i++) expect(c.s.write(new Uint8Array(50_000))).toBe(true);
    await clock.advance(1000);
    expect(total(edge.upstreamGot)).toBe(500_000);
    expect(c.drains).toBe(0);
    c.s.close();
  });

  it('close() aborts the request in flight, clears every timer and calls nothing back', async () => {
    const clock = new FakeClock();
    let signal: AbortSignal | null = null;
    let answer!: (r: MeekResponse) => void;
    let requests = 0;
    const c = session(clock, (req) => {
      requests++;
      signal = req.signal;
      return new Promise((resolve) => (answer = resolve));
    });
    c.s.setActive(true);
    c.s.write(new Uint8Array(5));
    await clock.settle();
    expect(requests).toBe(1);
    c.s.close();
    expect(signal!.aborted).toBe(true);
    answer({ status: 200, body: new Uint8Array([1]), serverMaxBody: 262144 });
    await clock.advance(120_000);
    expect(c.received).toEqual([]);
    expect(c.closes).toEqual([]);
    expect(clock.pending).toBe(0);
    expect(requests).toBe(1);
    expect(c.s.isClosed).toBe(true);
    expect(c.s.write(new Uint8Array(1))).toBe(false);
  });

  it('close() during a retry backoff or an idle wait stops at once', async () => {
    for (const failing of [true, false]) {
      const clock = new FakeClock();
      let requests = 0;
      const c = session(clock, async () => {
        requests++;
        if (failing) throw new Error('down');
        return empty();
      });
      c.s.setActive(true);
      await clock.advance(1);
      expect(clock.pending).toBe(1); // the backoff or idle timer
      c.s.close();
      await clock.settle();
      expect(clock.pending).toBe(0);
      await clock.advance(60_000);
      expect(requests).toBe(1);
      expect(c.closes).toEqual([]);
    }
  });

  it('close() from inside onData stops the session without another request', async () => {
    const clock = new FakeClock();
    let requests = 0;
    let s!: MeekClientSession;
    const c = session(clock, async () => (requests++, { status: 200, body: new Uint8Array([1]), serverMaxBody: 262144 }), {
      onData: () => s.close(),
    });
    s = c.s;
    s.setActive(true);
    await clock.advance(10_000);
    expect(requests).toBe(1);
    expect(c.closes).toEqual([]);
  });

  it('uses a fresh crypto-random session id per session, in every request', async () => {
    const clock = new FakeClock();
    const ids: string[] = [];
    const a = session(clock, async (req) => (ids.push(req.sessionId), empty()));
    const b = session(clock, async (req) => (ids.push(req.sessionId), empty()));
    a.s.write(new Uint8Array(1));
    b.s.write(new Uint8Array(1));
    await clock.advance(1000);
    expect(a.s.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.s.id).not.toBe(b.s.id);
    expect(new Set(ids)).toEqual(new Set([a.s.id, b.s.id]));
    a.s.close();
    b.s.close();
  });

  it('reports each round trip: rtt of the successful attempt and bytes each way', async () => {
    const clock = new FakeClock();
    const edge = scriptedEdge(clock, { downstream: new Uint8Array(70), latency: () => 40 });
    const infos: Array<{ rttMs: number; up: number; down: number }> = [];
    const c = session(clock, edge.roundTrip, { onRoundTrip: (i) => infos.push(i) });
    c.s.write(new Uint8Array(30));
    await clock.runUntil(() => infos.length >= 2);
    expect(infos.slice(0, 2)).toEqual([{ rttMs: 40, up: 30, down: 70 }, { rttMs: 40, up: 0, down: 0 }]);
    expect(c.s.stats).toMatchObject({ polls: 2, bytesUp: 30, bytesDown: 70, lastRttMs: 40, retries: 0 });
    c.s.close();
  });
});
