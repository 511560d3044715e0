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
import { DEFAULT_SERVER_MAX_BODY, INITIAL_UPLOAD_LIMIT, MAX_MAX_BODY, MIN_MAX_BODY, newSessionId } from './headers.ts';
import { PollSchedule, pollWanted } from './schedule.ts';

export interface MeekRequest {
  sessionId: string;
  /** null when the session runs without X-Meek-Seq (useSeq: false). */
  seq: number | null;
  body: Uint8Array;
  /** Sent as X-Meek-Max-Body. */
  acceptMaxBody: number;
  /** Aborted on timeout and on close(); the session does not rely on the transport honouring it. */
  signal: AbortSignal;
}

export interface MeekResponse {
  status: number;
  body: Uint8Array;
  /** The response's X-Meek-Max-Body, when it had one. */
  serverMaxBody: number | null;
}

/** Rejects on network errors (and on abort). */
export type MeekRoundTrip = (req: MeekRequest) => Promise<MeekResponse>;

export const RETRY_INITIAL_MS = 50;
export const RETRY_MAX_DELAY_MS = 1000;
/** Retries go on for this long after the first failure, however many it takes (a path that cuts every connection within a second still gets through). */
export const RETRY_WINDOW_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 20_000;
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

/** How one attempt at a round trip ended. */
type Attempt = { kind: 'response'; res: MeekResponse; rttMs: number } | { kind: 'failed'; problem: string } | { kind: 'closed' };

export class MeekClientSession {
  readonly id = newSessionId();
  readonly stats = { polls: 0, retries: 0, bytesUp: 0, bytesDown: 0, lastRttMs: null as number | null };

  private readonly o: MeekClientOptions;
  private readonly clock: Clock;
  private readonly acceptMaxBody: number;
  private readonly backlogLimit: number;
  private readonly requestTimeoutMs: number;
  private readonly schedule: PollSchedule;
  private backlog: Uint8Array[] = [];
  private backlogBytes = 0;
  private wantDrain = false;
  private seq = 0;
  private serverMaxBody: number | null = null;
  private active = false;
  private lastCarried = false;
  private running = false;
  private closed = false;
  /** Ends whatever the loop is waiting on (idle, backoff or a request) at once; null when nothing. */
  private interrupt: (() => void) | null = null;
  /** The current wait is an idle one, which a write or a new stream cuts short. */
  private idling = false;

  constructor(options: MeekClientOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    const accept = Math.floor(options.acceptMaxBody ?? DEFAULT_SERVER_MAX_BODY);
    // The edge answers 400 to a max below 1024, and caps absurd ones anyway.
    this.acceptMaxBody = Math.min(Math.max(Number.isFinite(accept) ? accept : DEFAULT_SERVER_MAX_BODY, MIN_MAX_BODY), MAX_MAX_BODY);
    this.backlogLimit = Math.max(1, options.backlogLimit ?? DEFAULT_BACKLOG_LIMIT);
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.schedule = new PollSchedule(() => this.clock.random());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues upload bytes (the session keeps `chunk`, not a copy); false once the backlog is full: wait for onDrain. */
  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    if (chunk.length > 0) {
      this.backlog.push(chunk);
      this.backlogBytes += chunk.length;
      this.schedule.reset();
      this.kick();
    }
    if (this.backlogBytes >= this.backlogLimit) {
      this.wantDrain = true;
      return false;
    }
    return true;
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
    return this.serverMaxBody === null ? INITIAL_UPLOAD_LIMIT : Math.min(this.acceptMaxBody, this.serverMaxBody);
  }

  private kick(): void {
    if (this.idling) this.interrupt?.();
    else if (!this.running) void this.loop();
  }

