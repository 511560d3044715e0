import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { H3CodecError, PassageError } from '../../shared/errors.ts';
import { decodeSettings, FrameType, H3FrameDecoder, Setting, type H3Frame } from '../../shared/h3/frame.ts';
import { decodeFieldSection, type Field } from '../../shared/h3/qpack.ts';
import { encodeVarint, LARGE_VARINT, MAX_VARINT, readVarint } from '../../shared/h3/varint.ts';
import { concat as concatAll } from '../../shared/bytes.ts';
import { onlyProtocolErrors } from '../support/protocol-errors.ts';
import {
  classifyRequest,
  goawayFrame,
  http3ToWebtransport,
  readPreamble,
  responseHeaders,
  serverControlPreamble,
  SESSION_ACCEPTED,
  UniStreamType,
  webtransportToHttp3,
  WT_BIDI_SIGNAL,
} from '../../shared/h3/webtransport.ts';

const WT_FIRST = 0x52e4a40fa8db;
const WT_LAST = 0x52e5ac983162;
const MAX_CODE = 0xffffffff;
const isGrease = (h: number) => (h - 0x21) % 0x1f === 0;

/** The shared concat with the parts as arguments. */
const concat = (...parts: Uint8Array[]): Uint8Array => concatAll(parts);

/** A varint in a chosen (possibly non-minimal) length: RFC 9000 §16 allows it. */
const varintOfLength = (value: number, length: 1 | 2 | 4 | 8): Uint8Array => {
  const out = new Uint8Array(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  out[0] = out[0]! | ({ 1: 0x00, 2: 0x40, 4: 0x80, 8: 0xc0 } as const)[length];
  return out;
};

/** The single frame in `bytes`, which must hold exactly one. */
const onlyFrame = (bytes: Uint8Array): H3Frame => {
  const decoder = new H3FrameDecoder(64 * 1024);
  const frames = decoder.push(bytes);
  expect(frames).toHaveLength(1);
  expect(decoder.pending).toBe(0);
  return frames[0]!;
};


describe('WebTransport ↔ HTTP/3 error codes (draft-ietf-webtrans-http3 §4.3)', () => {
  it('maps the known values', () => {
    expect(webtransportToHttp3(0)).toBe(0x52e4a40fa8db);
    expect(webtransportToHttp3(1)).toBe(0x52e4a40fa8dc);
    expect(webtransportToHttp3(0x1d)).toBe(0x52e4a40fa8db + 0x1d);
    // 0x52e4a40fa8db + 0x1e is a GREASE codepoint: the code after 0x1d skips it.
    expect(webtransportToHttp3(0x1e)).toBe(0x52e4a40fa8db + 0x1e + 1);
    expect(webtransportToHttp3(MAX_CODE)).toBe(0x52e5ac983162);
    expect(http3ToWebtransport(0x52e4a40fa8db)).toBe(0);
    expect(http3ToWebtransport(0x52e4a40fa8db + 0x1e)).toBeNull();
    expect(http3ToWebtransport(0x52e4a40fa8db + 0x1f)).toBe(0x1e);
    expect(http3ToWebtransport(0x52e5ac983162)).toBe(MAX_CODE);
  });

  it('round-trips every code in 0 … 2^32−1, never onto a GREASE codepoint, monotonically', () => {
    const code = fc.oneof(fc.integer({ min: 0, max: MAX_CODE }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: MAX_CODE - 200, max: MAX_CODE }));
    fc.assert(
      fc.property(code, (n) => {
        const h = webtransportToHttp3(n);
        expect(Number.isSafeInteger(h)).toBe(true);
        expect(h).toBeGreaterThanOrEqual(WT_FIRST);
        expect(h).toBeLessThanOrEqual(WT_LAST);
        expect(isGrease(h)).toBe(false);
        expect(h).toBe(WT_FIRST + n + Math.floor(n / 0x1e));
        expect(http3ToWebtransport(h)).toBe(n);
        if (n < MAX_CODE) expect(webtransportToHttp3(n + 1)).toBeGreaterThan(h);
      }),
      { numRuns: 2000 },
    );
  });

  it('maps values outside the range, non-integers and GREASE codepoints to null', () => {
    for (const h of [0, 1, 0x100, WT_FIRST - 1, WT_LAST + 1, WT_LAST + 0x1f, MAX_VARINT, -1, -WT_FIRST, WT_FIRST + 0.5, NaN, Infinity, -Infinity]) {
      expect(http3ToWebtransport(h)).toBeNull();
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Math.floor((WT_LAST - WT_FIRST - 0x1e) / 0x1f) }), (k) => {
        const grease = WT_FIRST + 0x1e + 0x1f * k; // every 0x1f-th value from first + 0x1e on
        expect(isGrease(grease)).toBe(true);
        expect(grease).toBeLessThanOrEqual(WT_LAST);
        expect(http3ToWebtransport(grease)).toBeNull();
        expect(http3ToWebtransport(grease - 1)).not.toBeNull();
        expect(http3ToWebtransport(grease + 1)).toBe(http3ToWebtransport(grease - 1)! + 1);
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: WT_FIRST - 1 }), fc.integer({ min: WT_LAST + 1, max: MAX_VARINT })), (h) => {
        expect(http3ToWebtransport(h)).toBeNull();
      }),
    );
  });

  it('maps every H near the range edges to null or to a code that maps back to H', () => {
    const windows: Array<[number, number]> = [
      [WT_FIRST - 100, WT_FIRST + 3000],
      [WT_LAST - 3000, WT_LAST + 100],
    ];
    let mapped = 0;
    for (const [from, to] of windows) {
      for (let h = from; h <= to; h++) {
        const n = http3ToWebtransport(h);
        if (n === null) {
          expect(h < WT_FIRST || h > WT_LAST || isGrease(h)).toBe(true);
        } else {
          mapped++;
          expect(n).toBeGreaterThanOrEqual(0);
          expect(n).toBeLessThanOrEqual(MAX_CODE);
          expect(webtransportToHttp3(n)).toBe(h);
        }
      }
    }
    expect(mapped).toBeGreaterThan(5000);
    fc.assert(
      fc.property(fc.integer({ min: WT_FIRST - 2 ** 20, max: WT_LAST + 2 ** 20 }), (h) => {
        const n = http3ToWebtransport(h);
        if (n === null) expect(h < WT_FIRST || h > WT_LAST || isGrease(h)).toBe(true);
        else expect(webtransportToHttp3(n)).toBe(h);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses codes outside 0 … 2^32−1 with a RangeError', () => {
    for (const n of [-1, -0.5, 0.5, 1.5, 2 ** 32, 2 ** 32 + 1, MAX_VARINT, NaN, Infinity, -Infinity]) {
      expect(() => webtransportToHttp3(n)).toThrow(RangeError);
    }
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ max: -1 }),
          fc.integer({ min: 2 ** 32, max: MAX_VARINT }),
          fc.double({ min: -1e12, max: 1e12, noNaN: true }).filter((d) => !Number.isInteger(d)),
        ),
        (n) => {
          expect(() => webtransportToHttp3(n)).toThrow(RangeError);
        },
      ),
    );
  });
});

