/**
 * A meek-v2 session's downstream put back in order (PROTOCOL.md §1.1). Polls and plain streams
 * bring bytes from the acknowledged offset, so anything past what the client holds is the edge's
 * bug; lanes bring segments in any order, and those past it wait here until the gap before them
 * is filled. What waits is bounded by the edge's own memory for the session: every byte the edge
 * sends lies below the acknowledged offset plus X-Meek-Retain plus one segment.
 */
import { MeekError } from '../errors.ts';
import { MAX_SEGMENT } from './segments.ts';

interface Piece {
  at: number;
  bytes: Uint8Array;
}

export class Reassembly {
  /** Bytes handed on, in order: the offset the client acknowledges. */
  received = 0;
  private pending: Piece[] = [];
  private pendingBytes = 0;

  constructor(private readonly deliver: (bytes: Uint8Array) => void) {}

  /** Bytes waiting for an earlier gap to fill. */
  get waiting(): number {
    return this.pendingBytes;
  }

  /**
   * Bytes at offset `at`. In order ones (and the waiting ones they reach) are handed on at once,
   * duplicates dropped. Past the received offset: a MeekError unless `retain` (X-Meek-Retain, for
   * lanes) is given, and then they wait — within `retain` + MAX_SEGMENT of the received offset,
   * and `lanes` times that in all (lanes may carry the same bytes again after a rewind).
   * Whether they reach past the received offset (handed on now, or waiting): bytes not had yet.
   */
  accept(at: number, bytes: Uint8Array, retain: number | null = null, lanes = 1): boolean {
    if (bytes.length === 0) return false;
    const before = this.received;
    if (at > this.received) {
      if (retain === null) throw new MeekError('HTTP', `downstream gap: got offset ${at}, expected ${this.received}`);
      if (at + bytes.length > this.received + retain + MAX_SEGMENT) throw new MeekError('HTTP', `a segment at ${at} past what the edge retains beyond ${this.received}`);
      if (this.pendingBytes + bytes.length > lanes * (retain + MAX_SEGMENT)) throw new MeekError('HTTP', 'more out-of-order downstream than the edge retains');
      this.insert({ at, bytes });
      return true;
    }
    this.take(at, bytes);
    while (this.pending.length > 0 && this.pending[0]!.at <= this.received) {
      const p = this.pending.shift()!;
      this.pendingBytes -= p.bytes.length;
      this.take(p.at, p.bytes);
    }
    return this.received > before;
  }

  private take(at: number, bytes: Uint8Array): void {
    const skip = this.received - at;
    if (skip >= bytes.length) return;
    const fresh = skip > 0 ? bytes.subarray(skip) : bytes;
    this.received += fresh.length;
    this.deliver(fresh);
  }

  /** Keeps `pending` sorted by offset (few entries: a lane's worth of segments at most). */
  private insert(p: Piece): void {
    let i = this.pending.length;
    while (i > 0 && this.pending[i - 1]!.at > p.at) i--;
    this.pending.splice(i, 0, p);
    this.pendingBytes += p.bytes.length;
  }

  clear(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}
