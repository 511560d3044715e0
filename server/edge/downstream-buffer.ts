/**
 * What a meek session holds for the client between polls: bytes from the upstream, bounded
 * (4 × max body by default). Over the bound, `push` returns false and the producer pauses until
 * a poll drains it — the read pump never buffers without limit and never busy-waits.
 */
export class DownstreamBuffer {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;
  private waiters: Array<() => void> = [];
  private blocked = false;
  onDrain: (() => void) | null = null;

  constructor(private readonly limit: number) {}

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

  /** Removes up to `max` bytes as one buffer (the response body). Fires `onDrain` when it falls below the limit again. */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.bytes);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[this.head]!;
      const want = n - at;
      if (c.length <= want) {
        out.set(c, at);
        at += c.length;
        this.chunks[this.head++] = EMPTY;
      } else {
        out.set(c.subarray(0, want), at);
        this.chunks[this.head] = c.subarray(want);
        at += want;
      }
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    this.bytes -= n;
    if (this.blocked && this.bytes < this.limit) {
      this.blocked = false;
      this.onDrain?.();
    }
    return out;
  }

  /** Resolves when bytes are buffered, or after `ms` (the hold-off), whichever is first. */
  wait(ms: number): Promise<void> {
    if (this.bytes > 0 || ms <= 0) return Promise.resolve();
    return this.nextPush(ms);
  }

  /**
   * Once bytes have started to arrive, keeps gathering while they keep coming (each gap shorter
   * than `quietMs`) until `limit` is reached — so a poll answered on the first byte of a burst
   * still leaves with the burst (Tor's meek-server calls this its turnaround).
   */
  async gather(limit: number, quietMs: number, deadline: number): Promise<void> {
    while (this.bytes > 0 && this.bytes < limit && Date.now() < deadline) {
      const before = this.bytes;
      await this.nextPush(quietMs);
      if (this.bytes === before) return; // quiet: nothing more came
    }
  }

  /** Resolves at the next push (or wake), or after `ms`. */
  private nextPush(ms: number): Promise<void> {
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
