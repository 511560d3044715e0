/**
 * A clock that only moves when the test says so, so polling, retry and fallback schedules are
 * asserted exactly, with no real sleeps.
 */
import type { Clock } from '../../shared/clock.ts';

export class FakeClock implements Clock {
  private t = 0;
  private nextId = 1;
  private timers = new Map<number, { at: number; fn: () => void }>();
  random: () => number;

  constructor(random: () => number = () => 0.5) {
    this.random = random;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Lets promise chains settle (the session's async steps) without moving the clock. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  }

  /** Settles, then fires the earliest timer (moving time to it). False when none is set. */
  async step(): Promise<boolean> {
    await this.settle();
    let next: [number, { at: number; fn: () => void }] | null = null;
    for (const e of this.timers) if (!next || e[1].at < next[1].at) next = e;
    if (!next) return false;
    this.timers.delete(next[0]);
    this.t = Math.max(this.t, next[1].at);
    next[1].fn();
    await this.settle();
    return true;
  }

  /** Steps until `done()` or no timer is left (bounded). */
  async runUntil(done: () => boolean, maxSteps = 100_000): Promise<void> {
    for (let i = 0; i < maxSteps && !done(); i++) if (!(await this.step())) return;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await this.settle();
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
    await this.settle();
  }
}

/** A seeded PRNG (mulberry32) for reproducible jitter and traffic. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
