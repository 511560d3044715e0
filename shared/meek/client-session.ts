/**
 * One meek session seen from the client (PROTOCOL.md §1): a byte duplex carried by sequential
 * HTTP round trips. The round trip itself is injected — `fetch` in the extension, node:http in
 * tests and benchmarks — so every rule below is the same everywhere:
 * - one request in flight; its body is held until a 200 and a retry resends the same seq and body;
 * - network errors, timeouts and 5xx retry with Psiphon's backoff (50 ms doubling to 1 s), at most
 *   5 times within 15 s; 410 ends the session; any other non-200 is final;
 * - uploads are ≤ 64 KiB until a response told the server's max body;
 * - polling follows PollSchedule, and not at all while no stream is open and nothing is queued.
 */
import { systemClock, type Clock } from '../clock.ts';
import { MeekError } from '../errors.ts';
import { DEFAULT_SERVER_MAX_BODY, newSessionId } from './headers.ts';
import { exchange, REQUEST_TIMEOUT_MS, type MeekResponse, type MeekRoundTrip } from './round-trip.ts';
import { PollSchedule, pollWanted } from './schedule.ts';
import { UploadBacklog } from './upload-backlog.ts';
import { BodyLimits } from './body-limits.ts';

export { RETRY_INITIAL_MS, RETRY_MAX_DELAY_MS, RETRY_WINDOW_MS, REQUEST_TIMEOUT_MS } from './round-trip.ts';
export type { MeekRequest, MeekResponse, MeekRoundTrip } from './round-trip.ts';

export const DEFAULT_BACKLOG_LIMIT = 4 * DEFAULT_SERVER_MAX_BODY;

export interface MeekClientOptions {
  roundTrip: MeekRoundTrip;
  clock?: Clock;
  /** The largest response body this client accepts (advertised in X-Meek-Max-Body); clamped to 1024 … 16 MiB. */
  acceptMaxBody?: number;
  /** Send X-Meek-Seq (Passage, Lantern); off only to imitate Tor's meek-client. */
  useSeq?: boolean;
  /** Bytes of unsent upload held before `write` says wait. */
  backlogLimit?: number;
  requestTimeoutMs?: number;
  onData(bytes: Uint8Array): void;
  onDrain?(): void;
  /** The session ended on its own (410, a final status, retries exhausted). Not called after `close()`. */
  onClose(error: MeekError): void;
  onRoundTrip?(info: { rttMs: number; up: number; down: number }): void;
}

export class MeekClientSession {
  readonly id = newSessionId();
  readonly stats = { polls: 0, retries: 0, bytesUp: 0, bytesDown: 0, lastRttMs: null as number | null };

  private readonly o: MeekClientOptions;
  private readonly clock: Clock;
  private readonly limits: BodyLimits;
  private readonly requestTimeoutMs: number;
  private readonly schedule: PollSchedule;
  private readonly backlog: UploadBacklog;
  private seq = 0;
  private active = false;
  private lastCarried = false;
  private running = false;
  private closed = false;
  /** Aborted by close(): ends a request in flight or its backoff at once. */
  private readonly closing = new AbortController();
  /** Ends the loop's idle wait at once; null when it is not idling. */
  private interrupt: (() => void) | null = null;
  /** The current wait is an idle one, which a write or a new stream cuts short. */
  private idling = false;

  constructor(options: MeekClientOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.limits = new BodyLimits(options.acceptMaxBody);
    this.backlog = new UploadBacklog(Math.max(1, options.backlogLimit ?? DEFAULT_BACKLOG_LIMIT), () => this.o.onDrain?.());
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.schedule = new PollSchedule(() => this.clock.random());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues upload bytes (the session keeps `chunk`, not a copy); false once the backlog is full: wait for onDrain. */
  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    const room = this.backlog.push(chunk);
    if (chunk.length > 0) {
      this.schedule.reset();
      this.kick();
    }
    return room;
  }

  /** Whether any stream is open on this session: inactive with nothing queued, it does not poll. */
  setActive(active: boolean): void {
    if (this.closed || active === this.active) return;
    this.active = active;
    if (active) this.kick();
    // Going quiet: end an idle wait now so its timer does not linger; the loop then stops.
    else if (this.idling) this.interrupt?.();
  }

  /** Stops the session: aborts the request in flight, clears every timer; no callback follows. */
  close(): void {
    if (this.closed) return;
    this.shutdown();
  }

  /** The largest upload per request right now. */
  get uploadLimit(): number {
    return this.limits.upload;
  }

  private kick(): void {
    if (this.idling) this.interrupt?.();
    else if (!this.running) void this.loop();
  }

  private wantsPoll(): boolean {
    return !this.closed && pollWanted({ active: this.active, queuedBytes: this.backlog.size, lastCarried: this.lastCarried });
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.wantsPoll()) {
        // Let whatever the last response set off (the mux flushing into our backlog) land first,
        // or this poll would leave empty and the server would hold it.
        await Promise.resolve();
        if (!this.wantsPoll()) break;
        const body = this.takeBody();
        if (this.closed) return; // onDrain may have closed us
        const seq = this.o.useSeq === false ? null : ++this.seq;
        const done = await this.exchange(seq, body);
        if (!done) return;
        const { res, rttMs } = done;
        this.stats.polls++;
        this.stats.bytesUp += body.length;
        this.stats.bytesDown += res.body.length;
        this.stats.lastRttMs = rttMs;
        this.o.onRoundTrip?.({ rttMs, up: body.length, down: res.body.length });
        if (this.closed) return;
        if (res.body.length > 0) this.o.onData(res.body);
        if (this.closed) return;
        this.lastCarried = body.length > 0 || res.body.length > 0;
        const delay = this.schedule.afterRoundTrip(this.lastCarried);
        if (delay > 0 && this.backlog.size === 0 && this.wantsPoll()) await this.sleep(delay, true);
      }
    } finally {
      this.running = false;
    }
  }

  /** The next request body: up to the upload limit from the backlog, in one buffer. */
  private takeBody(): Uint8Array {
    return this.backlog.take(this.uploadLimit);
  }

  /** One round trip with retries of the same seq and body (round-trip.ts); null when the session ended meanwhile. */
  private async exchange(seq: number | null, body: Uint8Array): Promise<{ res: MeekResponse; rttMs: number } | null> {
    const done = await exchange(
      { roundTrip: this.o.roundTrip, clock: this.clock, timeoutMs: this.requestTimeoutMs, closed: this.closing.signal, onRetry: () => this.stats.retries++ },
      { sessionId: this.id, seq, body, acceptMaxBody: this.limits.acceptMaxBody },
    );
    if (done.kind === 'closed' || this.closed) return null;
    if (done.kind === 'failed') return this.fail(done.error);
    this.limits.learn(done.res.serverMaxBody);
    return done;
  }

  /** Waits `ms`; an idle wait also ends early when a write or a new stream wakes the loop. */
  private sleep(ms: number, idle: boolean): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        this.clock.clearTimeout(timer);
        this.interrupt = null;
        this.idling = false;
        resolve();
      };
      const timer = this.clock.setTimeout(end, ms);
      this.interrupt = end;
      this.idling = idle;
    });
  }

  private shutdown(): void {
    this.closed = true;
    this.closing.abort();
    this.backlog.clear();
    this.interrupt?.();
  }

  private fail(error: MeekError): null {
    if (!this.closed) {
      this.shutdown();
      this.o.onClose(error);
    }
    return null;
  }
}
