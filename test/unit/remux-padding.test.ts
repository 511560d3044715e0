/**
 * ReMux padding (PROTOCOL.md §2): the first frames of every stream are topped up with PADDING
 * control frames to the policy's size, both directions; receivers ignore them; data is byte-exact.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { muxPair, settle, concat } from '../support/mux-pipe.ts';
import { ControlType, HEADER_LENGTH, MAX_COVER_REPLY, decodeControl, encodeControl, encodeCoverReply, encodeFrame, encodePadding } from '../../shared/remux/frame.ts';
import { COVER_HOLD_MS, defaultPadding, PADDED_FRAMES, PAD_TO_MAX, PAD_TO_MIN } from '../../shared/remux/padding.ts';
import { Mux } from '../../shared/remux/mux.ts';
import { seeded } from '../support/fake-clock.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

/** Every frame in a recorded direction: [stream id, payload length, first payload byte]. */
function frames(chunks: Uint8Array[]): Array<[number, number, number | undefined]> {
  const out: Array<[number, number, number | undefined]> = [];
  const all = concat(chunks);
  let at = 0;
  while (at + HEADER_LENGTH <= all.length) {
    const id = (all[at]! << 8) | all[at + 1]!;
    const len = (all[at + 2]! << 8) | all[at + 3]!;
    out.push([id, len, all[at + HEADER_LENGTH]]);
    at += HEADER_LENGTH + len;
  }
  return out;
}

describe('ReMux padding', () => {
  it('pads each stream\'s first frames to 500–1000 bytes in both directions, leaves later ones alone, and the data arrives exact', async () => {
    const pair = muxPair({
      record: true,
      opener: { padding: defaultPadding(seeded(1)) },
      acceptor: { padding: defaultPadding(seeded(2)), onStream: (s: MuxStream) => s.attach({ data: (p) => (s.write(p.slice()), s.consume(p.length)), end: () => s.end() }) },
    });
    const got: Uint8Array[] = [];
    const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 80 });
    const ended = new Promise<void>((resolve) => stream.attach({ data: (p) => (got.push(p.slice()), stream.consume(p.length)), end: () => resolve() }));
    const sent: Uint8Array[] = [];
    for (let i = 0; i < PADDED_FRAMES + 4; i++) {
      const msg = Uint8Array.from({ length: 40 + i }, (_, j) => (i + j) & 0xff);
      sent.push(msg);
      stream.write(msg);
      await settle();
    }
    stream.end();
    await ended;
    expect([...concat(got)]).toEqual([...concat(sent)]);
    for (const dir of ['up', 'down'] as const) {
      const f = frames(pair.log.filter((l) => l.dir === dir).map((l) => l.bytes));
      const padding = f.filter(([id, , type]) => id === 0 && type === ControlType.PADDING);
      expect(padding.length).toBe(PADDED_FRAMES);
      // Each padded frame plus its padding lands in the policy's range.
      let i = 0;
      for (let k = 0; k < f.length; k++) {
        const [id, len] = f[k]!;
        if (id === 0 || len === 0) continue;
        const next = f[k + 1];
        const padded = next && next[0] === 0 && next[2] === ControlType.PADDING;
        if (i < PADDED_FRAMES) {
          expect(padded).toBe(true);
          const total = HEADER_LENGTH + len + HEADER_LENGTH + next![1];
          expect(total).toBeGreaterThanOrEqual(PAD_TO_MIN);
          expect(total).toBeLessThanOrEqual(PAD_TO_MAX);
        } else expect(padded).toBeFalsy();
        i++;
      }
    }
    expect(pair.opener.paddingOut).toBeGreaterThan(0);
  });

  it('a receiver without a policy ignores PADDING of any length, also split across chunks', async () => {
    const pair = muxPair({ split: (c) => Array.from(c, (b) => Uint8Array.of(b)) });
    for (const n of [5, 6, 1000, 65535 + 4]) pair.opener.receive(encodePadding(n));
    pair.acceptor.receive(encodePadding(300));
    await settle();
    expect(pair.opener.isClosed).toBe(false);
    expect(pair.acceptor.isClosed).toBe(false);
    expect(encodePadding(1).length).toBe(HEADER_LENGTH + 1);
  });
});

/** An acceptor that echoes, and an opener with the default policy (cover on). */
function coverPair(o: { manual?: boolean; acceptor?: boolean } = {}) {
  return muxPair({
    record: true,
    manual: o.manual,
    opener: { padding: defaultPadding(seeded(3)) },
    acceptor: { padding: defaultPadding(seeded(4)), onStream: (s: MuxStream) => s.attach({ data: (p) => (s.write(p.slice()), s.consume(p.length)), end: () => s.end() }) },
  });
}

const TLS_HELLO = Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5);
const PLAIN_GET = new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n');

