import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  INITIAL_POLL_DELAY_MS,
  MAX_POLL_DELAY_MS,
  POLL_BACKOFF,
  POLL_JITTER,
  PollSchedule,
  pollWanted,
} from '../../shared/meek/schedule.ts';

describe('PollSchedule', () => {
  it('exports the documented constants', () => {
    expect([INITIAL_POLL_DELAY_MS, POLL_BACKOFF, MAX_POLL_DELAY_MS, POLL_JITTER]).toEqual([100, 1.5, 5000, 0.3]);
  });

  it('backs off ×1.5 from 100 ms to 5 s on empty round trips', () => {
    const s = new PollSchedule(() => 0.5); // 0.5: no jitter
    const delays = Array.from({ length: 14 }, () => s.afterRoundTrip(false));
    expect(delays.slice(0, 10)).toEqual([100, 150, 225, 337.5, 506.25, 759.375, 1139.0625, 1708.59375, 2562.890625, 3844.3359375]);
    expect(delays.slice(10)).toEqual([5000, 5000, 5000, 5000]);
    for (let i = 0; i < 1000; i++) s.afterRoundTrip(false);
    expect(s.afterRoundTrip(false)).toBe(5000);
  });

  it('a round trip that carried bytes means "at once" and restarts the backoff', () => {
    const s = new PollSchedule(() => 0.5);
    s.afterRoundTrip(false);
    s.afterRoundTrip(false);
    expect(s.afterRoundTrip(true)).toBe(0);
    expect(s.afterRoundTrip(false)).toBe(100);
    expect(s.afterRoundTrip(false)).toBe(150);
  });

  it('a write (reset) restarts the backoff', () => {
    const s = new PollSchedule(() => 0.5);
    for (let i = 0; i < 20; i++) s.afterRoundTrip(false);
    expect(s.nominalDelay).toBe(5000);
    s.reset();
    expect(s.nominalDelay).toBe(100);
    expect(s.afterRoundTrip(false)).toBe(100);
  });

  it('jitter spans ±30 % of the nominal delay, from the injected random', () => {
    expect(new PollSchedule(() => 0).afterRoundTrip(false)).toBeCloseTo(70, 9);
    expect(new PollSchedule(() => 0.999999999).afterRoundTrip(false)).toBeCloseTo(130, 5);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 0, max: 30 }), (r, n) => {
        const s = new PollSchedule(() => r);
        for (let i = 0; i < n; i++) s.afterRoundTrip(false);
        const nominal = Math.min(100 * 1.5 ** n, 5000);
        expect(s.nominalDelay).toBeCloseTo(nominal, 6);
        const d = s.afterRoundTrip(false);
        expect(d).toBeCloseTo(nominal * (0.7 + 0.6 * r), 6);
      }),
    );
  });

  it('a broken random source still gives a delay within the jitter bounds', () => {
    for (const [r, want] of [[NaN, 100], [-3, 70], [7, 130], [Infinity, 100]] as const) {
      expect(new PollSchedule(() => r).afterRoundTrip(false)).toBeCloseTo(want, 9);
    }
  });
});

describe('pollWanted', () => {
  it('polls while a stream is open, while bytes are queued, or right after bytes moved — else never', () => {
    const cases: Array<[boolean, number, boolean, boolean]> = [
      [false, 0, false, false],
      [true, 0, false, true],
      [false, 1, false, true],
      [false, 0, true, true],
      [true, 5, true, true],
    ];
    for (const [active, queuedBytes, lastCarried, want] of cases) expect(pollWanted({ active, queuedBytes, lastCarried })).toBe(want);
  });
});
