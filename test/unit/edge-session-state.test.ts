/**
 * The edge's per-session state: the downstream buffer a poll drains and the registry of sessions.
 * Timers are vitest's fake ones, so hold-off and gathering are asserted to the millisecond.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { DownstreamBuffer } from '../../server/edge/downstream-buffer.ts';
import { SessionRegistry, type EdgeSession } from '../../server/edge/session-registry.ts';
import { MemoryBudget } from '../../server/edge/memory-budget.ts';
import { clientMemory } from '../../server/edge/session-budget.ts';
import type { Upstream } from '../../server/edge/upstream.ts';

const chunk = (n: number, fill = n & 0xff) => new Uint8Array(n).fill(fill);

describe('DownstreamBuffer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('hands bytes out in order across any chunking and any take sizes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 40 }), (chunks, takes) => {
        const buf = new DownstreamBuffer(1 << 30);
        buf.push(chunks);
        const expected = chunks.flatMap((c) => [...c]);
        const got: number[] = [];
        for (let i = 0; buf.size > 0; i++) {
          const before = buf.size;
          const piece = buf.take(takes[i % takes.length]!);
          expect(piece.length).toBe(Math.min(takes[i % takes.length]!, before));
          got.push(...piece);
        }
        expect(got).toEqual(expected);
        expect(buf.take(10).length).toBe(0);
      }),
    );
  });

  it('tells the producer to pause at the limit and to go on once a poll drains below it, once', () => {
    const buf = new DownstreamBuffer(1000);
    let drains = 0;
    buf.onDrain = () => drains++;
    expect(buf.push([chunk(600)])).toBe(true);
    expect(buf.push([chunk(400)])).toBe(false);
    expect(buf.push([chunk(10)])).toBe(false); // still over: the producer must have paused
    buf.take(5);
    expect(drains).toBe(0); // 1005 left: still at or over the limit
    buf.take(100);
    expect(drains).toBe(1);
    buf.take(100);
    expect(drains).toBe(1);
    expect(buf.push([chunk(10)])).toBe(true);
  });

  it('wait: at once when bytes are there, else at the first push, else after the hold-off', async () => {
    const buf = new DownstreamBuffer(1000);
    let done = false;
    void buf.wait(50).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(49);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);

    done = false;
    void buf.wait(50).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(10);
    buf.push([chunk(1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    await expect(buf.wait(50)).resolves.toBeUndefined(); // bytes buffered: no wait
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gather: keeps a poll while bytes keep coming (gaps under quietMs), up to the limit or the deadline', async () => {
    const buf = new DownstreamBuffer(1 << 20);
    buf.push([chunk(100)]);
    let done = false;
    void buf.gather(250, 2, Date.now() + 50).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(1);
    buf.push([chunk(100)]);
    await vi.advanceTimersByTimeAsync(1);
    buf.push([chunk(100)]); // 300 ≥ 250: done without waiting for quiet
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);

    const quiet = new DownstreamBuffer(1 << 20);
    quiet.push([chunk(10)]);
    done = false;
    void quiet.gather(1000, 2, Date.now() + 50).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // a 2 ms gap: the burst is over
    expect(done).toBe(true);
  });

  it('wake releases every waiting poll at once (the session is ending)', async () => {
    const buf = new DownstreamBuffer(1000);
    const released: number[] = [];
    void buf.wait(10_000).then(() => released.push(1));
    void buf.wait(10_000).then(() => released.push(2));
    buf.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual([1, 2]);
  });
});

class StandInUpstream implements Upstream {
  readonly downstream = new DownstreamBuffer(1024);
  finished = false;
  ended = false;
  closed = 0;
  held = 0;
  told = 0;
  movedAway = false;
  constructor(public streamCount: number = 0) {}
  memoryUsed() {
    return this.held;
  }
  relieve() {}
  async write() {}
  goaway() {
    this.told++;
  }
  closeQuiet() {}
  close() {
    this.closed++;
  }
}

describe('SessionRegistry', () => {
  it('counts sessions held elsewhere (WebTransport) against the same limit', () => {
    let others = 0;
    const reg = new SessionRegistry({ maxSessions: 3, maxSessionsPerClient: 10, idleTimeoutMs: 1000, onEnd: () => undefined, others: () => others });
    reg.add('a', new StandInUpstream());
    reg.add('b', new StandInUpstream());
    expect(reg.full).toBe(false);
    others = 1;
    expect(reg.full).toBe(true);
    expect(reg.size).toBe(2);
  });

  it('ends a session once: its upstream closed, the reason told; a stale handle ends nothing', () => {
    const ended: Array<[string, string]> = [];
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 10, idleTimeoutMs: 1000, onEnd: (s, reason) => ended.push([s.id, reason]) });
    const up = new StandInUpstream();
    const s = reg.add('a', up);
    reg.end(s, 'finished');
    reg.end(s, 'finished');
    expect(up.closed).toBe(1);
    expect(ended).toEqual([['a', 'finished']]);
    const again = reg.add('a', new StandInUpstream());
    reg.end(s, 'idle'); // the old session object, the id now someone else's
    expect(reg.get('a')).toBe(again);
  });

  it('reaps exactly the sessions idle for the timeout; closeAll ends the rest as shutdown', () => {
    const ended: Array<[string, string]> = [];
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 10, idleTimeoutMs: 1000, onEnd: (s, reason) => ended.push([s.id, reason]) });
    const old = reg.add('old', new StandInUpstream(2));
    const fresh = reg.add('fresh', new StandInUpstream(3));
    old.lastActive = 0;
    fresh.lastActive = 500;
    expect(reg.streamCount).toBe(5);
    reg.reap(999);
    expect(ended).toEqual([]);
    reg.reap(1000);
    expect(ended).toEqual([['old', 'idle']]);
    expect(reg.streamCount).toBe(3);
    reg.closeAll();
    expect(ended).toEqual([
      ['old', 'idle'],
      ['fresh', 'shutdown'],
    ]);
    expect(reg.size).toBe(0);
  });

  it('drain: every session, and each one opened after, is told to move; each ends once it has moved away', () => {
    const ended: Array<[string, string]> = [];
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 10, idleTimeoutMs: 60_000, onEnd: (s, r) => ended.push([s.id, r]) });
    const before = new StandInUpstream(1);
    reg.add('before', before);
    reg.reap(0);
    expect(before.told).toBe(0);
    reg.drain();
    expect(before.told).toBe(1);
    const after = new StandInUpstream(1);
    reg.add('after', after);
    expect(after.told).toBe(1);
    reg.reap(1);
    expect(ended).toEqual([]);
    after.movedAway = true;
    reg.reap(2);
    expect(ended).toEqual([['after', 'drained']]);
    expect(reg.size).toBe(1);
  });

  it("gives each client a share of the table: one that holds its share is refused, the others are not", () => {
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 3, idleTimeoutMs: 60_000, onEnd: () => undefined });
    for (let i = 0; i < 3; i++) reg.add(`a${i}`, new StandInUpstream(1), 'attacker');
    expect(reg.refusal('attacker')).toBe('client');
    expect(reg.refusal('someone')).toBeNull();
    reg.end(reg.get('a0')!, 'finished');
    expect(reg.refusal('attacker')).toBeNull();
    for (let i = 0; i < 8; i++) reg.add(`b${i}`, new StandInUpstream(1), `c${i}`);
    expect(reg.refusal('new')).toBe('limit');
  });

  it('ends a session that carries no stream within seconds, a busy one only when idle', () => {
    let now = 0;
    const ended: Array<[string, string]> = [];
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 10, idleTimeoutMs: 120_000, onEnd: (s, r) => ended.push([s.id, r]), now: () => now });
    const empty = new StandInUpstream(0);
    const busy = new StandInUpstream(2);
    reg.add('empty', empty);
    reg.add('busy', busy);
    for (now = 0; now <= 9_000; now += 1000) reg.reap(now);
    expect(ended).toEqual([]);
    now = 10_000;
    reg.reap(now);
    expect(ended).toEqual([['empty', 'empty']]);
    busy.streamCount = 0; // its streams closed: the clock starts now
    for (now = 11_000; now < 21_000; now += 1000) reg.reap(now);
    expect(ended).toEqual([['empty', 'empty']]);
    reg.reap(21_000);
    expect(ended).toEqual([['empty', 'empty'], ['busy', 'empty']]);
  });

  it('refuses a new session the memory budget has no floor for, and counts what sessions hold', () => {
    const memory = new MemoryBudget(1000);
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 10, idleTimeoutMs: 60_000, onEnd: () => undefined, memory, sessionFloor: 300 });
    const a = new StandInUpstream(1);
    reg.add('a', a);
    a.held = 600;
    expect(memory.used(true)).toBe(600);
    expect(reg.refusal('x')).toBeNull();
    a.held = 701;
    expect(reg.refusal('x')).toBe('memory');
    reg.end(reg.get('a')!, 'finished');
    expect(memory.used(true)).toBe(0);
    expect(reg.refusal('x')).toBeNull();
  });

  it("holds each client to its memory share, and frees it as its sessions end", () => {
    expect(clientMemory(1024, 100, 10, 50)).toBe(102); // M × N_c ÷ N
    expect(clientMemory(1024, 100, 1, 50)).toBe(50); // never below one session's S
    const reg = new SessionRegistry({ maxSessions: 10, maxSessionsPerClient: 10, idleTimeoutMs: 60_000, onEnd: () => undefined, memory: new MemoryBudget(10_000), sessionFloor: 100, clientMemory: 1000 });
    const a = new StandInUpstream(1);
    reg.add('a', a, 'greedy');
    a.held = 850;
    expect(reg.clientHasRoom('greedy', 100)).toBe(true);
    expect(reg.refusal('greedy')).toBeNull();
    a.held = 901;
    expect(reg.clientHasRoom('greedy', 100)).toBe(false);
    expect(reg.refusal('greedy')).toBe('memory');
    expect(reg.refusal('modest')).toBeNull();
    reg.end(reg.get('a')!, 'finished');
    expect(reg.clientMemoryUsed('greedy')).toBe(0);
    expect(reg.refusal('greedy')).toBeNull();
  });

  it('matches a model under any sequence of adds, ends and reaps', () => {
    type Op = { kind: 'add'; id: number } | { kind: 'end'; id: number } | { kind: 'reap'; at: number } | { kind: 'touch'; id: number; at: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), id: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant('end' as const), id: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant('reap' as const), at: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({ kind: fc.constant('touch' as const), id: fc.integer({ min: 0, max: 5 }), at: fc.integer({ min: 0, max: 5000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const endedCount = new Map<string, number>();
        const reg = new SessionRegistry({ maxSessions: 4, maxSessionsPerClient: 4, idleTimeoutMs: 1000, onEnd: (s) => endedCount.set(s.id, (endedCount.get(s.id) ?? 0) + 1) });
        const model = new Map<string, { lastActive: number; upstream: StandInUpstream }>();
        const live = new Map<string, EdgeSession>();
        for (const o of ops) {
          if (o.kind === 'add') {
            const id = String(o.id);
            if (reg.get(id) || reg.refusal('') !== null) continue; // what the meek handler checks first
            const upstream = new StandInUpstream(1);
            const s = reg.add(id, upstream);
            s.lastActive = 0;
            live.set(id, s);
            model.set(id, { lastActive: 0, upstream });
          } else if (o.kind === 'end') {
            const s = live.get(String(o.id));
            if (s) reg.end(s, 'finished');
            model.delete(String(o.id));
          } else if (o.kind === 'touch') {
            const s = reg.get(String(o.id));
            if (s) s.lastActive = o.at;
            const m = model.get(String(o.id));
            if (m) m.lastActive = o.at;
          } else {
            reg.reap(o.at);
            for (const [id, m] of model) if (o.at - m.lastActive >= 1000) model.delete(id);
          }
          expect(reg.size).toBe(model.size);
          expect(reg.size).toBeLessThanOrEqual(4);
          expect(reg.streamCount).toBe(model.size);
        }
        // Every upstream the registry let go of was closed exactly once.
        for (const [, s] of live) {
          const up = s.upstream as unknown as StandInUpstream;
          expect(up.closed).toBe(reg.get(s.id) === s ? 0 : 1);
        }
      }),
    );
  });
});