describe('ReMux cover round trip (COVER / COVER_REPLY)', () => {
  afterEach(() => vi.useRealTimers());

  it('a stream whose first bytes are not TLS opens without them, asks COVER, and sends them only after the COVER_REPLY; the echo is exact', async () => {
    const pair = coverPair();
    const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 80 });
    const got: Uint8Array[] = [];
    stream.attach({ data: (p) => (got.push(p.slice()), stream.consume(p.length)) });
    stream.write(PLAIN_GET);
    await settle();
    expect(concat(got)).toEqual(PLAIN_GET);
    const order = pair.log.flatMap((l) => frames([l.bytes]).map(([id, len, type]) => `${l.dir}:${id === 0 ? `c${type}` : len > 10 ? 'data' : 'open'}`));
    // Up: the open (address only), its PADDING, COVER; down: COVER_REPLY; only then the request.
    expect(order.slice(0, 5)).toEqual(['up:open', `up:c${ControlType.PADDING}`, `up:c${ControlType.COVER}`, `down:c${ControlType.COVER_REPLY}`, 'up:data']);
    const reply = frames(pair.log.filter((l) => l.dir === 'down').map((l) => l.bytes)).find(([id, , t]) => id === 0 && t === ControlType.COVER_REPLY)!;
    // The reply is the size the opener drew from the padding range.
    expect(HEADER_LENGTH + reply[1]).toBeGreaterThanOrEqual(PAD_TO_MIN);
    expect(HEADER_LENGTH + reply[1]).toBeLessThanOrEqual(PAD_TO_MAX);
    expect(pair.opener.paddingIn).toBeGreaterThanOrEqual(PAD_TO_MIN);
  });

  it('a TLS stream goes at once: its ClientHello in the open frame, no COVER', async () => {
    const pair = coverPair();
    const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 443 });
    stream.write(TLS_HELLO);
    await settle();
    const up = frames(pair.log.filter((l) => l.dir === 'up').map((l) => l.bytes));
    expect(up[0]![1]).toBe(7 + TLS_HELLO.length); // EagerSocks IPv4 header (7) + the hello
    expect(up.some(([id, , t]) => id === 0 && t === ControlType.COVER)).toBe(false);
  });

  it('a peer that never answers costs the stream the hold, once; FIN waits with the data; a reset stream sends nothing', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const sent: Uint8Array[] = [];
    const opener = new Mux({ role: 'opener', padding: defaultPadding(seeded(5)), sink: { write: (c) => (sent.push(...c.map((x) => x.slice())), true) } });
    const stream = opener.open({ type: 'ipv4', host: '127.0.0.1', port: 80 });
    stream.write(PLAIN_GET);
    stream.end();
    await settle();
    const dataFrames = () => frames(sent).filter(([id, len]) => id !== 0 && len !== 7);
    expect(dataFrames()).toEqual([]);
    vi.advanceTimersByTime(COVER_HOLD_MS - 1);
    await settle();
    expect(dataFrames()).toEqual([]);
    vi.advanceTimersByTime(1);
    await settle();
    // The request, then FIN.
    expect(dataFrames().map(([, len]) => len)).toEqual([PLAIN_GET.length, 0]);
    // A later stream's plain bytes are held again (each stream once), and a reset ends the hold.
    const second = opener.open({ type: 'ipv4', host: '127.0.0.1', port: 80 });
    second.write(PLAIN_GET);
    await settle();
    const before = dataFrames().length;
    second.reset(0x05);
    vi.advanceTimersByTime(COVER_HOLD_MS);
    await settle();
    expect(dataFrames().length).toBe(before);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the acceptor answers one COVER per open stream, at most MAX_COVER_REPLY; COVERs for other streams, to the opener, or repeated get nothing', async () => {
    const pair = coverPair();
    const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 443 });
    stream.write(TLS_HELLO);
    await settle();
    const replies = () => frames(pair.log.filter((l) => l.dir === 'down').map((l) => l.bytes)).filter(([id, , t]) => id === 0 && t === ControlType.COVER_REPLY);
    expect(replies()).toHaveLength(0);
    for (const frame of [encodeControl({ type: ControlType.COVER, stream: stream.id, size: 65535 }), encodeControl({ type: ControlType.COVER, stream: stream.id, size: 600 }), encodeControl({ type: ControlType.COVER, stream: 999, size: 600 })]) {
      pair.acceptor.receive(frame);
    }
    await settle();
    expect(replies().map(([, len]) => HEADER_LENGTH + len)).toEqual([MAX_COVER_REPLY]);
    // The opener ignores a COVER, and a COVER_REPLY it did not ask for.
    pair.opener.receive(encodeControl({ type: ControlType.COVER, stream: stream.id, size: 600 }));
    pair.opener.receive(encodeCoverReply(stream.id, 700));
    await settle();
    expect(frames(pair.log.filter((l) => l.dir === 'up').map((l) => l.bytes)).filter(([id, , t]) => id === 0 && t === ControlType.COVER_REPLY)).toHaveLength(0);
    expect(pair.opener.isClosed || pair.acceptor.isClosed).toBe(false);
  });

  it('codec: COVER round-trips any stream and size; a COVER of the wrong length or a COVER_REPLY under 3 bytes is malformed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), (stream, size) => {
        const frame = encodeControl({ type: ControlType.COVER, stream, size });
        expect(decodeControl(frame.subarray(HEADER_LENGTH))).toEqual({ type: ControlType.COVER, stream, size });
        const reply = encodeCoverReply(stream, size);
        expect(reply.length).toBe(Math.min(Math.max(size, HEADER_LENGTH + 3), MAX_COVER_REPLY));
        expect(decodeControl(reply.subarray(HEADER_LENGTH))).toEqual({ type: ControlType.COVER_REPLY, stream });
      }),
    );
    expect(() => decodeControl(Uint8Array.of(ControlType.COVER, 0, 1, 2))).toThrow(/needs 5 bytes/);
    expect(() => decodeControl(Uint8Array.of(ControlType.COVER_REPLY, 0))).toThrow(/at least 3 bytes/);
    // On the wire a malformed one ends the connection with a protocol error, never a throw out of receive().
    const pair = coverPair();
    pair.acceptor.receive(encodeFrame(0, Uint8Array.of(ControlType.COVER_REPLY, 1)));
    expect(pair.acceptor.isClosed).toBe(true);
  });
});
