import { concat } from '../../shared/bytes.ts';

/**
 * What a meek session holds for the client: bytes from the upstream, bounded (the downstream
 * share of `--session-buffer`). Over the bound, `push` returns false and the producer pauses
 * until the client takes (v1) or acknowledges (v2) bytes — the read pump never buffers without
 * limit and never busy-waits.
 *
 * Bytes are addressed by their offset in the session's downstream stream: v1 takes them from
 * the front; v2 reads from any retained offset without removing (a response a proxy cut is sent
 * again from where the client got to) and forgets them only when the client acknowledges them.
 */
export class DownstreamBuffer {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;
  /** Offset of the first retained byte. */
  private base = 0;
  private waiters: Array<() => void> = [];
  private blocked = false;
  onDrain: (() => void) | null = null;

  constructor(readonly limit: number) {}

  get size(): number {
    return this.bytes;
  }

  /** Bytes it takes before it asks the producer to pause. */
  get room(): number {
    return Math.max(0, this.limit - this.bytes);
  }

  /** Appends bytes; false once over the limit (the producer should pause until `onDrain`). */
  push(chunks: readonly Uint8Array[]): boolean {
    for (const c of chunks) {
      if (c.length === 0) continue;
      this.chunks.push(c);
      this.bytes += c.length;
    }
    if (this.bytes > 0) this.wake();
    if (this.bytes >= this.limit) this.blocked = true;
    return !this.blocked;
  }

  /** Offset of the first retained byte (everything before it was taken or acknowledged). */
  get start(): number {
    return this.base;
  }

  /** Offset just past the last byte pushed. */
  get end(): number {
    return this.base + this.bytes;
  }

  /**
   * Removes up to `max` bytes from the front as one buffer (a v1 response body): no copy when
   * one chunk holds them (raw mode's socket reads usually do). Fires `onDrain` below the limit.
   */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.bytes);
    const head = this.chunks[this.head];
    const out = head && head.length >= n ? head.subarray(0, n) : concat(this.read(this.base, n));
    this.ack(this.base + n);
    return out;
  }

  /** Views of up to `max` retained bytes from offset `from` (start ≤ from ≤ end), left in place. */
  read(from: number, max: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let skip = from - this.base;
    let left = Math.min(max, this.end - from);
    for (let i = this.head; i < this.chunks.length && left > 0; i++) {
      const c = this.chunks[i]!;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const piece = c.subarray(skip, skip + Math.min(left, c.length - skip));
      skip = 0;
      out.push(piece);
      left -= piece.length;
    }
    return out;
  }

  /** Forgets every byte before `offset` (clamped to what is retained). Fires `onDrain` below the limit. */
  ack(offset: number): void {
    let drop = Math.min(offset, this.end) - this.base;
    if (drop <= 0) return;
    this.base += drop;
    this.bytes -= drop;
    while (drop > 0) {
      const c = this.chunks[this.head]!;
      if (c.length <= drop) {
        drop -= c.length;
        this.chunks[this.head++] = EMPTY;
      } else {
        this.chunks[this.head] = c.subarray(drop);
        drop = 0;
      }
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    if (this.blocked && this.bytes < this.limit) {
      this.blocked = false;
      this.onDrain?.();
    }
  }

  /** Resolves when bytes past `from` are buffered, or after `ms` (the hold-off), whichever is first. */
  wait(ms: number, from = this.base): Promise<void> {
    if (this.end > from || ms <= 0) return Promise.resolve();
    return this.nextPush(ms);
  }

  /**
   * Once bytes have started to arrive, keeps gathering while they keep coming (each gap shorter
   * than `quietMs`) until `limit` is reached — so a poll answered on the first byte of a burst
   * still leaves with the burst (Tor's meek-server calls this its turnaround).
   */
  async gather(limit: number, quietMs: number, deadline: number, from = this.base): Promise<void> {
    while (this.end > from && this.end - from < limit && Date.now() < deadline) {
      const before = this.end;
      await this.nextPush(quietMs);
      if (this.end === before) return; // quiet: nothing more came
    }
  }

  /**
   * Holds a poll: up to `ms` for bytes past `from`, then keeps gathering the burst (`gather`)
   * until the same deadline — unless `cut()` says the poll was ended meanwhile.
   */
  async hold(ms: number, limit: number, quietMs: number, from = this.base, cut: () => boolean = () => false): Promise<void> {
    const deadline = Date.now() + ms;
    await this.wait(ms, from);
    // An acknowledgement that arrived meanwhile may have moved the start past `from`.
    if (!cut()) await this.gather(limit, quietMs, deadline, Math.max(from, this.base));
  }

  /** Resolves at the next push (or wake), or after `ms`. */
  nextPush(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiters;
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  /** Releases every waiting poll now (data arrived, or the session is ending). */
  wake(): void {
    // Emptied in place: a released waiter removes itself from the array it joined, which must not
    // be the one being walked here (that skipped every second waiter).
    for (const w of this.waiters.splice(0)) w();
  }
}

const EMPTY = new Uint8Array(0);
