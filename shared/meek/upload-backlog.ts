/**
 * The bytes a meek client session was given to upload and has not sent yet, bounded: `push`
 * says "wait" once `limit` bytes are queued, and `onDrain` fires when a take brings it below.
 * Both the v1 and the v2 session cut their request bodies from it.
 */
export class UploadBacklog {
  private chunks: Uint8Array[] = [];
  private bytes = 0;
  private wantDrain = false;

  constructor(
    private readonly limit: number,
    private readonly onDrain: () => void,
  ) {}

  get size(): number {
    return this.bytes;
  }

  /** Queues `chunk` (kept, not copied); false once the backlog is full. */
  push(chunk: Uint8Array): boolean {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
    }
    if (this.bytes >= this.limit) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /** The next request body: up to `max` bytes in one buffer (the queued chunk itself when it is exactly that). */
  take(max: number): Uint8Array {
    const n = Math.min(this.bytes, max);
    let body: Uint8Array;
    if (this.chunks[0]?.length === n) {
      body = this.chunks.shift()!;
    } else {
      body = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const head = this.chunks[0]!;
        const want = n - at;
        if (head.length <= want) {
          body.set(head, at);
          at += head.length;
          this.chunks.shift();
        } else {
          body.set(head.subarray(0, want), at);
          this.chunks[0] = head.subarray(want);
          at += want;
        }
      }
    }
    this.bytes -= n;
    if (this.wantDrain && this.bytes < this.limit) {
      this.wantDrain = false;
      this.onDrain();
    }
    return body;
  }

  clear(): void {
    this.chunks = [];
    this.bytes = 0;
    this.wantDrain = false;
  }
}