  private wantsPoll(): boolean {
    return !this.closed && pollWanted({ active: this.active, queuedBytes: this.backlogBytes, lastCarried: this.lastCarried });
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
        if (delay > 0 && this.backlogBytes === 0 && this.wantsPoll()) await this.sleep(delay, true);
      }
    } finally {
      this.running = false;
    }
  }

  /** The next request body: up to the upload limit from the backlog, in one buffer. */
  private takeBody(): Uint8Array {
    const n = Math.min(this.backlogBytes, this.uploadLimit);
    const body = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.backlog[0]!;
      const want = n - at;
      if (head.length <= want) {
        body.set(head, at);
        at += head.length;
        this.backlog.shift();
      } else {
        body.set(head.subarray(0, want), at);
        this.backlog[0] = head.subarray(want);
        at += want;
      }
    }
    this.backlogBytes -= n;
    if (this.wantDrain && this.backlogBytes < this.backlogLimit) {
      this.wantDrain = false;
      this.o.onDrain?.();
    }
    return body;
  }

  /**
   * One round trip with retries of the same seq and body; null when the session ended meanwhile.
   * Retries are bounded by time, not count: the 15 s window counts from the first failure, so a request that timed out (20 s) still gets
   * its retries; a hung edge thus costs at most about two timeouts before the session gives up.
   */
  private async exchange(seq: number | null, body: Uint8Array): Promise<{ res: MeekResponse; rttMs: number } | null> {
    let delay = RETRY_INITIAL_MS;
    let retries = 0;
    let firstFailure: number | null = null;
    for (;;) {
      const a = await this.attempt(seq, body);
      if (a.kind === 'closed' || this.closed) return null;
      let problem: string;
      if (a.kind === 'response') {
        const { res } = a;
        if (res.status === 200) {
          this.learnServerMax(res.serverMaxBody);
          return a;
        }
        if (res.status === 410) return this.fail(new MeekError('GONE', 'the edge ended the session (410)'));
        // 5xx is the CDN's or the edge's trouble (the 502/503 a first request may get among them):
        // retry. Every other status is final.
        if (res.status < 500 || res.status > 599) return this.fail(new MeekError('HTTP', `the edge answered ${res.status}`));
        problem = `the edge answered ${res.status}`;
      } else {
        problem = a.problem;
      }
      const now = this.clock.now();
      firstFailure ??= now;
      if (now - firstFailure + delay > RETRY_WINDOW_MS) {
        return this.fail(new MeekError('RETRIES', `gave up after ${retries} retries: ${problem}`));
      }
      retries++;
      this.stats.retries++;
      await this.sleep(delay, false);
      if (this.closed) return null;
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
  }

  /**
   * One request. The timeout settles it here even if the transport ignores the abort signal, and
   * a response arriving after that is dropped: the retry's replay carries the same bytes.
   */
  private attempt(seq: number | null, body: Uint8Array): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      const abort = new AbortController();
      const started = this.clock.now();
      let settled = false;
      const finish = (a: Attempt) => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        this.interrupt = null;
        resolve(a);
      };
      const timer = this.clock.setTimeout(() => {
        abort.abort();
        finish({ kind: 'failed', problem: `request timed out after ${this.requestTimeoutMs} ms` });
      }, this.requestTimeoutMs);
      this.interrupt = () => {
        abort.abort();
        finish({ kind: 'closed' });
      };
      let pending: Promise<MeekResponse>;
      try {
        pending = this.o.roundTrip({ sessionId: this.id, seq, body, acceptMaxBody: this.acceptMaxBody, signal: abort.signal });
      } catch (e) {
        pending = Promise.reject(e);
      }
      pending.then(
        (res) => finish({ kind: 'response', res, rttMs: this.clock.now() - started }),
        (e: unknown) => finish({ kind: 'failed', problem: `network error: ${e instanceof Error ? e.message : String(e)}` }),
      );
    });
  }

  private learnServerMax(max: number | null): void {
    // Ignore what no conforming edge sends (below 1024, NaN); cap what nobody should buffer.
    if (max !== null && max >= MIN_MAX_BODY) this.serverMaxBody = Math.min(Math.floor(max), MAX_MAX_BODY);
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
    this.backlog = [];
    this.backlogBytes = 0;
    this.wantDrain = false;
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
