/**
 * The process's memory budget (`--max-memory`): what every session holds — downstream bytes,
 * queued send bytes, waiting control frames, one receive window per open stream — summed. Near
 * it the edge refuses new streams (RESET 0x06) and new sessions (503) and stops reading from
 * destinations, instead of buffering; reading resumes once polls have drained below it.
 */
import { INITIAL_WINDOW, MAX_PAYLOAD } from '../../shared/remux/frame.ts';
import type { MemoryAccount } from '../exit/exit-mux.ts';

/** How stale the summed figure may be (every write asks; summing 1,000 sessions each time would cost). */
const REFRESH_MS = 10;
/** While under pressure, how often the sum is taken again to release writers. */
const RELIEVE_EVERY_MS = 25;

export class MemoryBudget {
  private readonly accounts = new Set<MemoryAccount>();
  private cached = 0;
  private cachedAt = -Infinity;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly limit: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(account: MemoryAccount): () => void {
    this.accounts.add(account);
    return () => {
      this.accounts.delete(account);
      this.cachedAt = -Infinity;
    };
  }

  /** Bytes all sessions hold, at most REFRESH_MS old (`fresh` sums now). */
  used(fresh = false): number {
    const t = this.now();
    if (fresh || t - this.cachedAt >= REFRESH_MS) {
      let sum = 0;
      for (const a of this.accounts) sum += a.memoryUsed();
      this.cached = sum;
      this.cachedAt = t;
    }
    return this.cached;
  }

  /** Room for one more stream: its receive window and one frame of its sending. */
  admitStream(): boolean {
    return this.used(true) + INITIAL_WINDOW + MAX_PAYLOAD <= this.limit;
  }

  /** Room for one more session that holds at least `floor` bytes. */
  admitSession(floor: number): boolean {
    return this.used(true) + floor <= this.limit;
  }

  /** At the limit: writers wait. Starts the watch that releases them once below it. */
  underPressure(): boolean {
    if (this.used() < this.limit) return false;
    this.timer ??= setInterval(() => this.relieve(), RELIEVE_EVERY_MS);
    this.timer.unref?.();
    return true;
  }

  /** Below the limit again: every session's held writers go on. */
  relieve(): void {
    if (this.timer === null || this.used(true) >= this.limit) return;
    clearInterval(this.timer);
    this.timer = null;
    for (const a of this.accounts) a.relieve();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
