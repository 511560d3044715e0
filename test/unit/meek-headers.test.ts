import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { newSessionId, parseMaxBody, parseMeekRequestHeaders, parseSeq, parseSessionId } from '../../shared/meek/headers.ts';
import { PollSchedule } from '../../shared/meek/schedule.ts';
import { ProtocolError } from '../../shared/errors.ts';

const rejects = (f: () => unknown) => expect(f).toThrow(ProtocolError);

describe('meek headers', () => {
  it('session ids: 8–128 chars of the documented alphabet, Tor-style ids included', () => {
    expect(parseSessionId('ab+/cdEF12g')).toBe('ab+/cdEF12g');
    expect(parseSessionId('x5ej2h96frvLXeqgKNjIyRDRJidU8RMIeRPDzvLVG+E=')).toBeTruthy();
    for (const bad of [undefined, '', 'short', 'a'.repeat(129), 'has space1', 'semi;colon', 'ünïcode123']) rejects(() => parseSessionId(bad));
    const id = newSessionId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(newSessionId()).not.toBe(id);
  });

  it('seq: plain decimal 1 … 2^53−1 only', () => {
    expect(parseSeq('1')).toBe(1);
    expect(parseSeq(String(2 ** 53 - 1))).toBe(2 ** 53 - 1);
    for (const bad of ['0', '-1', '+1', ' 1', '1 ', '01', '1e3', '0x10', '1.0', String(2 ** 53), '99999999999999999', '']) rejects(() => parseSeq(bad));
  });

  it('max body: an integer from 1024, absurd values capped', () => {
    expect(parseMaxBody('1024')).toBe(1024);
    expect(parseMaxBody('999999999999')).toBe(16 * 1024 * 1024);
    for (const bad of ['1023', '0', '-5', 'lots', '1e6', '']) rejects(() => parseMaxBody(bad));
  });

  it('hostile header values end in ProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.option(fc.string({ maxLength: 200 })), fc.option(fc.string()), fc.option(fc.string()), (id, seq, max) => {
        const h: Record<string, string | null> = { 'x-session-id': id, 'x-meek-seq': seq, 'x-meek-max-body': max };
        try {
          const out = parseMeekRequestHeaders((n) => h[n] ?? undefined);
          expect(out.sessionId).toBe(id);
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
        }
      }),
    );
  });
});

describe('PollSchedule', () => {
  it('backs off ×1.5 from 100 ms to 5 s on empty round trips and resets on bytes or writes', () => {
    const s = new PollSchedule(() => 0.5);
    const delays = Array.from({ length: 14 }, () => s.afterRoundTrip(false));
    expect(delays.slice(0, 4)).toEqual([100, 150, 225, 337.5]);
    expect(delays.at(-1)).toBe(5000);
    expect(s.afterRoundTrip(true)).toBe(0);
    expect(s.afterRoundTrip(false)).toBe(100);
    s.afterRoundTrip(false);
    s.reset();
    expect(s.afterRoundTrip(false)).toBe(100);
  });

  it('jitter stays within ±30 %', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 0, max: 20 }), (r, n) => {
        const s = new PollSchedule(() => r);
        for (let i = 0; i < n; i++) s.afterRoundTrip(false);
        const nominal = s.nominalDelay;
        const d = s.afterRoundTrip(false);
        expect(d).toBeGreaterThanOrEqual(nominal * 0.7 - 1e-9);
        expect(d).toBeLessThanOrEqual(nominal * 1.3 + 1e-9);
      }),
    );
  });
});
