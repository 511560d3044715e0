/**
 * One meek session seen from the client (PROTOCOL.md §1): a byte duplex carried by sequential
 * HTTP round trips. The round trip itself is injected — `fetch` in the extension, node:http in
 * tests and benchmarks — so every rule below is the same everywhere:
 * - one request in flight; its body is held until a 200 and a retry resends the same seq and body;
 * - network errors, timeouts and 5xx retry with Psiphon's backoff (50 ms doubling to 1 s), at most
 *   5 times within 15 s; 410 ends the session; any other 4xx is final;
 * - uploads are ≤ 64 KiB until a response told the server's max body;
 * - polling follows PollSchedule, and not at all while no stream is open and nothing is queued.
 */
import { ProtocolError } from '../errors.ts';
import { DEFAULT_SERVER_MAX_BODY, INITIAL_UPLOAD_LIMIT, newSessionId } from './headers.ts';
import { PollSchedule } from './schedule.ts';

export interface MeekRequest {
  sessionId: string;
  seq: number | null;
  body: Uint8Array;
  acceptMaxBody: number;
  signal: AbortSignal;
}

export interface MeekResponse {
  status: number;
  body: Uint8Array;
  serverMaxBody: number | null;
}

/** Rejects on network errors (and on abort). */
export type MeekRoundTrip = (req: MeekRequest) => Promise<MeekResponse>;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  // Handles are opaque here: a number in browsers, a Timeout object in Node.
  clearTimeout: (h) => clearTimeout(h as never),
  random: () => Math.random(),
};

export const RETRY_INITIAL_MS = 50;
export const RETRY_MAX_DELAY_MS = 1000;
export const RETRY_LIMIT = 5;
export const RETRY_WINDOW_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 20_000;

export interface MeekClientOptions {
  roundTrip: MeekRoundTrip;
  clock?: Clock;
  /** The largest response body this client accepts (advertised in X-Meek-Max-Body). */
  acceptMaxBody?: number;
  /** Send X-Meek-Seq (Passage, Lantern); off only to imitate Tor's meek-client. */
  useSeq?: boolean;
  /** Bytes of unsent upload held before `write` says wait. */
  backlogLimit?: number;
  requestTimeoutMs?: number;
  onData(bytes: Uint8Array): void;
  onDrain?(): void;
  /** The session ended on its own (410, a final status, retries exhausted). Not called after `close()`. */
  onClose(error: ProtocolError): void;
  onRoundTrip?(info: { rttMs: number; up: number; down: number }): void;
}

export class MeekClientSession {
  readonly id = newSessionId();
  readonly stats = { polls: 0, retries: 0, bytesUp: 0, bytesDown: 0, lastRttMs: null as number | null };

  private readonly o: MeekClientOptions;
  private readonly clock: Clock;
  private readonly acceptMaxBody: number;
  private readonly backlogLimit: number;
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
  private abort: AbortController | null = null;
  private wakeIdle: (() => void) | null = null;

  constructor(options: MeekClientOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.acceptMaxBody = options.acceptMaxBody ?? DEFAULT_SERVER_MAX_BODY;
    this.backlogLimit = options.backlogLimit ?? 4 * DEFAULT_SERVER_MAX_BODY;
    this.schedule = new PollSchedule(this.clock.random);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues upload bytes (the session keeps `chunk`); false once the backlog is full: wait for onDrain. */
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
    this.active = active;
    if (active) this.kick();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    this.wakeIdle?.();
    this.backlog = [];
    this.backlogBytes = 0;
  }

  /** The largest upload per request right now. */
  get uploadLimit(): number {
    return this.serverMaxBody === null ? INITIAL_UPLOAD_LIMIT : Math.min(this.acceptMaxBody, this.serverMaxBody);
  }

  private kick(): void {
    if (this.wakeIdle) this.wakeIdle();
    else if (!this.running) void this.loop();
  }

  private wantsPoll(): boolean {
    return !this.closed && (this.backlogBytes > 0 || this.active || this.lastCarried);
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
        const seq = this.o.useSeq === false ? null : ++this.seq;
        const started = this.clock.now();
        const res = await this.exchange(seq, body);
        if (!res) return;
        const rtt = this.clock.now() - started;
        this.stats.polls++;
        this.stats.bytesUp += body.length;
        this.stats.bytesDown += res.body.length;
        this.stats.lastRttMs = rtt;
        this.o.onRoundTrip?.({ rttMs: rtt, up: body.length, down: res.body.length });
        if (res.body.length > 0) this.o.onData(res.body);
        if (this.closed) return;
        this.lastCarried = body.length > 0 || res.body.length > 0;
        const delay = this.schedule.afterRoundTrip(this.lastCarried);
        if (delay > 0 && this.backlogBytes === 0 && this.wantsPoll()) await this.idle(delay);
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

  /** One round trip with retries; null when the session ended meanwhile. */
  private async exchange(seq: number | null, body: Uint8Array): Promise<MeekResponse | null> {
    let delay = RETRY_INITIAL_MS;
    let retries = 0;
    let firstFailure: number | null = null;
    for (;;) {
      const abort = new AbortController();
      this.abort = abort;
      const timer = this.clock.setTimeout(() => abort.abort(), this.o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
      let res: MeekResponse | null = null;
      let problem: string;
      try {
        res = await this.o.roundTrip({ sessionId: this.id, seq, body, acceptMaxBody: this.acceptMaxBody, signal: abort.signal });
      } catch (e) {
        problem = abort.signal.aborted ? 'request timed out' : `network error: ${(e as Error)?.message ?? e}`;
      } finally {
        this.clock.clearTimeout(timer);
        this.abort = null;
      }
      if (this.closed) return null;
      if (res) {
        if (res.status === 200) {
          if (res.serverMaxBody !== null && res.serverMaxBody >= 1024) this.serverMaxBody = res.serverMaxBody;
          return res;
        }
        if (res.status === 410) return this.fail(new ProtocolError('MEEK_GONE', 'the edge ended the session (410)'));
        // 5xx is the CDN's or the edge's trouble (502/503 on a first request among them): retry.
        if (res.status < 500) return this.fail(new ProtocolError('MEEK_HTTP', `the edge answered ${res.status}`));
        problem = `the edge answered ${res.status}`;
      }
      const now = this.clock.now();
      firstFailure ??= now;
      if (retries >= RETRY_LIMIT || now - firstFailure + delay > RETRY_WINDOW_MS) {
        return this.fail(new ProtocolError('MEEK_RETRIES', `gave up after ${retries} retries: ${problem!}`));
      }
      retries++;
      this.stats.retries++;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, delay));
      if (this.closed) return null;
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
  }

  /** Waits `ms`, or less if a write or activity wakes the loop. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(done, ms);
      const self = this;
      function done() {
        self.clock.clearTimeout(timer);
        self.wakeIdle = null;
        resolve();
      }
      this.wakeIdle = done;
    });
  }

  private fail(error: ProtocolError): null {
    if (!this.closed) {
      this.closed = true;
      this.backlog = [];
      this.backlogBytes = 0;
      this.o.onClose(error);
    }
    return null;
  }
}
