/**
 * meek-v2 lanes' pure parts (PROTOCOL.md §1.1): the segment codec, read from chunks split
 * anywhere and from hostile bytes, and the reassembly that puts segments arriving in any order,
 * with duplicates and overlaps, back into the exact downstream, within its bounds.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MeekError } from '../../shared/errors.ts';
import { LANE_END, MAX_SEGMENT, SEGMENT_HEADER, SegmentReader, segmentHeader } from '../../shared/meek/segments.ts';
import { Reassembly } from '../../shared/meek/reassembly.ts';
import { concat, cutAt } from '../support/bytes.ts';

function read(chunks: Uint8Array[]) {
  const got: Array<{ at: number; bytes: Uint8Array }> = [];
  let ends = 0;
  const reader = new SegmentReader({ data: (at, bytes) => got.push({ at, bytes: bytes.slice() }), end: () => ends++ });
  for (const c of chunks) reader.push(c);
  return { got, ends, complete: reader.complete };
}

const segment = fc.record({ at: fc.maxSafeNat().map((n) => Math.floor(n / 2)), bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) });

describe('lane segments', () => {
  it('any segments and the end marker, split anywhere, read back as written', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (segs, cuts) => {
        const wire = concat([...segs.flatMap((s) => [segmentHeader(s.at, s.bytes.length), s.bytes]), LANE_END]);
        const { got, ends, complete } = read(cutAt(wire, cuts));
        expect(ends).toBe(1);
        expect(complete).toBe(true);
        // Each piece is the next part of the segment it belongs to, at that part's offset.
        let i = 0;
        let pos = 0;
        for (const g of got) {
          const seg = segs[i]!;
          expect(g.at).toBe(seg.at + pos);
          expect(g.bytes).toEqual(seg.bytes.subarray(pos, pos + g.bytes.length));
          pos += g.bytes.length;
          if (pos === seg.bytes.length) [i, pos] = [i + 1, 0];
        }
        expect(i).toBe(segs.length);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what is malformed with MeekError HTTP: an oversized segment, an offset past 2^53, an end marker with an offset, bytes after the end', () => {
    const big = segmentHeader(0, MAX_SEGMENT + 1);
    const far = segmentHeader(2 ** 53 - 2, 10);
    const badEnd = segmentHeader(5, 0);
    const after = concat([LANE_END, new Uint8Array([1])]);
    for (const wire of [big, far, badEnd, after]) {
      expect(() => read([wire])).toThrow(MeekError);
    }
    // A header cut short is not an error: the lane is simply incomplete (cut).
    const cut = read([segmentHeader(0, 5).subarray(0, SEGMENT_HEADER - 3)]);
    expect(cut).toEqual({ got: [], ends: 0, complete: false });
  });

  it('hostile bytes: segments within bounds, or MeekError — never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        try {
          const { got } = read(cutAt(bytes, cuts));
          for (const g of got) expect(Number.isSafeInteger(g.at + g.bytes.length)).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(MeekError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('lane reassembly', () => {
  it('segments of a downstream in any order, with duplicates and overlaps, come out exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 4000 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (data, extra, order) => {
          // Cover the data with segments, then add random overlapping ones, then shuffle.
          const segs: Array<[number, number]> = [];
          for (let at = 0; at < data.length; at += 500) segs.push([at, Math.min(data.length, at + 500)]);
          for (const [a, b] of extra) {
            const from = a % data.length;
            segs.push([from, Math.min(data.length, from + 1 + (b % 700))]);
          }
          const shuffled = segs.map((s, i) => ({ s, key: order[i % Math.max(order.length, 1)] ?? i })).sort((x, y) => x.key - y.key).map((x) => x.s);
          const out: Uint8Array[] = [];
          const r = new Reassembly((b) => out.push(b.slice()));
          for (const [from, to] of shuffled) r.accept(from, data.subarray(from, to), 1 << 20, 4);
          expect(concat(out)).toEqual(data);
          expect(r.received).toBe(data.length);
          expect(r.waiting).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('without a retain (polls, plain streams) a gap is the edge’s bug; with one, bytes past it plus a segment are refused, and so is more waiting than lanes × that', () => {
    const r = new Reassembly(() => {});
    expect(() => r.accept(10, new Uint8Array(5))).toThrow(/gap/);
    const retain = 4096;
    expect(() => r.accept(retain + MAX_SEGMENT - 4, new Uint8Array(5), retain, 2)).toThrow(/retains/);
    const lanes = new Reassembly(() => {});
    const piece = new Uint8Array(retain + MAX_SEGMENT - 1);
    lanes.accept(1, piece, retain, 2);
    lanes.accept(1, piece, retain, 2); // the same bytes again, as after a rewind
    expect(lanes.waiting).toBe(2 * piece.length);
    expect(() => lanes.accept(1, new Uint8Array(3), retain, 2)).toThrow(/out-of-order/);
    // The gap fills: everything waiting goes out once.
    const out: Uint8Array[] = [];
    const filled = new Reassembly((b) => out.push(b));
    filled.accept(4, new Uint8Array([5, 6]), retain, 2);
    expect(filled.accept(0, new Uint8Array([1, 2, 3, 4]), retain, 2)).toBe(true);
    expect(concat(out)).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
  });
});
