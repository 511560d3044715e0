import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import {
  DEFAULT_CLIENT_MAX_BODY,
  MAX_HOLD_MS,
  MAX_LANES,
  PADDING_MAX,
  PADDING_MIN,
  paddingValue,
  DEFAULT_SERVER_MAX_BODY,
  HEADER_AUTH,
  HEADER_MAX_BODY,
  HEADER_SEQ,
  HEADER_SESSION_ID,
  INITIAL_UPLOAD_LIMIT,
  MAX_MAX_BODY,
  MAX_SEQ,
  MIN_MAX_BODY,
  SMALL_UPLOAD_BYTES,
  isValidSeq,
  newSessionId,
  parseMaxBody,
  parseMeekRequestHeaders,
  parseSeq,
  parseSessionId,
} from '../../shared/meek/headers.ts';
import { MeekError } from '../../shared/errors.ts';

/** Throws a MeekError with code HEADER (HTTP 400), nothing else. */
const rejects400 = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect((e instanceof MeekError && e.code === 'HEADER'), String(e)).toBe(true);
    return;
  }
  throw new Error('expected HEADER');
};

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-';

/** Strings that look almost like numbers: the characters parsers get wrong. */
const numberish = fc
  .array(fc.constantFrom(...'0123456789', '+', '-', '.', 'e', 'E', 'x', ' ', '\t', '\n', '\u00a0', '\u0661', '_', ','), { maxLength: 24 })
  .map((cs) => cs.join(''));

describe('meek header constants', () => {
  it('match PROTOCOL.md §1', () => {
    expect([HEADER_SESSION_ID, HEADER_SEQ, HEADER_MAX_BODY, HEADER_AUTH]).toEqual(['x-session-id', 'x-meek-seq', 'x-meek-max-body', 'x-meek-auth']);
    expect(DEFAULT_SERVER_MAX_BODY).toBe(262144);
    expect(DEFAULT_CLIENT_MAX_BODY).toBe(65536);
    expect(INITIAL_UPLOAD_LIMIT).toBe(65536);
    expect(MIN_MAX_BODY).toBe(1024);
    expect(SMALL_UPLOAD_BYTES).toBe(8192);
    expect(MAX_SEQ).toBe(2 ** 53 - 1);
  });
});

describe('session ids', () => {
  it('accept 8–128 chars of [A-Za-z0-9+/=_-], Tor-style ids included', () => {
    expect(parseSessionId('ab+/cdEF12g')).toBe('ab+/cdEF12g');
    expect(parseSessionId('x5ej2h96frvLXeqgKNjIyRDRJidU8RMIeRPDzvLVG+E=')).toBeTruthy();
    expect(parseSessionId('a'.repeat(8))).toBe('a'.repeat(8));
    expect(parseSessionId('a'.repeat(128))).toBe('a'.repeat(128));
    for (const bad of [undefined, '', 'short77', 'a'.repeat(129), 'has space1', 'semi;colon', 'ünïcode123', 'abcdefgh\n', '\nabcdefgh', 'abc.defgh'])
      rejects400(() => parseSessionId(bad));
  });

  it('any string is accepted exactly when it has the right length and alphabet', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 140 }), fc.string({ unit: fc.constantFrom(...ID_ALPHABET), maxLength: 140 })), (s) => {
        const ok = s.length >= 8 && s.length <= 128 && [...s].every((c) => ID_ALPHABET.includes(c));
        if (ok) expect(parseSessionId(s)).toBe(s);
        else rejects400(() => parseSessionId(s));
      }),
    );
  });

  it('newSessionId: 16 bytes from crypto.getRandomValues, base64url without padding', () => {
    const bytes = Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 250) & 255);
    const spy = vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation((a) => {
      (a as Uint8Array).set(bytes);
      return a;
    });
    try {
      expect(newSessionId()).toBe(Buffer.from(bytes).toString('base64url'));
      expect(spy).toHaveBeenCalledOnce();
    } finally {
      spy.mockRestore();
    }
    const ids = new Set(Array.from({ length: 1000 }, () => newSessionId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{21}[AQgw]$/); // 128 bits: the last char holds 2 bits
      expect(parseSessionId(id)).toBe(id);
      expect(Buffer.from(id, 'base64url').length).toBe(16);
    }
  });
});

