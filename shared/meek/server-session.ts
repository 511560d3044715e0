/**
 * The edge's per-session seq rules (PROTOCOL.md §1, Lantern's meek-v1): requests of one session
 * run one at a time; a repeated seq replays the stored response without touching the upstream —
 * also when the retry arrived while its original was still running; any other jump is 409.
 *
 * A session keeps the mode its first accepted request set: with X-Meek-Seq, or plain meek (Tor's
 * meek-client) without it. Switching mode either way is 400 — dropping seq would disable replay
 * protection mid-session, and adding it has no last seq to check against.
 */
import { MeekError } from '../errors.ts';

/** The edge ends a session that has carried no stream for this long (PROTOCOL.md §1). */
export const EMPTY_SESSION_MS = 10_000;
/** A client opens a new session rather than reuse one that has carried no stream for this long. */
export const REUSE_EMPTY_SESSION_MS = EMPTY_SESSION_MS / 2;
import { DEFAULT_CLIENT_MAX_BODY, isValidSeq } from './headers.ts';

export class MeekServerSession<T> {
  /** Last processed seq (0: none yet). */
  private last = 0;
  /** null until a request was accepted; then whether this session uses seq. */
  private usesSeq: boolean | null = null;
  /** The response to `last`, for replays; a flag rather than a null sentinel so T may be null. */
  private hasStored = false;
  private stored: T | undefined = undefined;
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * Serialises this request behind earlier ones of the session, then processes or replays it.
   * Rejects with MeekError SEQ (409) or HEADER (400) without side effects, or with whatever
   * `process` rejected with (nothing stored, seq not advanced: the client's retry runs it again).
   */
  handle(seq: number | null, process: () => Promise<T>): Promise<{ replayed: boolean; response: T }> {
    const turn = this.queue.then(() => this.decide(seq, process));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** The last processed seq (0 before any). */
  get lastSeq(): number {
    return this.last;
  }

  private async decide(seq: number | null, process: () => Promise<T>): Promise<{ replayed: boolean; response: T }> {
    if (seq === null) {
      if (this.usesSeq === true) throw new MeekError('HEADER', 'X-Meek-Seq missing on a session that used it');
      this.usesSeq = false;
      // Plain meek: every request is new, nothing to replay.
      return { replayed: false, response: await process() };
    }
    // The header parser refuses these already; the check keeps this class safe on its own.
    if (!isValidSeq(seq)) throw new MeekError('HEADER', `X-Meek-Seq ${seq} out of range`);
    if (this.usesSeq === false) throw new MeekError('HEADER', 'X-Meek-Seq on a session that began without it');
    if (seq === this.last && this.hasStored) return { replayed: true, response: this.stored as T };
    if (seq !== this.last + 1) throw new MeekError('SEQ', `expected seq ${this.last + 1} (or ${this.last} again), got ${seq}`);
    this.usesSeq = true;
    const response = await process();
    this.last = seq;
    this.stored = response;
    this.hasStored = true;
    return { replayed: false, response };
  }
}

/** A seq above 1 for a session the server does not know is 410 (expired or reaped), never a new session. */
export function checkNewSession(seq: number | null): void {
  if (seq !== null && seq > 1) throw new MeekError('GONE', 'unknown session');
}

/** The most a response may carry: the server's max, bounded by what the client accepts (64 KiB if unsaid). */
export function negotiateResponseLimit(serverMax: number, clientMax: number | null): number {
  return Math.min(serverMax, clientMax ?? DEFAULT_CLIENT_MAX_BODY);
}
