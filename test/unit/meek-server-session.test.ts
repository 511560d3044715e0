import { describe, expect, it } from 'vitest';
import { MeekServerSession, checkNewSession, negotiateResponseLimit } from '../../shared/meek/server-session.ts';
import { MeekError } from '../../shared/errors.ts';

const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof MeekError ? e.code : 'other';
  }
};

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A process() whose completion the test controls. */
function gate<T>(value: T) {
  let release!: () => void;
  let fail!: (e: Error) => void;
  let started = false;
  const run = () =>
    new Promise<T>((resolve, reject) => {
      started = true;
      release = () => resolve(value);
      fail = reject;
    });
  return { run, release: () => release(), fail: (e: Error) => fail(e), get started() { return started; } };
}

describe('MeekServerSession', () => {
  it('processes last+1, replays last, refuses any other seq without side effects', async () => {
    const s = new MeekServerSession<string>();
    let runs = 0;
    const process = (v: string) => async () => (runs++, v);
    expect(await s.handle(1, process('a'))).toEqual({ replayed: false, response: 'a' });
    expect(await s.handle(1, process('x'))).toEqual({ replayed: true, response: 'a' });
    expect(await code(s.handle(3, process('x')))).toBe('SEQ');
    expect(s.lastSeq).toBe(1);
    expect(await s.handle(1, process('x'))).toEqual({ replayed: true, response: 'a' }); // the 409 changed nothing
    expect(await s.handle(2, process('b'))).toEqual({ replayed: false, response: 'b' });
    expect(await code(s.handle(1, process('x')))).toBe('SEQ'); // the stored response moved on
    expect(await s.handle(2, process('x'))).toEqual({ replayed: true, response: 'b' });
    expect(s.lastSeq).toBe(2);
    expect(runs).toBe(2);
  });

  it('replays the very response object, without calling process', async () => {
    const s = new MeekServerSession<Uint8Array>();
    const body = new Uint8Array([1, 2, 3]);
    await s.handle(1, async () => body);
    const r = await s.handle(1, () => Promise.reject(new Error('must not run')));
    expect(r.replayed).toBe(true);
    expect(r.response).toBe(body);
  });

  it('replays a stored null or undefined like any other response', async () => {
    const s = new MeekServerSession<null>();
    let runs = 0;
    await s.handle(1, async () => (runs++, null));
    expect(await s.handle(1, async () => (runs++, null))).toEqual({ replayed: true, response: null });
    expect(runs).toBe(1);
  });

  it('a first request with a seq other than 1 is refused and leaves the session as new', async () => {
    const s = new MeekServerSession<string>();
    let runs = 0;
    expect(await code(s.handle(2, async () => (runs++, 'x')))).toBe('SEQ');
    expect(runs).toBe(0);
    // Neither the seq nor the mode was taken from the refused request.
    expect(await s.handle(null, async () => (runs++, 'plain'))).toEqual({ replayed: false, response: 'plain' });
    expect(runs).toBe(1);
  });

  it('an out-of-range seq is a header error (400), not an order error', async () => {
    const s = new MeekServerSession<string>();
    for (const bad of [0, -1, 1.5, 2 ** 53, NaN]) expect(await code(s.handle(bad, async () => 'x'))).toBe('HEADER');
    expect(await s.handle(1, async () => 'a')).toEqual({ replayed: false, response: 'a' });
  });

  it('a retry arriving while its original is in flight waits and gets the same response', async () => {
    const s = new MeekServerSession<string>();
    const g = gate('once');
    let runs = 0;
    const first = s.handle(1, () => (runs++, g.run()));
    const retry = s.handle(1, async () => (runs++, 'twice'));
    let retryDone = false;
    void retry.then(() => (retryDone = true));
    await tick();
    expect(retryDone).toBe(false); // still waiting for the original
    g.release();
    expect(await first).toEqual({ replayed: false, response: 'once' });
    expect(await retry).toEqual({ replayed: true, response: 'once' });
    expect(runs).toBe(1);
  });

  it('runs one request of a session at a time, in arrival order', async () => {
    const s = new MeekServerSession<string>();
    const g1 = gate('one');
    const g2 = gate('two');
    const order: string[] = [];
    const p1 = s.handle(1, () => (order.push('start 1'), g1.run()));
    const p2 = s.handle(2, () => (order.push('start 2'), g2.run()));
    await tick();
    expect(g1.started).toBe(true);
    expect(g2.started).toBe(false);
    g1.release();
    await p1;
    await tick();
    expect(g2.started).toBe(true);
    g2.release();
    expect((await p2).response).toBe('two');
    expect(order).toEqual(['start 1', 'start 2']);
  });

  it('a failed process stores nothing and does not advance, so the retry runs it again', async () => {
    const s = new MeekServerSession<string>();
    expect(await code(s.handle(1, async () => Promise.reject(new Error('upstream write failed'))))).toBe('other');
    expect(s.lastSeq).toBe(0);
    expect(await code(s.handle(2, async () => 'skip'))).toBe('SEQ');
    expect(await s.handle(1, async () => 'again')).toEqual({ replayed: false, response: 'again' });
  });

  it('a retry queued behind an original that fails is processed afresh', async () => {
    const s = new MeekServerSession<string>();
    const g = gate('never');
    const first = s.handle(1, g.run);
    const retry = s.handle(1, async () => 'second try');
    await tick();
    g.fail(new Error('upstream gone'));
    expect(await code(first)).toBe('other');
    expect(await retry).toEqual({ replayed: false, response: 'second try' });
    expect(s.lastSeq).toBe(1);
  });

  it('passes a MeekError from process through (the edge maps GONE to 410)', async () => {
    const s = new MeekServerSession<string>();
    expect(await code(s.handle(1, async () => Promise.reject(new MeekError('GONE', 'ended'))))).toBe('GONE');
  });

  it('keeps a session in the mode it began with: seq or plain meek', async () => {
    const withSeq = new MeekServerSession<string>();
    await withSeq.handle(1, async () => 'a');
    expect(await code(withSeq.handle(null, async () => 'b'))).toBe('HEADER');
    expect(await withSeq.handle(2, async () => 'c')).toEqual({ replayed: false, response: 'c' });
    const plain = new MeekServerSession<string>();
    let runs = 0;
    expect(await plain.handle(null, async () => (runs++, 'a'))).toEqual({ replayed: false, response: 'a' });
    expect(await plain.handle(null, async () => (runs++, 'a'))).toEqual({ replayed: false, response: 'a' }); // no replay without seq
    expect(runs).toBe(2);
    expect(await code(plain.handle(1, async () => 'c'))).toBe('HEADER');
  });
});

describe('checkNewSession and negotiateResponseLimit', () => {
  it('an unknown session above seq 1 is gone (410), never a new one', () => {
    expect(() => checkNewSession(2)).toThrow(/unknown session/);
    try {
      checkNewSession(2 ** 53 - 1);
      throw new Error('expected a throw');
    } catch (e) {
      expect((e instanceof MeekError && e.code === 'GONE')).toBe(true);
    }
    expect(() => checkNewSession(1)).not.toThrow();
    expect(() => checkNewSession(null)).not.toThrow();
  });

  it('a response carries at most min(server max, client max ?? 65536)', () => {
    expect(negotiateResponseLimit(262144, null)).toBe(65536);
    expect(negotiateResponseLimit(262144, 1024)).toBe(1024);
    expect(negotiateResponseLimit(100_000, 1_000_000)).toBe(100_000);
    expect(negotiateResponseLimit(32768, null)).toBe(32768);
  });
});