describe('X-Meek-Seq', () => {
  it('plain decimal 1 … 2^53−1 only', () => {
    expect(parseSeq('1')).toBe(1);
    expect(parseSeq('42')).toBe(42);
    expect(parseSeq(String(2 ** 53 - 1))).toBe(2 ** 53 - 1);
    for (const bad of ['0', '00', '-1', '+1', ' 1', '1 ', '\t1', '1\n', '01', '1e3', '0x10', '1.0', '1_000', '\u0661', String(2 ** 53), '99999999999999999', '1'.repeat(400), ''])
      rejects400(() => parseSeq(bad));
  });

  it('every integer in range round-trips', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
      expect(parseSeq(String(n))).toBe(n);
    }));
    fc.assert(fc.property(fc.bigInt({ min: 2n ** 53n, max: 2n ** 80n }), (n) => {
      rejects400(() => parseSeq(n.toString()));
    }));
  });

  it('accepts a hostile string only when it is the canonical decimal of an in-range integer', () => {
    fc.assert(
      fc.property(fc.oneof(numberish, fc.string({ unit: 'binary', maxLength: 30 })), (s) => {
        let n: number;
        try {
          n = parseSeq(s);
        } catch (e) {
          expect((e instanceof MeekError && e.code === 'HEADER')).toBe(true);
          return;
        }
        expect(isValidSeq(n)).toBe(true);
        expect(String(n)).toBe(s);
      }),
    );
  });

  it('isValidSeq', () => {
    expect([1, 2 ** 53 - 1].map(isValidSeq)).toEqual([true, true]);
    expect([0, -1, 1.5, 2 ** 53, NaN, Infinity].map(isValidSeq)).toEqual([false, false, false, false, false, false]);
  });
});

describe('X-Meek-Max-Body', () => {
  it('an integer from 1024; absurd values capped at 16 MiB, not refused', () => {
    expect(parseMaxBody('1024')).toBe(1024);
    expect(parseMaxBody('262144')).toBe(262144);
    expect(parseMaxBody('999999999999')).toBe(MAX_MAX_BODY);
    expect(parseMaxBody('9'.repeat(400))).toBe(MAX_MAX_BODY);
    for (const bad of ['1023', '0', '-5', '+2048', ' 2048', '2048 ', 'lots', '1e6', '2048.0', '0x800', ''])
      rejects400(() => parseMaxBody(bad));
  });

  it('every integer maps to min(n, 16 MiB) from 1024 and is refused below', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => {
        if (n < 1024) rejects400(() => parseMaxBody(String(n)));
        else expect(parseMaxBody(String(n))).toBe(Math.min(n, MAX_MAX_BODY));
      }),
    );
  });

  it('hostile strings: MeekError or an integer in 1024 … 16 MiB', () => {
    fc.assert(
      fc.property(fc.oneof(numberish, fc.string({ unit: 'binary', maxLength: 30 })), (s) => {
        try {
          const n = parseMaxBody(s);
          expect(Number.isInteger(n) && n >= MIN_MAX_BODY && n <= MAX_MAX_BODY).toBe(true);
        } catch (e) {
          expect((e instanceof MeekError && e.code === 'HEADER')).toBe(true);
        }
      }),
    );
  });
});

