import { describe, expect, it } from 'vitest';
import { MeekServerSession, checkNewSession, negotiateResponseLimit } from '../../shared/meek/server-session.ts';
import { isProtocolError } from '../../shared/errors.ts';

const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isProtocolError(e) ? e.code : 'other';
  }
};

describe('MeekServerSession', () => {
  it('processes last+1, replays last, refuses any other seq without side effects', async () => {
    const s = new MeekServerSession<string>();
    let runs = 0;
    const process = (v: string) => async () => (runs++, v);
    expect(await s.handle(1, process('a'))).toEqual({ replayed: false, response: 'a' });
    expect(await s.handle(1, process('x'))).toEqual({ replayed: true, response: 'a' });
    expect(await code(s.handle(3, process('x')))).toBe('MEEK_SEQ');
    expect(await code(s.handle(0, process('x')))).toBe('MEEK_SEQ');
    expect(await s.handle(2, process('b'))).toEqual({ replayed: false, response: 'b' });
    expect(await code(s.handle(1, process('x')))).toBe('MEEK_SEQ'); // the stored response moved on
    expect(runs).toBe(2);
  });

  it('a retry arriving while its original is in flight waits and gets the same response', async () => {
    const s = new MeekServerSession<string>();
    let release!: () => void;
    let runs = 0;
    const slow = () => new Promise<string>((r) => (runs++, (release = () => r('once'))));
    const first = s.handle(1, slow);
    const retry = s.handle(1, async () => (runs++, 'twice'));
    await new Promise((r) => setImmediate(r));
    release();
    expect(await first).toEqual({ replayed: false, response: 'once' });
    expect(await retry).toEqual({ replayed: true, response: 'once' });
    expect(runs).toBe(1);
  });

  it('a failed process stores nothing, so the retry runs it again', async () => {
    const s = new MeekServerSession<string>();
    expect(await code(s.handle(1, async () => Promise.reject(new Error('upstream write failed'))))).toBe('other');
    expect(await s.handle(1, async () => 'again')).toEqual({ replayed: false, response: 'again' });
  });

  it('keeps a session in the mode it began with: seq or plain meek', async () => {
    const withSeq = new MeekServerSession<string>();
    await withSeq.handle(1, async () => 'a');
    expect(await code(withSeq.handle(null, async () => 'b'))).toBe('MEEK_HEADER');
    const plain = new MeekServerSession<string>();
    expect(await plain.handle(null, async () => 'a')).toEqual({ replayed: false, response: 'a' });
    expect(await plain.handle(null, async () => 'b')).toEqual({ replayed: false, response: 'b' });
    expect(await code(plain.handle(1, async () => 'c'))).toBe('MEEK_HEADER');
  });

  it('unknown sessions above seq 1 are gone; limits are negotiated down', () => {
    expect(() => checkNewSession(2)).toThrow(/unknown session/);
    expect(() => checkNewSession(1)).not.toThrow();
    expect(() => checkNewSession(null)).not.toThrow();
    expect(negotiateResponseLimit(262144, null)).toBe(65536);
    expect(negotiateResponseLimit(262144, 1024)).toBe(1024);
    expect(negotiateResponseLimit(100_000, 1_000_000)).toBe(100_000);
  });
});
