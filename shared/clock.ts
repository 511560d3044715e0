/**
 * Time as the protocol logic sees it: injected, so schedules (polling, retries, fallbacks) are
 * tested exactly with a clock the test moves, and run on the platform's timers otherwise.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** In [0, 1): jitter. */
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  // Handles are opaque here: a number in browsers, a Timeout object in Node.
  clearTimeout: (h) => clearTimeout(h as never),
  random: () => Math.random(),
};