describe('control stream, GOAWAY and response HEADERS', () => {
  it('the server control preamble is the control stream type, then a SETTINGS frame Chromium accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(0, 1, 16, 0x3f, 0x40, 0x3fff, 0x4000, 2 ** 30), fc.integer({ min: 0, max: MAX_VARINT })), (n) => {
        const preamble = serverControlPreamble(n);
        expect(preamble[0]).toBe(0x00);
        expect(preamble[0]).toBe(UniStreamType.CONTROL);
        const frame = onlyFrame(preamble.subarray(1));
        expect(frame.type).toBe(FrameType.SETTINGS);
        const settings = decodeSettings(frame.payload);
        expect(settings.get(Setting.ENABLE_CONNECT_PROTOCOL)).toBe(1);
        expect(settings.get(Setting.ENABLE_WEBTRANSPORT)).toBe(1);
        expect(settings.get(Setting.H3_DATAGRAM)).toBe(1);
        expect(settings.get(Setting.H3_DATAGRAM_DRAFT04)).toBe(1);
        expect(settings.get(Setting.WEBTRANSPORT_MAX_SESSIONS)).toBe(n);
        expect(settings.get(Setting.QPACK_MAX_TABLE_CAPACITY)).toBe(0);
        // Nothing that would promise a dynamic QPACK table.
        expect(settings.get(Setting.QPACK_BLOCKED_STREAMS) ?? 0).toBe(0);
      }),
    );
  });

  it('GOAWAY carries the stream id as a varint', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(0, 4, 0x3c, 0x40, 0x4000, 2 ** 30), fc.integer({ min: 0, max: MAX_VARINT })), (id) => {
        const frame = onlyFrame(goawayFrame(id));
        expect(frame.type).toBe(FrameType.GOAWAY);
        expect(readVarint(frame.payload, 0)).toEqual({ value: id, length: frame.payload.length });
      }),
    );
  });

  it('response HEADERS decode back to :status and the extra fields', () => {
    const accepted = onlyFrame(responseHeaders(200, SESSION_ACCEPTED));
    expect(accepted.type).toBe(FrameType.HEADERS);
    expect(decodeFieldSection(accepted.payload)).toEqual([
      [':status', '200'],
      ['sec-webtransport-http3-draft', 'draft02'],
    ]);
    for (const status of [400, 403, 404, 429, 503]) {
      const frame = onlyFrame(responseHeaders(status));
      expect(frame.type).toBe(FrameType.HEADERS);
      expect(decodeFieldSection(frame.payload)).toEqual([[':status', String(status)]]);
    }
  });
});