describe('parseMeekRequestHeaders', () => {
  it('reads the three headers by lowercase name; absent optional ones are null', () => {
    const asked: string[] = [];
    const h: Record<string, string> = { 'x-session-id': 'abcdefgh12', 'x-meek-seq': '7', 'x-meek-max-body': '4096' };
    expect(parseMeekRequestHeaders((n) => (asked.push(n), h[n]))).toEqual({ sessionId: 'abcdefgh12', seq: 7, clientMaxBody: 4096, v2: null });
    expect(asked.every((n) => n === n.toLowerCase())).toBe(true);
    expect(parseMeekRequestHeaders((n) => (n === 'x-session-id' ? 'abcdefgh12' : undefined))).toEqual({ sessionId: 'abcdefgh12', seq: null, clientMaxBody: null, v2: null });
    rejects400(() => parseMeekRequestHeaders(() => undefined));
    rejects400(() => parseMeekRequestHeaders((n) => ({ ...h, 'x-meek-seq': '0' })[n]));
    rejects400(() => parseMeekRequestHeaders((n) => ({ ...h, 'x-meek-seq': '' })[n]));
    rejects400(() => parseMeekRequestHeaders((n) => ({ ...h, 'x-meek-max-body': '512' })[n]));
  });

  it('hostile header values end in MeekError HEADER, never another exception', () => {
    const value = fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 50 }), numberish), { nil: undefined });
    fc.assert(
      fc.property(value, value, value, (id, seq, max) => {
        const h: Record<string, string | undefined> = { 'x-session-id': id, 'x-meek-seq': seq, 'x-meek-max-body': max };
        try {
          const out = parseMeekRequestHeaders((n) => h[n]);
          expect(out.sessionId).toBe(id);
          expect(out.seq === null ? seq === undefined : String(out.seq) === seq).toBe(true);
          expect(out.clientMaxBody === null ? max === undefined : out.clientMaxBody >= MIN_MAX_BODY).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(MeekError);
          expect((e as MeekError).code).toBe('HEADER');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('meek v2: X-Meek-Version 2 with ack, down and hold; v2 headers without the version are 400', () => {
    const base = { 'x-session-id': 'abcdefgh12' };
    const parse = (h: Record<string, string>) => parseMeekRequestHeaders((n) => ({ ...base, ...h })[n as 'x-session-id']);
    const none = { lane: null, rewind: false };
    expect(parse({ 'x-meek-version': '2' }).v2).toEqual({ ack: 0, down: null, holdMs: null, ...none });
    expect(parse({ 'x-meek-version': '2', 'x-meek-ack': '123456', 'x-meek-down': 'poll', 'x-meek-hold': '5000' }).v2).toEqual({ ack: 123456, down: 'poll', holdMs: 5000, ...none });
    expect(parse({ 'x-meek-version': '2', 'x-meek-down': 'stream' }).v2).toEqual({ ack: 0, down: 'stream', holdMs: null, ...none });
    expect(parse({ 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': '3' }).v2).toEqual({ ack: 0, down: 'stream', holdMs: null, lane: 3, rewind: false });
    expect(parse({ 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': '0', 'x-meek-rewind': '1' }).v2).toEqual({ ack: 0, down: 'stream', holdMs: null, lane: 0, rewind: true });
    expect(parse({ 'x-meek-version': '2', 'x-meek-ack': String(Number.MAX_SAFE_INTEGER) }).v2?.ack).toBe(Number.MAX_SAFE_INTEGER);
    const bads: Array<Record<string, string>> = [
      { 'x-meek-version': '1' },
      { 'x-meek-version': '3' },
      { 'x-meek-ack': '0' },
      { 'x-meek-down': 'poll' },
      { 'x-meek-version': '2', 'x-meek-ack': '-1' },
      { 'x-meek-version': '2', 'x-meek-ack': '01' },
      { 'x-meek-version': '2', 'x-meek-ack': '9007199254740992' },
      { 'x-meek-version': '2', 'x-meek-down': 'pull' },
      { 'x-meek-version': '2', 'x-meek-hold': '100' },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-hold': '100' },
      { 'x-meek-version': '2', 'x-meek-down': 'poll', 'x-meek-hold': '5001' },
      { 'x-meek-version': '2', 'x-meek-down': 'poll', 'x-meek-hold': '1e3' },
      { 'x-meek-lane': '0' },
      { 'x-meek-version': '2', 'x-meek-lane': '0' },
      { 'x-meek-version': '2', 'x-meek-down': 'poll', 'x-meek-lane': '0' },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': String(MAX_LANES) },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': '01' },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': '-1' },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-rewind': '1' },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': '1', 'x-meek-rewind': '0' },
      { 'x-meek-version': '2', 'x-meek-down': 'stream', 'x-meek-lane': '1', 'x-meek-rewind': 'yes' },
    ];
    for (const bad of bads) rejects400(() => parse(bad));
  });

  it('hostile v2 header values end in MeekError HEADER, never another exception', () => {
    const value = fc.option(fc.oneof(fc.string({ maxLength: 40 }), numberish, fc.constantFrom('2', 'poll', 'stream', '0', '1', '3', '5000')), { nil: undefined });
    fc.assert(
      fc.property(value, value, value, value, value, value, (version, ack, down, hold, lane, rewind) => {
        const h: Record<string, string | undefined> = { 'x-session-id': 'abcdefgh12', 'x-meek-version': version, 'x-meek-ack': ack, 'x-meek-down': down, 'x-meek-hold': hold, 'x-meek-lane': lane, 'x-meek-rewind': rewind };
        try {
          const out = parseMeekRequestHeaders((n) => h[n]);
          if (out.v2) {
            expect(version).toBe('2');
            expect(Number.isSafeInteger(out.v2.ack) && out.v2.ack >= 0).toBe(true);
            expect(out.v2.holdMs === null || (out.v2.holdMs >= 0 && out.v2.holdMs <= MAX_HOLD_MS)).toBe(true);
            expect(out.v2.lane === null || (out.v2.down === 'stream' && Number.isInteger(out.v2.lane) && out.v2.lane >= 0 && out.v2.lane < MAX_LANES)).toBe(true);
            expect(!out.v2.rewind || out.v2.lane !== null).toBe(true);
          } else {
            expect([version, ack, down, hold, lane, rewind].every((v) => v === undefined)).toBe(true);
          }
        } catch (e) {
          expect(e).toBeInstanceOf(MeekError);
          expect((e as MeekError).code).toBe('HEADER');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('padding values are header-safe, random and within the documented lengths', () => {
    const values = Array.from({ length: 200 }, () => paddingValue());
    for (const v of values) {
      expect(v.length).toBeGreaterThanOrEqual(PADDING_MIN);
      expect(v.length).toBeLessThanOrEqual(PADDING_MAX);
      expect(v).toMatch(/^[A-Za-z0-9_-]+$/);
    }
    expect(new Set(values.map((v) => v.length)).size).toBeGreaterThan(50);
    expect(paddingValue(() => 0).length).toBe(PADDING_MIN);
    expect(paddingValue(() => 0.9999999).length).toBe(PADDING_MAX);
  });
});
