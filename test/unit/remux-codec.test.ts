import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder } from '../../shared/remux/decoder.ts';
import {
  ControlType,
  decodeControl,
  encodeControl,
  encodeFrame,
  encodeHeader,
} from '../../shared/remux/frame.ts';
import { RemuxError } from '../../shared/errors.ts';
import { concat, cutAt } from '../support/bytes.ts';

type Frame = { stream: number; payload: Uint8Array };

/** Reassembles the decoder's pieces into whole frames, checking the piece bookkeeping on the way. */
function decodeAll(chunks: Uint8Array[]): { frames: Frame[]; decoder: FrameDecoder } {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let current: { stream: number; length: number; parts: Uint8Array[]; got: number } | null = null;
  for (const chunk of chunks) {
    decoder.push(chunk, {
      data(stream, length, offset, piece) {
        if (offset === 0) current = { stream, length, parts: [], got: 0 };
        expect(current).not.toBeNull();
        expect(current!.stream).toBe(stream);
        expect(offset).toBe(current!.got);
        current!.parts.push(piece);
        current!.got += piece.length;
        if (current!.got === length) {
          frames.push({ stream, payload: concat(current!.parts) });
          current = null;
        }
      },
      control(payload) {
        frames.push({ stream: 0, payload: payload.slice() });
      },
    });
  }
  return { frames, decoder };
}

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ stream: fc.integer({ min: 1, max: 65535 }), payload: fc.uint8Array({ maxLength: 3000 }) }),
  fc.record({ stream: fc.constant(0), payload: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
);

describe('ReMux frame codec', () => {
  it('any frame sequence survives encode → decode under any chunking', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const wire = concat(frames.map((f) => encodeFrame(f.stream, f.payload)));
        const { frames: out, decoder } = decodeAll(cutAt(wire, cuts));
        expect(out.length).toBe(frames.length);
        out.forEach((f, i) => {
          expect(f.stream).toBe(frames[i]!.stream);
          expect(Buffer.from(f.payload).equals(Buffer.from(frames[i]!.payload))).toBe(true);
        });
        expect(decoder.idle).toBe(true);
      }),
    );
  });

  it('hands out data payload as views into the input, not copies', () => {
    const wire = encodeFrame(7, new Uint8Array([1, 2, 3, 4, 5]));
    const pieces: Uint8Array[] = [];
    new FrameDecoder().push(wire, { data: (_s, _l, _o, p) => pieces.push(p), control() {} });
    expect(pieces[0]!.buffer).toBe(wire.buffer);
    expect(pieces[0]!.byteOffset).toBe(4);
  });

  it('byte-at-a-time input yields the same frames', () => {
    const frames = [encodeFrame(1, new Uint8Array(300).fill(9)), encodeControl({ type: ControlType.PING, nonce: 5n }), encodeFrame(2, new Uint8Array(0))];
    const wire = concat(frames);
    const { frames: out } = decodeAll(Array.from(wire, (b) => new Uint8Array([b])));
    expect(out.map((f) => [f.stream, f.payload.length])).toEqual([[1, 300], [0, 9], [2, 0]]);
  });

  it('control messages round-trip and wrong lengths are malformed', () => {
    const msgs = [
      { type: ControlType.WINDOW, stream: 65535, delta: 0xffffffff },
      { type: ControlType.RESET, stream: 3, code: 7 },
      { type: ControlType.PING, nonce: 0xffffffffffffffffn },
      { type: ControlType.PONG, nonce: 1n },
      { type: ControlType.GOAWAY, code: 4 },
    ] as const;
    for (const m of msgs) expect(decodeControl(encodeControl(m).subarray(4))).toEqual(m);
    for (const [type, len] of [[1, 7], [2, 4], [3, 9], [4, 9], [5, 2]] as const) {
      for (const bad of [1, len - 1, len + 1]) {
        const payload = new Uint8Array(bad);
        payload[0] = type;
        expect(() => decodeControl(payload)).toThrow(RemuxError);
      }
    }
    expect(decodeControl(new Uint8Array([0x77, 1, 2]))).toEqual({ type: 'unknown', code: 0x77 });
  });

  it('an empty control frame is a protocol error', () => {
    expect(() => new FrameDecoder().push(encodeHeader(0, 0), { data() {}, control() {} })).toThrow(RemuxError);
  });

  it('random garbage ends in RemuxError or a clean partial state, with bounded memory', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 10 }), (chunks) => {
        const decoder = new FrameDecoder();
        let held = 0;
        try {
          for (const c of chunks) {
            decoder.push(c, {
              data: (_s, length, offset, piece) => {
                expect(offset + piece.length).toBeLessThanOrEqual(length);
              },
              control: (p) => {
                held = Math.max(held, p.length);
                try {
                  decodeControl(p);
                } catch (e) {
                  expect(e).toBeInstanceOf(RemuxError);
                }
              },
            });
          }
        } catch (e) {
          expect(e).toBeInstanceOf(RemuxError);
        }
        expect(held).toBeLessThanOrEqual(65535);
      }),
    );
  });
});
