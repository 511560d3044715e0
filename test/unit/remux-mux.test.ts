import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { FrameDecoder } from '../../shared/remux/decoder.ts';
import { ControlType, INITIAL_WINDOW, ResetCode, decodeControl, encodeFrame, encodeControl } from '../../shared/remux/frame.ts';
import { decodeDestination, encodeDestination, type Destination } from '../../shared/eagersocks.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { Mux } from '../../shared/remux/mux.ts';
import { isProtocolError } from '../../shared/errors.ts';
import { concat, muxPair, settle, type MuxPair } from '../support/mux-pipe.ts';

const dest = (n: number): Destination => ({ type: 'domain', host: `site${n}.test`, port: 443 });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Collects a stream's bytes, consuming as it goes; resolves at FIN, rejects at RESET. */
function collect(stream: MuxStream, opts: { drain?: () => void } = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  return new Promise((resolve, reject) => {
    stream.attach({
      data(p) {
        parts.push(p.slice());
        stream.consume(p.length);
      },
      end: () => resolve(concat(parts)),
      reset: (code) => reject(new Error(`reset ${code}`)),
      ...(opts.drain ? { drain: opts.drain } : {}),
    });
  });
}

/** Writes `data` in random-size pieces, honouring backpressure, then FIN. */
async function pump(stream: MuxStream, data: Uint8Array, maxPiece: number): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const n = Math.max(1, Math.floor(Math.random() * maxPiece));
    const ok = stream.write(data.subarray(at, at + n));
    at += n;
    if (!ok) await new Promise<void>((r) => stream.attach({ drain: r }));
  }
  stream.end();
}

/** Echo server on the acceptor: every stream's bytes come back on the same stream. */
function echo(s: MuxStream): void {
  {
    let owed = 0;
    s.attach({
      data(p) {
        if (s.write(p)) s.consume(p.length);
        else owed += p.length;
      },
      end: () => s.end(),
      drain() {
        const n = owed;
        owed = 0;
        s.consume(n);
      },
    });
  }
}

/**
 * Replays the recorded wire and checks §2's flow control on the bytes themselves: no side ever
 * sends more payload on a stream than the credit the other side granted.
 */
function checkWindows(log: MuxPair['log']): { frames: number } {
  const credit = { up: new Map<number, number>(), down: new Map<number, number>() };
  const decoders = { up: new FrameDecoder(), down: new FrameDecoder() };
  let frames = 0;
  for (const { dir, bytes } of log) {
    const other = dir === 'up' ? 'down' : 'up';
    decoders[dir].push(bytes, {
      data(stream, length, offset, piece) {
        if (offset !== 0) return;
        frames++;
        if (length === 0) return;
        let cost = length;
        if (dir === 'up' && !credit.up.has(stream)) {
          // An opening frame: the EagerSocks header rides free; both directions start with a window.
          const parsed = decodeDestination(piece);
          expect(parsed).not.toBeNull();
          cost -= parsed!.length;
          credit.up.set(stream, INITIAL_WINDOW);
          credit.down.set(stream, INITIAL_WINDOW);
        }
        const left = credit[dir].get(stream)! - cost;
        expect(left, `stream ${stream} ${dir} overran its window`).toBeGreaterThanOrEqual(0);
        credit[dir].set(stream, left);
      },
      control(payload) {
        const msg = decodeControl(payload);
        if (msg.type === ControlType.WINDOW) {
          const c = credit[other];
          if (c.has(msg.stream)) c.set(msg.stream, c.get(msg.stream)! + msg.delta);
        }
      },
    });
  }
  return { frames };
}

