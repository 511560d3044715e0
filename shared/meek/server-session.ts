/**
 * The edge's per-session seq rules (PROTOCOL.md §1, Lantern's meek-v1): requests of one session
 * run one at a time; a repeated seq replays the stored response without touching the upstream —
 * also when the retry arrived while its original was still running; any other jump is 409.
 */
import { ProtocolError } from '../errors.ts';
import { DEFAULT_CLIENT_MAX_BODY } from './headers.ts';

export class MeekServerSession<T> {
  /** Last processed seq (0: none yet); null while the session runs without seq (plain meek). */
  private last = 0;
  private usesSeq: boolean | null = null;
  private stored: T | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  /** Serialises `seq` behind earlier requests of this session, then processes or replays it. */
  handle(seq: number | null, process: () => Promise<T>): Promise<{ replayed: boolean; response: T }> {
    const turn = this.queue.then(() => this.decide(seq, process));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  get lastSeq(): number {
    return this.last;
  }

  private async decide(seq: number | null, process: () => Promise<T>): Promise<{ replayed: boolean; response: T }> {
    if (this.usesSeq === null) this.usesSeq = seq !== null;
    if (seq === null) {
      // Tor's meek-client sends no seq: every request is new. A session that used seq may not drop it.
      if (this.usesSeq) throw new ProtocolError('MEEK_HEADER', 'X-Meek-Seq missing on a session that used it');
      return { replayed: false, response: await process() };
    }
    if (!this.usesSeq) throw new ProtocolError('MEEK_HEADER', 'X-Meek-Seq on a session that began without it');
    if (seq === this.last && this.stored !== null) return { replayed: true, response: this.stored };
    if (seq !== this.last + 1) throw new ProtocolError('MEEK_SEQ', `expected seq ${this.last + 1} (or ${this.last} again), got ${seq}`);
    // A failed process stores nothing and does not advance: the client's retry runs it again.
    const response = await process();
    this.last = seq;
    this.stored = response;
    return { replayed: false, response };
  }
}

/** A seq above 1 for a session the server does not know is 410 (expired or reaped), never a new session. */
export function checkNewSession(seq: number | null): void {
  if (seq !== null && seq > 1) throw new ProtocolError('MEEK_GONE', 'unknown session');
}

/** The most a response may carry: the server's max, bounded by what the client accepts (64 KiB if unsaid). */
export function negotiateResponseLimit(serverMax: number, clientMax: number | null): number {
  return Math.min(serverMax, clientMax ?? DEFAULT_CLIENT_MAX_BODY);
}
