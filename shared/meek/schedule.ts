/**
 * When a meek client polls (PROTOCOL.md §1). Tor's constants: 100 ms after the first empty round
 * trip, ×1.5 per further empty one, capped at 5 s; Psiphon's ±30 % jitter so that many clients
 * do not poll in lockstep. Bytes in either direction, or a write, reset it to "at once".
 */
export const INITIAL_POLL_DELAY_MS = 100;
export const POLL_BACKOFF = 1.5;
export const MAX_POLL_DELAY_MS = 5000;
export const POLL_JITTER = 0.3;

/** What the poll loop knows when it decides whether to poll at all. */
export interface PollState {
  /** Some stream is open on the session. */
  active: boolean;
  /** Upload bytes queued and not yet sent. */
  queuedBytes: number;
  /** The last round trip carried bytes either way (more may be waiting downstream). */
  lastCarried: boolean;
}

/**
 * Whether the session should poll at all. A session with no open stream and nothing to send stays
 * silent — but a round trip that still carried bytes is followed up, so the last frames of a
 * closing stream (FIN, RESET, their answers) are not stranded on the server.
 */
export function pollWanted(s: PollState): boolean {
  return s.active || s.queuedBytes > 0 || s.lastCarried;
}

export class PollSchedule {
  private emptyRounds = 0;

  /** `random` returns a value in [0, 1), as Math.random does; it only sets the jitter. */
  constructor(private readonly random: () => number) {}

  /** After a round trip: how long to wait before the next poll (0 = at once). */
  afterRoundTrip(carriedBytes: boolean): number {
    if (carriedBytes) {
      this.emptyRounds = 0;
      return 0;
    }
    const base = this.nominalDelay;
    this.emptyRounds++;
    // A misbehaving random source must not turn into a NaN or negative timer.
    const r = this.random();
    const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0.5;
    return base * (1 - POLL_JITTER + 2 * POLL_JITTER * unit);
  }

  /** The application wrote: the next poll goes at once and the backoff starts over. */
  reset(): void {
    this.emptyRounds = 0;
  }

  /** The undisturbed delay (without jitter) the next empty round trip would get. */
  get nominalDelay(): number {
    // Past ~10 empty rounds the cap holds; stop the exponent growing without bound.
    return Math.min(INITIAL_POLL_DELAY_MS * POLL_BACKOFF ** Math.min(this.emptyRounds, 64), MAX_POLL_DELAY_MS);
  }
}
