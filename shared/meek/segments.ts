/**
 * The body of a meek-v2 lane (PROTOCOL.md §1.1): after the lead, segments of the session's
 * downstream, each addressed by its offset, so several lanes can carry one byte stream at once
 * and the client puts it back in order. A segment is
 *   offset: u64 (≤ 2^53 − 1) · length: u32 (1 … MAX_SEGMENT) · length bytes,
 * big-endian; a header with length 0 (offset 0) ends the lane: everything the edge gave it was
 * written before, so a lane that ends without one was cut.
 */
import { MeekError } from '../errors.ts';

export const SEGMENT_HEADER = 12;
/** The largest segment: one response write's worth on the edge. */
export const MAX_SEGMENT = 1024 * 1024;

/** The 12-byte header of a segment of `length` bytes at `offset`; length 0 is the end marker. */
export function segmentHeader(offset: number, length: number): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(offset / 2 ** 32));
  view.setUint32(4, offset % 2 ** 32);
  view.setUint32(8, length);
  return out;
}

export const LANE_END = segmentHeader(0, 0);

export interface SegmentSink {
  /** Bytes of the segment at `offset`, in order; a segment may come in several pieces. */
  data(offset: number, bytes: Uint8Array): void;
  /** The end marker: the lane is complete. */
  end(): void;
}

/**
 * Reads segments from a lane's body as its chunks arrive, split anywhere. Throws MeekError HTTP
 * on a malformed header or on bytes after the end marker; the caller ends the session.
 */
export class SegmentReader {
  private readonly header = new Uint8Array(SEGMENT_HEADER);
  private filled = 0;
  /** Offset and bytes left of the segment being read (left 0: reading a header). */
  private at = 0;
  private left = 0;
  private ended = false;

  constructor(private readonly sink: SegmentSink) {}

  get complete(): boolean {
    return this.ended;
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.ended) throw new MeekError('HTTP', 'bytes after the end of a lane');
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - i);
        this.sink.data(this.at, chunk.subarray(i, i + n));
        this.at += n;
        this.left -= n;
        i += n;
        continue;
      }
      const n = Math.min(SEGMENT_HEADER - this.filled, chunk.length - i);
      this.header.set(chunk.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled < SEGMENT_HEADER) return;
      this.filled = 0;
      const view = new DataView(this.header.buffer);
      const hi = view.getUint32(0);
      const offset = hi * 2 ** 32 + view.getUint32(4);
      const length = view.getUint32(8);
      if (length === 0) {
        if (offset !== 0) throw new MeekError('HTTP', 'a lane end marker with an offset');
        this.ended = true;
        this.sink.end();
        continue;
      }
      if (hi >= 2 ** 21 || !Number.isSafeInteger(offset + length)) throw new MeekError('HTTP', 'a segment offset past 2^53');
      if (length > MAX_SEGMENT) throw new MeekError('HTTP', `a segment of ${length} bytes (at most ${MAX_SEGMENT})`);
      this.at = offset;
      this.left = length;
    }
  }
}
