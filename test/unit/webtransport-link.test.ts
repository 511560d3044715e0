import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LinkError, PassageError, UsageError } from '../../shared/errors.ts';
import { decodeSessionAnswer, decodeSessionRequest, encodeSessionAnswer, encodeSessionRequest, MAX_HELLO, type SessionRequest } from '../../shared/webtransport-link.ts';
import { concat as concatAll } from '../../shared/bytes.ts';
import { onlyProtocolErrors } from '../support/protocol-errors.ts';

/** The shared concat with the parts as arguments. */
const concat = (...parts: Uint8Array[]): Uint8Array => concatAll(parts);

/** A hello with an arbitrary body: u16 length, then the bytes. */
const hello = (body: Uint8Array | string): Uint8Array => {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  return concat(Uint8Array.of(bytes.length >> 8, bytes.length & 0xff), bytes);
};


const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const text = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: fc.oneof(fc.constantFrom('a', '"', '\\', '\u0000', '\u2028', '🧦', '/', '?', '%'), loneSurrogate), maxLength: 60 }),
);
// Rebuilt as a plain object: fc.record may hand out null-prototype objects.
const request: fc.Arbitrary<SessionRequest> = fc
  .record({ path: text, token: fc.option(text, { nil: null }), authority: text })
  .map(({ path, token, authority }) => ({ path, token, authority }));