describe('readPreamble', () => {
  const varintLen = fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8);
  const sessionId = fc.oneof(fc.constantFrom(0, 4, 0x3f, 0x40, 0x3fff, 0x4000), fc.integer({ min: 0, max: 2 ** 30 - 1 }), fc.integer({ min: 0, max: MAX_VARINT }));

  it('reads a WebTransport bidirectional preamble incrementally, from every prefix', () => {
    fc.assert(
      fc.property(sessionId, fc.uint8Array({ maxLength: 40 }), fc.boolean(), varintLen, (id, payload, minimal, signalLength) => {
        const signal = minimal ? encodeVarint(WT_BIDI_SIGNAL) : varintOfLength(WT_BIDI_SIGNAL, signalLength === 1 ? 2 : signalLength);
        const header = concat(signal, encodeVarint(id));
        const wire = concat(header, payload);
        for (let i = 0; i < header.length; i++) expect(readPreamble(wire.subarray(0, i), 2)).toBeNull();
        for (let i = header.length; i <= wire.length; i++) {
          expect(readPreamble(wire.subarray(0, i), 2)).toEqual({ values: [WT_BIDI_SIGNAL, id], length: header.length });
        }
        // One varint wanted (a unidirectional stream's type): the signal alone.
        expect(readPreamble(wire, 1)).toEqual({ values: [WT_BIDI_SIGNAL], length: signal.length });
      }),
    );
  });

  it('stops after one varint when the first is not the WebTransport signal', () => {
    expect(readPreamble(Uint8Array.of(0x01, 0x05, 0xaa), 2)).toEqual({ values: [FrameType.HEADERS], length: 1 });
    expect(readPreamble(Uint8Array.of(0x40, 0x54), 1)).toEqual({ values: [UniStreamType.WEBTRANSPORT], length: 2 });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_VARINT }).filter((v) => v !== WT_BIDI_SIGNAL),
        fc.uint8Array({ maxLength: 20 }),
        fc.constantFrom<1 | 2>(1, 2),
        (first, rest, count) => {
          const head = encodeVarint(first);
          const wire = concat(head, rest);
          for (let i = 0; i < head.length; i++) expect(readPreamble(wire.subarray(0, i), count)).toBeNull();
          expect(readPreamble(wire, count)).toEqual({ values: [first], length: head.length });
        },
      ),
    );
  });

  it('arbitrary bytes never throw anything but H3CodecError, nor claim bytes beyond the input', () => {
    // A varint above 2^53−1 (a greased stream type, a bogus session id) reads as LARGE_VARINT: unknown, not an error.
    expect(readPreamble(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 1)).toEqual({ values: [LARGE_VARINT], length: 8 });
    expect(readPreamble(Uint8Array.of(0x40, 0x41, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 2)).toEqual({ values: [WT_BIDI_SIGNAL, LARGE_VARINT], length: 10 });
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 24 }),
      fc.uint8Array({ maxLength: 16 }).map((b) => concat(Uint8Array.of(WT_BIDI_SIGNAL), b)),
      fc.uint8Array({ maxLength: 16 }).map((b) => concat(Uint8Array.of(0x40, WT_BIDI_SIGNAL, 0xc0 | (b[0] ?? 0)), b)),
    );
    fc.assert(
      fc.property(bytes, fc.constantFrom<1 | 2>(1, 2), (buf, count) => {
        const r = onlyProtocolErrors(() => readPreamble(buf, count));
        if (r === null || r instanceof PassageError) return;
        expect(r.length).toBeGreaterThan(0);
        expect(r.length).toBeLessThanOrEqual(buf.length);
        expect(r.values.length).toBeGreaterThanOrEqual(1);
        expect(r.values.length).toBeLessThanOrEqual(count);
        if (r.values.length === 2) expect(r.values[0]).toBe(WT_BIDI_SIGNAL);
        for (const v of r.values) expect((Number.isSafeInteger(v) && v >= 0) || v === LARGE_VARINT).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('classifyRequest', () => {
  const pseudo = (path: string): Field[] => [
    [':method', 'CONNECT'],
    [':protocol', 'webtransport'],
    [':scheme', 'https'],
    [':authority', '127.0.0.1:4433'],
    [':path', path],
  ];
  const regular: Field[] = [
    ['origin', 'chrome-extension://x'],
    ['sec-webtransport-http3-draft02', '1'],
  ];
  const chromium = (path = '/wt/?token=abc%20d'): Field[] => [...pseudo(path), ...regular];
  const without = (fields: Field[], name: string) => fields.filter(([n]) => n !== name);
  const replace = (fields: Field[], name: string, value: string): Field[] => fields.map(([n, v]) => (n === name ? [n, value] : [n, v]));
  const malformed = (fields: readonly Field[]) => {
    expect(() => classifyRequest(fields)).toThrow(H3CodecError);
  };

  it('recognises a Chromium-like extended CONNECT for WebTransport', () => {
    expect(classifyRequest(chromium())).toEqual({ kind: 'webtransport', authority: '127.0.0.1:4433', path: '/wt/', token: 'abc d' });
    // Pseudo-header order is free so long as all precede the regular fields.
    expect(classifyRequest([...pseudo('/wt/?token=abc%20d')].reverse())).toEqual({ kind: 'webtransport', authority: '127.0.0.1:4433', path: '/wt/', token: 'abc d' });
    expect(classifyRequest(chromium('/wt/?a=1&token=x+y&token=second'))).toMatchObject({ path: '/wt/', token: 'x y' });
    expect(classifyRequest(chromium('/wt/?token'))).toMatchObject({ token: '' });
    expect(classifyRequest(chromium('/wt/?tokens=1'))).toMatchObject({ token: null });
    expect(classifyRequest(chromium('/wt/?token=%F0%9F%A7%A6'))).toMatchObject({ token: '🧦' });
  });

  it('gives a null token without a query, or with a broken %-escape', () => {
    expect(classifyRequest(chromium('/wt/'))).toEqual({ kind: 'webtransport', authority: '127.0.0.1:4433', path: '/wt/', token: null });
    expect(classifyRequest(chromium('/wt/?'))).toMatchObject({ path: '/wt/', token: null });
    expect(classifyRequest(chromium('/wt/?token=abc%2'))).toMatchObject({ path: '/wt/', token: null });
    expect(classifyRequest(chromium('/wt/?token=%zz'))).toMatchObject({ path: '/wt/', token: null });
    expect(classifyRequest(chromium('/wt/?token=%C3'))).toMatchObject({ path: '/wt/', token: null });
  });

  it('calls other well-formed requests "other"', () => {
    expect(classifyRequest([[':method', 'GET'], [':scheme', 'https'], [':authority', 'a'], [':path', '/'], ...regular])).toEqual({ kind: 'other', method: 'GET' });
    // A classic CONNECT (no :protocol) is not WebTransport.
    expect(classifyRequest([[':method', 'CONNECT'], [':authority', 'example.com:443']])).toEqual({ kind: 'other', method: 'CONNECT' });
    expect(classifyRequest(replace(chromium(), ':protocol', 'websocket'))).toEqual({ kind: 'other', method: 'CONNECT websocket' });
    expect(classifyRequest(replace(chromium(), ':protocol', 'connect-udp'))).toMatchObject({ kind: 'other' });
  });

  it('throws H3CodecError on malformed pseudo-headers', () => {
    malformed([...pseudo('/wt/').slice(0, 4), ...regular, [':path', '/wt/']]); // pseudo-header after a regular field
    malformed([...pseudo('/wt/'), [':path', '/other/'], ...regular]); // repeated
    malformed([[':method', 'GET'], [':method', 'GET']]);
    malformed([...pseudo('/wt/'), [':status', '200']]); // unknown (a response pseudo-header)
    malformed([...pseudo('/wt/'), [':foo', 'bar']]);
    malformed(without(chromium(), ':method'));
    malformed([['origin', 'x']]);
    malformed([]);
    malformed([[':method', 'GET'], [':protocol', 'webtransport'], [':scheme', 'https'], [':authority', 'a'], [':path', '/']]); // :protocol on GET
    malformed(without(chromium(), ':authority'));
    malformed(replace(chromium(), ':authority', ''));
    malformed(without(chromium(), ':path'));
    malformed(replace(chromium(), ':path', ''));
    malformed(replace(chromium(), ':path', 'wt/'));
    malformed(replace(chromium(), ':scheme', 'http'));
    malformed(without(chromium(), ':scheme'));
    malformed([...pseudo('/wt/'), ['Origin', 'x']]); // upper-case field name
  });

  it('any :path starting with / classifies, its query decoded or the token null, never a throw', () => {
    const query = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: fc.constantFrom('token', '=', '&', '%', '2', '0', 'e', 'F', 'z', '+', '?', 'a', '%C3', '%A9', '%F0'), maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.option(query, { nil: undefined }), (p, q) => {
        const fullPath = `/${p.replace(/\?/g, '')}${q === undefined ? '' : `?${q}`}`;
        const r = classifyRequest(chromium(fullPath));
        expect(r.kind).toBe('webtransport');
        if (r.kind !== 'webtransport') return;
        expect(r.path).toBe(fullPath.split('?')[0]);
        if (q === undefined) expect(r.token).toBeNull();
        else expect(r.token === null || typeof r.token === 'string').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary field lists only ever classify or throw H3CodecError', () => {
    const name = fc.oneof(
      fc.constantFrom(':method', ':scheme', ':authority', ':path', ':protocol', ':status', ':', 'origin', 'Origin', 'token', 'sec-webtransport-http3-draft02'),
      fc.string({ maxLength: 12 }),
      fc.string({ maxLength: 8 }).map((s) => `:${s}`),
    );
    const value = fc.oneof(
      fc.constantFrom('CONNECT', 'GET', 'webtransport', 'https', 'http', '/', '/wt/', '/wt/?token=a', '/wt/?token=%', '/wt/?token=%e0%a4%a', '127.0.0.1:4433', ''),
      fc.string({ maxLength: 20 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 20 })).map(([p, q]) => `/${p}?token=${q}`),
    );
    const field = fc.tuple(name, value);
    const fields = fc.oneof(
      fc.array(field, { maxLength: 10 }),
      // Start from a valid request and perturb it, so deep branches are reached too.
      fc.tuple(fc.array(field, { maxLength: 3 }), fc.nat(7), fc.array(field, { maxLength: 3 })).map(([pre, at, post]) => {
        const base = chromium();
        return [...base.slice(0, at), ...pre, ...base.slice(at), ...post];
      }),
    );
    fc.assert(
      fc.property(fields, (fs) => {
        const r = onlyProtocolErrors(() => classifyRequest(fs));
        if (r instanceof PassageError) return;
        if (r.kind === 'webtransport') {
          expect(r.path.startsWith('/')).toBe(true);
          expect(r.path.includes('?')).toBe(false);
          expect(r.authority.length).toBeGreaterThan(0);
        } else expect(typeof r.method).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });
});