describe('Mux', () => {
  it('carries N streams of random sizes byte-exact both ways, never beyond a window on the wire', async () => {
    const pair = muxPair({
      record: true,
      acceptor: { onStream: echo },
      split: (c) => {
        const out: Uint8Array[] = [];
        for (let at = 0; at < c.length; ) {
          const n = 1 + Math.floor(Math.random() * 9000);
          out.push(c.subarray(at, at + n));
          at += n;
        }
        return out;
      },
    });
    const sizes = Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? 0 : Math.floor(Math.random() * 1024 * 1024)));
    const results = await Promise.all(
      sizes.map(async (size, i) => {
        const data = randomBytes(size);
        const s = pair.opener.open(dest(i));
        const back = collect(s);
        await pump(s, data, 100_000);
        const got = await back;
        return { want: sha(data), got: sha(got), size: got.length };
      }),
    );
    for (const r of results) expect(r.got).toBe(r.want);
    await settle();
    const { frames } = checkWindows(pair.log);
    expect(frames).toBeGreaterThan(80);
    expect(pair.opener.streamCount).toBe(0);
    expect(pair.opener.idsInUse).toEqual([]);
    expect(pair.acceptor.idsInUse).toEqual([]);
  });

  it('first bytes ride in the opening frame with the EagerSocks header', async () => {
    const pair = muxPair({ manual: true });
    const s = pair.opener.open(dest(1));
    s.write(new TextEncoder().encode('GET / HTTP/1.1\r\n'));
    await settle();
    expect(pair.up.held.length).toBe(1);
    const frame = pair.up.held[0]!;
    const parsed = decodeDestination(frame.subarray(4))!;
    expect(parsed.destination).toEqual(dest(1));
    expect(new TextDecoder().decode(frame.subarray(4 + parsed.length))).toBe('GET / HTTP/1.1\r\n');
  });

  it('a stalled reader stalls only its own stream, and its writer is held to a window', async () => {
    let stalled: MuxStream | null = null;
    const acceptorStreams: MuxStream[] = [];
    const onStream = (s: MuxStream) => {
      acceptorStreams.push(s);
      if (s.destination.host === 'stalled.test') {
        stalled = s;
        s.attach({ data() {} }); // never consumes
      } else {
        collect(s).then((b) => {
          s.write(b.slice(0, 16));
          s.end();
        });
      }
    };
    const pair = muxPair({ record: true, acceptor: { onStream } });
    const slow = pair.opener.open({ type: 'domain', host: 'stalled.test', port: 1 });
    let accepted = 0;
    let refusedAt = -1;
    for (let i = 0; i < 64; i++) {
      if (!slow.write(new Uint8Array(32 * 1024))) {
        refusedAt = i;
        break;
      }
      accepted++;
    }
    // The writer is told to wait once its own buffer holds a window's worth.
    expect(refusedAt).toBe(INITIAL_WINDOW / (32 * 1024) - 1);
    const others = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const s = pair.opener.open(dest(i));
        const back = collect(s);
        await pump(s, randomBytes(600_000), 50_000);
        return (await back).length;
      }),
    );
    expect(others).toEqual(Array(8).fill(16));
    await settle();
    expect(stalled).not.toBeNull();
    // The stalled stream received exactly one window and not a byte more.
    expect(stalled!.buffered).toBe(INITIAL_WINDOW);
    expect(slow.bytesOut).toBe(INITIAL_WINDOW);
    checkWindows(pair.log);
    expect(accepted).toBeGreaterThan(0);
  });

  it('RESET is answered once and frees the id on both sides', async () => {
    const resets: number[] = [];
    const pair = muxPair({ record: true, acceptor: { onStream: (s) => s.attach({ reset: (c) => resets.push(c) }) } });
    const s = pair.opener.open(dest(1));
    s.write(new Uint8Array(10));
    await settle();
    expect(pair.acceptor.idsInUse).toEqual([s.id]);
    s.reset(ResetCode.CANCELLED);
    await settle();
    expect(resets).toEqual([ResetCode.CANCELLED]);
    expect(pair.opener.idsInUse).toEqual([]);
    expect(pair.acceptor.idsInUse).toEqual([]);
    const resetFrames = pair.log.filter((e) => e.bytes.length === 8 && e.bytes[4] === ControlType.RESET);
    expect(resetFrames.map((e) => e.dir)).toEqual(['up', 'down']);
  });

  it('window overrun and data after FIN are answered with RESET 0x04', async () => {
    for (const attack of ['overrun', 'after-fin'] as const) {
      const out: Uint8Array[] = [];
      let seen: MuxStream | null = null;
      let resetCode = -1;
      const mux: Mux = new Mux({
        role: 'acceptor',
        sink: { write: (c) => (out.push(...c), true) },
        onStream: (s) => {
          seen = s;
          s.attach({ data() {}, reset: (c) => (resetCode = c) });
        },
      });
      const header = new Uint8Array([3, 1, 0x61, 0, 80]);
      mux.receive(encodeFrame(5, header));
      if (attack === 'overrun') {
        for (let i = 0; i < 4; i++) mux.receive(encodeFrame(5, new Uint8Array(65535)));
        mux.receive(encodeFrame(5, new Uint8Array(5))); // 4 × 65535 + 5 > 256 KiB
      } else {
        mux.receive(encodeFrame(5, new Uint8Array(0)));
        mux.receive(encodeFrame(5, new Uint8Array(1)));
      }
      await settle();
      expect(seen).not.toBeNull();
      expect(resetCode).toBe(ResetCode.PROTOCOL);
      const wire = concat(out);
      expect(Array.from(wire.subarray(wire.length - 8))).toEqual(Array.from(encodeControl({ type: ControlType.RESET, stream: 5, code: 4 })));
      expect(mux.isClosed).toBe(false);
    }
  });

  it('garbage input ends the connection with GOAWAY 0x04 and resets its streams', async () => {
    const out: Uint8Array[] = [];
    let closedWith: unknown = null;
    const resets: number[] = [];
    const mux = new Mux({
      role: 'acceptor',
      sink: { write: (c) => (out.push(...c), true) },
      onStream: (s) => s.attach({ reset: (c) => resets.push(c) }),
      onClose: (e) => (closedWith = e),
    });
    mux.receive(encodeFrame(1, new Uint8Array([1, 1, 2, 3, 4, 0, 80])));
    mux.receive(new Uint8Array([0, 0, 0, 3, ControlType.WINDOW, 0, 1])); // WINDOW with 3 bytes
    expect(closedWith).toMatchObject({ code: 'FRAME_MALFORMED' });
    expect(resets).toEqual([ResetCode.PROTOCOL]);
    expect(Array.from(concat(out))).toEqual(Array.from(encodeControl({ type: ControlType.GOAWAY, code: 4 })));
    mux.receive(new Uint8Array(100)); // ignored once closed
  });

  it('hostile input never throws past receive(): the mux stays usable or closes with a protocol error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 12 }), fc.boolean(), async (chunks, opener) => {
        let out = 0;
        let closedWith: unknown = 'open';
        const mux = new Mux({
          role: opener ? 'opener' : 'acceptor',
          maxStreams: 8,
          sink: { write: (c) => ((out += c.reduce((a, b) => a + b.length, 0)), true) },
          onStream: (st) => st.attach({ data: (p) => st.consume(p.length) }),
          onClose: (e) => (closedWith = e),
        });
        for (const c of chunks) mux.receive(c);
        await settle();
        if (closedWith !== 'open') expect(isProtocolError(closedWith)).toBe(true);
        expect(mux.streamCount).toBeLessThanOrEqual(8);
        // Replies are bounded by what came in (RESETs, PONGs, one GOAWAY), never amplified without limit.
        expect(out).toBeLessThanOrEqual(16 + 8 * chunks.reduce((a, b) => a + b.length, 0));
      }),
      { numRuns: 300 },
    );
  });

  it('reports how many streams can still receive: a stream the peer finished needs no polling', async () => {
    const counts: number[] = [];
    let far: MuxStream | null = null;
    const pair = muxPair({ opener: { onReceivingCount: (n) => counts.push(n) }, acceptor: { onStream: (st) => (far = st) } });
    const s = pair.opener.open(dest(1));
    s.attach({ data: (p) => s.consume(p.length) });
    s.write(new Uint8Array(3));
    await settle();
    expect(counts).toEqual([1]);
    far!.end(); // the far side finishes; ours stays open for writing (a half-open browser socket)
    await settle();
    expect(counts).toEqual([1, 0]);
    expect(pair.opener.streamCount).toBe(1);
    pair.opener.open(dest(2)).reset(ResetCode.CANCELLED);
    await settle();
    expect(counts).toEqual([1, 0, 1, 0]);
  });

  it('the acceptor refuses streams over its limit with RESET 0x06', async () => {
    const opened: MuxStream[] = [];
    const pair = muxPair({ acceptor: { maxStreams: 2, onStream: (s) => opened.push(s) } });
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) pair.opener.open(dest(i)).attach({ reset: (c) => codes.push(c) });
    await settle();
    expect(opened.length).toBe(2);
    expect(codes).toEqual([ResetCode.RESOURCES]);
    expect(pair.opener.idsInUse.length).toBe(2);
  });

  it('ping measures a round trip; GOAWAY stops new streams but not open ones', async () => {
    const pair = muxPair({ acceptor: { onStream: echo } });
    expect(await pair.opener.ping()).toBeGreaterThanOrEqual(0);
    const s = pair.opener.open(dest(1));
    const back = collect(s);
    await settle(); // opened before the GOAWAY (an open crossing it would be refused with 0x05)
    pair.acceptor.goaway();
    await settle();
    expect(() => pair.opener.open(dest(2))).toThrow(/going away/);
    s.write(new Uint8Array([1, 2, 3]));
    s.end();
    expect(Array.from(await back)).toEqual([1, 2, 3]);
  });

  it('an open that crosses the GOAWAY is served; one sent after the peer read it is refused 0x05', async () => {
    const accepted: string[] = [];
    const pair = muxPair({ manual: true, acceptor: { onStream: (s) => (accepted.push(s.destination.host), echo(s)) } });
    pair.acceptor.goaway();
    await settle();
    // The opener has not read the GOAWAY yet: it opens, and that open crosses the GOAWAY and its PING.
    const crossing = pair.opener.open(dest(1));
    const back = collect(crossing);
    crossing.write(new Uint8Array([7]));
    crossing.end();
    await settle();
    const opening = pair.up.held.length;
    pair.down.deliver(); // GOAWAY + PING reach the opener; it answers PONG after its open
    await settle();
    expect(pair.up.held.length).toBeGreaterThan(opening);
    pair.up.deliver();
    await settle();
    expect(pair.acceptor.goawayAcknowledged).toBe(true);
    pair.down.deliver();
    await settle();
    expect(Array.from(await back)).toEqual([7]);
    expect(accepted).toEqual(['site1.test']);
    // A peer that opens anyway once it has read the GOAWAY gets RESET 0x05: nothing is dialed.
    const before = pair.down.held.length;
    pair.acceptor.receive(encodeFrame(2, encodeDestination(dest(2))));
    await settle();
    const resets: number[] = [];
    const decoder = new FrameDecoder();
    for (const chunk of pair.down.held.slice(before)) {
      decoder.push(chunk, {
        data() {},
        control(payload) {
          const msg = decodeControl(payload);
          if (msg.type === ControlType.RESET) resets.push(msg.code);
        },
      });
    }
    expect(accepted).toEqual(['site1.test']);
    expect(resets).toEqual([ResetCode.CANCELLED]);
  });

  it('RESET races never open a phantom stream, ids are reused only when free, and nothing leaks', async () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ k: fc.constant('open' as const), size: fc.nat(3000) }), weight: 3 },
      fc.record({ k: fc.constantFrom('oWrite', 'oEnd', 'oReset', 'aWrite', 'aEnd', 'aReset'), i: fc.nat(20) }),
      fc.record({ k: fc.constantFrom('up', 'down'), n: fc.integer({ min: 1, max: 6 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 80 }), async (ops) => {
        // Start near the top of the id space so allocation wraps and must skip busy ids.
        const openerStreams: MuxStream[] = [];
        const acceptorStreams: MuxStream[] = [];
        const live = new Map<number, MuxStream>(); // opener's view of ids in use by a live stream
        const phantom: string[] = [];
        const onStream = (s: MuxStream) => {
          const mine = live.get(s.id);
          if (!mine || mine.destination.host !== s.destination.host) phantom.push(`${s.id} ${s.destination.host}`);
          acceptorStreams.push(s);
          s.attach({ data: (p) => s.consume(p.length) });
        };
        // A tiny id space: allocation wraps constantly, so ids are reused while RESETs are in flight.
        const pair = muxPair({ manual: true, opener: { lastStreamId: 3 }, acceptor: { onStream } });
        let n = 0;
        for (const o of ops) {
          if (o.k === 'open') {
            if (!pair.opener.canOpen) continue;
            const s = pair.opener.open(dest(n++));
            expect(pair.opener.idsInUse.filter((id) => id === s.id).length).toBe(1);
            live.set(s.id, s);
            openerStreams.push(s);
            s.attach({ data: (p) => s.consume(p.length) });
            s.write(new Uint8Array(o.size));
          } else if (o.k === 'up' || o.k === 'down') {
            pair[o.k].deliver(o.n);
          } else {
            const list = o.k[0] === 'o' ? openerStreams : acceptorStreams;
            const s = list['i' in o ? o.i % Math.max(1, list.length) : 0];
            if (!s) continue;
            if (o.k.endsWith('Write')) s.write(new Uint8Array(100));
            else if (o.k.endsWith('End')) s.end();
            else s.reset(ResetCode.CANCELLED);
          }
          await settle();
        }
        // Close everything politely and let the wire drain.
        for (let round = 0; round < 50; round++) {
          for (const s of [...openerStreams, ...acceptorStreams]) s.end(); // streams that appeared meanwhile too
          await settle();
          if (!pair.up.held.length && !pair.down.held.length) break;
          pair.up.deliver();
          pair.down.deliver();
          await settle();
        }
        expect(phantom).toEqual([]);
        expect(pair.opener.idsInUse).toEqual([]);
        expect(pair.acceptor.idsInUse).toEqual([]);
        expect(pair.opener.streamCount).toBe(0);
        expect(pair.acceptor.streamCount).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('allocation wraps after 65535 and skips ids still in use', async () => {
    const pair = muxPair({ opener: { firstStreamId: 65534 }, acceptor: { onStream: (s) => s.attach({}) } });
    const a = pair.opener.open(dest(1)); // 65534, kept open
    const b = pair.opener.open(dest(2)); // 65535
    const c = pair.opener.open(dest(3)); // wraps to 1
    expect([a.id, b.id, c.id]).toEqual([65534, 65535, 1]);
    await settle();
    b.reset(ResetCode.CANCELLED);
    await settle();
    const opener2 = muxPair({ opener: { firstStreamId: 65535 } });
    const x = opener2.opener.open(dest(1));
    const y = opener2.opener.open(dest(2));
    expect([x.id, y.id]).toEqual([65535, 1]);
    expect(pair.opener.idsInUse.sort((p, q) => p - q)).toEqual([1, 65534]);
  });
});

