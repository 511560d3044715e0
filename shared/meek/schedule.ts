/**
 * When a meek client polls (PROTOCOL.md §1). Tor's constants: 100 ms after the first empty round
 * trip, ×1.5 per further empty one, capped at 5 s; Psiphon's ±30 % jitter so that many clients
 * do not poll in lockstep. Bytes in either direction, or a write, reset it to "at once".
 */
export const INITIAL_POLL_DELAY_MS = 100;
export const POLL_BACKOFF = 1.5;
export const MAX_POLL_DELAY_MS = 5000;
export const POLL_JITTER = 0.3;

export class PollSchedule {
  private emptyRounds = 0;

  constructor(private readonly random: () => number) {}

  /** After a round trip: how long to wait before the next poll (0 = at once). */
  afterRoundTrip(carriedBytes: boolean): number {
    if (carriedBytes) {
      this.emptyRounds = 0;
      return 0;
    }
    const base = Math.min(INITIAL_POLL_DELAY_MS * POLL_BACKOFF ** this.emptyRounds, MAX_POLL_DELAY_MS);
    this.emptyRounds++;
    return base * (1 - POLL_JITTER + 2 * POLL_JITTER * this.random());
  }

  /** The application wrote: the next poll goes at once and the backoff starts over. */
  reset(): void {
    this.emptyRounds = 0;
  }

  /** The undisturbed delay (without jitter) the next empty round trip would get. */
  get nominalDelay(): number {
    return Math.min(INITIAL_POLL_DELAY_MS * POLL_BACKOFF ** this.emptyRounds, MAX_POLL_DELAY_MS);
  }
}