describe('session request (front → edge)', () => {
  it('round-trips, unicode and a null token included, with the bytes after it as rest', () => {
    const fixed = { path: '/wt/', token: 'abc d', authority: '127.0.0.1:4433' };
    expect(decodeSessionRequest(encodeSessionRequest(fixed))).toEqual({ request: fixed, rest: new Uint8Array(0) });
    fc.assert(
      fc.property(request, fc.uint8Array({ maxLength: 20 }), (req, after) => {
        const wire = encodeSessionRequest(req);
        expect((wire[0]! << 8) | wire[1]!).toBe(wire.length - 2);
        const got = decodeSessionRequest(concat(wire, after));
        expect(got).not.toBeNull();
        expect(got!.request).toStrictEqual(req);
        expect(Array.from(got!.rest)).toEqual(Array.from(after));
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes incrementally: every prefix is null, then the whole request', () => {
    fc.assert(
      fc.property(request, fc.uint8Array({ maxLength: 8 }), (req, after) => {
        const wire = encodeSessionRequest(req);
        const all = concat(wire, after);
        for (let i = 0; i < wire.length; i++) expect(decodeSessionRequest(all.subarray(0, i))).toBeNull();
        for (let i = wire.length; i <= all.length; i++) {
          const got = decodeSessionRequest(all.subarray(0, i));
          expect(got!.request).toStrictEqual(req);
          expect(Array.from(got!.rest)).toEqual(Array.from(after.subarray(0, i - wire.length)));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a length field over MAX_HELLO as soon as it is read, and will not encode one', () => {
    for (const length of [MAX_HELLO + 1, 0x8000, 0xffff]) {
      const head = Uint8Array.of(length >> 8, length & 0xff);
      expect(() => decodeSessionRequest(head)).toThrow(LinkError);
      expect(() => decodeSessionRequest(concat(head, new Uint8Array(100)))).toThrow(LinkError);
    }
    fc.assert(
      fc.property(fc.integer({ min: MAX_HELLO + 1, max: 0xffff }), fc.uint8Array({ maxLength: 16 }), (length, tail) => {
        expect(() => decodeSessionRequest(concat(Uint8Array.of(length >> 8, length & 0xff), tail))).toThrow(LinkError);
      }),
    );
    // The largest acceptable hello still decodes.
    const filler = 'x'.repeat(MAX_HELLO - JSON.stringify({ path: '', token: null, authority: 'a' }).length);
    const biggest = { path: filler, token: null, authority: 'a' };
    const wire = encodeSessionRequest(biggest);
    expect(wire.length).toBe(2 + MAX_HELLO);
    expect(decodeSessionRequest(wire)!.request).toEqual(biggest);
    expect(() => encodeSessionRequest({ ...biggest, path: `${filler}x` })).toThrow(UsageError);
  });

  it('refuses bodies that are not JSON, not UTF-8, or have missing or mistyped fields', () => {
    const bad: Array<Uint8Array | string> = [
      '',
      'not json',
      '{"path":"/wt/"',
      Uint8Array.of(0x7b, 0xff, 0x7d), // not UTF-8
      Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22), // an encoded surrogate is not UTF-8 either
      'null',
      '42',
      '"a string"',
      '[]',
      '["/wt/", null, "a"]',
      '{}',
      '{"path":"/wt/","authority":"a"}', // token missing (undefined is neither null nor a string)
      '{"path":"/wt/","token":1,"authority":"a"}',
      '{"path":"/wt/","token":false,"authority":"a"}',
      '{"path":"/wt/","token":["t"],"authority":"a"}',
      '{"path":null,"token":null,"authority":"a"}',
      '{"path":7,"token":null,"authority":"a"}',
      '{"path":"/wt/","token":null}',
      '{"path":"/wt/","token":null,"authority":{}}',
    ];
    for (const body of bad) expect(() => decodeSessionRequest(hello(body)), String(body)).toThrow(LinkError);
    // Extra fields are tolerated, and only the known ones come out.
    expect(decodeSessionRequest(hello('{"path":"/p","token":null,"authority":"a","x":1}'))!.request).toStrictEqual({ path: '/p', token: null, authority: 'a' });
  });

  it('arbitrary bytes never throw anything but LinkError', () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.json({ maxDepth: 3 }).map((j) => new TextEncoder().encode(j)),
      fc
        .record({ path: fc.jsonValue({ maxDepth: 1 }), token: fc.jsonValue({ maxDepth: 1 }), authority: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] })
        .map((o) => new TextEncoder().encode(JSON.stringify(o))),
    );
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.tuple(body, fc.uint8Array({ maxLength: 8 })).map(([b, after]) => concat(hello(b), after)),
    );
    fc.assert(
      fc.property(input, (buf) => {
        const r = onlyProtocolErrors(() => decodeSessionRequest(buf));
        if (r === null || r instanceof PassageError) return;
        expect(typeof r.request.path).toBe('string');
        expect(typeof r.request.authority).toBe('string');
        expect(r.request.token === null || typeof r.request.token === 'string').toBe(true);
        expect(r.rest.length).toBeLessThanOrEqual(buf.length - 2);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('session answer (edge → front)', () => {
  it('round-trips the statuses the edge sends, with the bytes after it as rest', () => {
    for (const status of [200, 403, 404, 503]) {
      const wire = encodeSessionAnswer(status);
      expect(wire.length).toBe(2);
      expect(decodeSessionAnswer(wire)).toEqual({ status, rest: new Uint8Array(0) });
      expect(decodeSessionAnswer(wire.subarray(0, 0))).toBeNull();
      expect(decodeSessionAnswer(wire.subarray(0, 1))).toBeNull();
      const got = decodeSessionAnswer(concat(wire, Uint8Array.of(1, 2, 3)));
      expect(got!.status).toBe(status);
      expect(Array.from(got!.rest)).toEqual([1, 2, 3]);
    }
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 599 }), fc.uint8Array({ maxLength: 16 }), (status, after) => {
        const got = decodeSessionAnswer(concat(encodeSessionAnswer(status), after));
        expect(got!.status).toBe(status);
        expect(Array.from(got!.rest)).toEqual(Array.from(after));
      }),
    );
  });

  it('refuses a status outside 200 … 599', () => {
    for (const status of [0, 100, 101, 199, 600, 999, 0xffff]) {
      expect(() => decodeSessionAnswer(encodeSessionAnswer(status))).toThrow(LinkError);
    }
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 199 }), fc.integer({ min: 600, max: 0xffff })), fc.uint8Array({ maxLength: 4 }), (status, after) => {
        expect(() => decodeSessionAnswer(concat(Uint8Array.of(status >> 8, status & 0xff), after))).toThrow(LinkError);
      }),
    );
  });
});
