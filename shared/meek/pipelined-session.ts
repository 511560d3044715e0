/**
 * One meek-v2 session seen from the client (PROTOCOL.md §1.1). Uploads and downloads are apart:
 * - uploads go as sequenced POSTs, several in flight (up to the window the edge advertises), each
 *   the moment bytes are written — never behind a held poll;
 * - downstream bytes come on one down request at a time: a response that streams them where the
 *   path allows, else a poll the edge holds until bytes arrive (its hold grows as PollSchedule's
 *   delay does, so an idle session costs what a v1 one does);
 * - downstream bytes are addressed by offset: every request says how far the client got (ack),
 *   so a response a proxy cut is sent again from there, and duplicates are dropped here.
 * A stream whose lead (the padding the edge writes first) has not arrived within
 * STREAM_PROBE_MS of the request means a path that buffers responses: the session falls back to
 * polling by itself. The first request is also a valid v1 poll; an edge that does not confirm v2
 * in its answer ends the session with NO_V2, and the caller opens v1 sessions instead.
 */
import { systemClock, type Clock } from '../clock.ts';
import { MeekError } from '../errors.ts';
import {
  DEFAULT_SERVER_MAX_BODY,
  HEADER_LEAD,
  HEADER_OFFSET,
  HEADER_RETAIN,
  HEADER_STREAM_MAX,
  HEADER_VERSION,
  HEADER_WINDOW,
  MAX_HOLD_MS,
  MIN_MAX_BODY,
  PIPELINE_WINDOW,
  newSessionId,
  paddingValue,
  type DownKind,
} from './headers.ts';
import { exchange, REQUEST_TIMEOUT_MS, type MeekResponse, type MeekRoundTrip } from './round-trip.ts';
import { INITIAL_POLL_DELAY_MS, PollSchedule, pollWanted } from './schedule.ts';
import { UploadBacklog } from './upload-backlog.ts';
import { BodyLimits } from './body-limits.ts';

/** A stream's lead must arrive this soon after the request, or the path buffers responses. */
export const STREAM_PROBE_MS = 3000;
/** The next stream is opened this long before the edge ends the current one. */
export const STREAM_ROTATE_EARLY_MS = 1000;
/** A stream that ends sooner than this having carried nothing is not replaced at once. */
const STREAM_MIN_LIFE_MS = 1000;
/** The edge is acknowledged on its own once this share of what it retains has arrived unacknowledged. */
const ACK_FRACTION = 4;

export type MeekMode = 'stream' | 'poll';

export interface PipelinedOptions {
  roundTrip: MeekRoundTrip;
  clock?: Clock;
  acceptMaxBody?: number;
  /** Bytes of unsent upload held before `write` says wait. */
  backlogLimit?: number;
  requestTimeoutMs?: number;
  /** Try a streaming download first (else poll from the start). */
  streaming?: boolean;
  /** Random X-Meek-Padding on every request. */
  padding?: boolean;
  onData(bytes: Uint8Array): void;
  onDrain?(): void;
  /** The session ended on its own. NO_V2: the edge answered as meek v1. Not called after `close()`. */
  onClose(error: MeekError): void;
  onRoundTrip?(info: { rttMs: number; up: number; down: number }): void;
  /** The download mode changed (a buffering path forced polling). */
  onMode?(mode: MeekMode): void;
}

export class PipelinedMeekSession {
  readonly id = newSessionId();
  readonly stats = { polls: 0, retries: 0, bytesUp: 0, bytesDown: 0, lastRttMs: null as number | null, streams: 0 };

  private readonly o: PipelinedOptions;
  private readonly clock: Clock;
  private readonly limits: BodyLimits;
  private readonly requestTimeoutMs: number;
  private readonly schedule: PollSchedule;
  private readonly closing = new AbortController();
  private modeNow: MeekMode;
  private readonly backlog: UploadBacklog;
  private seq = 0;
  private window = 1;
  private retain: number | null = null;
  private established = false;
  private uploading = 0;
  private received = 0;
  private ackSent = 0;
  private active = false;
  private lastCarried = false;
  /** The next poll's interval (PollSchedule's delay); the edge holds up to MAX_HOLD_MS of it. */
  private nextInterval = INITIAL_POLL_DELAY_MS;
  /** The current down request (poll or stream); null when none is open. */
  private down: object | null = null;
  /** Ends the current pause early (a write: traffic wants a down request now); null when none. */
  private endPause: (() => void) | null = null;
  private closed = false;

  constructor(options: PipelinedOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.limits = new BodyLimits(options.acceptMaxBody);
    this.backlog = new UploadBacklog(Math.max(1, options.backlogLimit ?? 4 * DEFAULT_SERVER_MAX_BODY), () => this.o.onDrain?.());
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.schedule = new PollSchedule(() => this.clock.random());
    this.modeNow = options.streaming === false ? 'poll' : 'stream';
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** How downstream bytes come now. */
  get mode(): MeekMode {
    return this.modeNow;
  }

  /** The largest upload per request right now. */
  get uploadLimit(): number {
    return this.limits.upload;
  }

  /** Queues upload bytes (kept, not copied); false once the backlog is full: wait for onDrain. */
  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    const room = this.backlog.push(chunk);
    if (chunk.length > 0) {
      this.schedule.reset();
      this.nextInterval = INITIAL_POLL_DELAY_MS;
      this.endPause?.();
      // After the caller's synchronous writes (a mux flush is several), so they share a request.
      queueMicrotask(() => this.pump());
    }
    return room;
  }

  setActive(active: boolean): void {
    if (this.closed || active === this.active) return;
    this.active = active;
    if (active) queueMicrotask(() => this.pump());
  }

  close(): void {
    if (this.closed) return;
    this.shutdown();
  }

  private wantsDown(): boolean {
    return pollWanted({ active: this.active, queuedBytes: this.backlog.size + this.uploading, lastCarried: this.lastCarried });
  }

  private pump(): void {
    if (this.closed) return;
    if (!this.established) {
      if (this.down === null && (this.backlog.size > 0 || this.active)) void this.first();
      return;
    }
    while (this.backlog.size > 0 && this.uploading < this.window && !this.closed) void this.upload(++this.seq, this.takeBody());
    if (this.uploading === 0 && this.retain !== null && this.received - this.ackSent >= this.retain / ACK_FRACTION) void this.upload(null, new Uint8Array(0));
    if (this.down === null && this.wantsDown()) {
      if (this.modeNow === 'stream') void this.stream();
      else void this.poll();
    }
  }

  private ctx(closed: AbortSignal = this.closing.signal) {
    return { roundTrip: this.o.roundTrip, clock: this.clock, timeoutMs: this.requestTimeoutMs, closed, onRetry: () => this.stats.retries++ };
  }

  private v2(down: DownKind | null, holdMs: number | null) {
    this.ackSent = Math.max(this.ackSent, this.received);
    return { ack: this.received, down, holdMs, padding: this.o.padding === false ? null : paddingValue(() => this.clock.random()) };
  }

  /** seq 1: an upload and a poll at once — what a v1 edge also answers, so its answer tells the version. */
  private async first(): Promise<void> {
    const token = {};
    this.down = token;
    const body = this.takeBody();
    const done = await exchange(this.ctx(), { sessionId: this.id, seq: ++this.seq, body, acceptMaxBody: this.limits.acceptMaxBody, v2: this.v2('poll', null) });
    if (this.closed) return;
    if (done.kind === 'closed') return;
    if (done.kind === 'failed') return this.fail(done.error);
    if (done.res.header?.(HEADER_VERSION) !== '2') return this.fail(new MeekError('NO_V2', 'the edge answered as meek v1'));
    this.established = true;
    this.learn(done.res);
    this.counted(done.rttMs, body.length, done.res.body.length);
    this.down = null;
    this.deliverAt(done.res, done.res.body);
    this.pump();
  }

  private async upload(seq: number | null, body: Uint8Array): Promise<void> {
    this.uploading++;
    const done = await exchange(this.ctx(), { sessionId: this.id, seq, body, acceptMaxBody: this.limits.acceptMaxBody, v2: this.v2(null, null) });
    this.uploading--;
    if (this.closed || done.kind === 'closed') return;
    if (done.kind === 'failed') return this.fail(done.error);
    this.learn(done.res);
    this.counted(done.rttMs, body.length, 0);
    this.pump();
  }

  private async poll(): Promise<void> {
    const token = {};
    this.down = token;
    // The poll's whole interval: the edge holds at most MAX_HOLD_MS of it, the client waits out the
    // rest after an empty answer — so the schedule's jitter above the cap does not shorten the
    // mean interval below it (an idle session stays at 12 requests a minute, as Tor's does).
    const interval = Math.round(this.nextInterval);
    const hold = Math.min(interval, MAX_HOLD_MS);
    const started = this.clock.now();
    const done = await exchange(this.ctx(), { sessionId: this.id, seq: null, body: new Uint8Array(0), acceptMaxBody: this.limits.acceptMaxBody, v2: this.v2('poll', hold) });
    if (this.closed || done.kind === 'closed') return;
    if (done.kind === 'failed') return this.fail(done.error);
    this.learn(done.res);
    // A poll's time includes its hold: it says nothing of the path's round trip.
    this.counted(null, 0, done.res.body.length);
    if (this.down === token) this.down = null;
    const carried = this.deliverAt(done.res, done.res.body);
    this.lastCarried = carried;
    const next = this.schedule.afterRoundTrip(carried);
    this.nextInterval = carried || next <= 0 ? INITIAL_POLL_DELAY_MS : next;
    // The rest of the interval — also what keeps a path that answers early from a tight loop.
    if (!carried) await this.pause(interval - (this.clock.now() - started));
    if (this.down === null) this.pump();
  }

  /** Waits `ms` (nothing when ≤ 0), holding the down slot so no other down request starts; ends early on a write or close. */
  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.closed) return Promise.resolve();
    const token = {};
    this.down = token;
    return new Promise((resolve) => {
      const done = () => {
        this.clock.clearTimeout(timer);
        this.closing.signal.removeEventListener('abort', done);
        if (this.endPause === done) this.endPause = null;
        if (this.down === token) this.down = null;
        resolve();
      };
      this.endPause = done;
      const timer = this.clock.setTimeout(done, ms);
      this.closing.signal.addEventListener('abort', done);
    });
  }

  /** One streaming down request, read to its end; a newer one may take over before it ends. */
  private async stream(): Promise<void> {
    const token = {};
    this.down = token;
    this.stats.streams++;
    const opened = this.clock.now();
    const probe = new AbortController();
    let leadArrived = false;
    const probeTimer = this.clock.setTimeout(() => {
      if (!leadArrived) probe.abort();
    }, STREAM_PROBE_MS);
    const signal = AbortSignal.any([this.closing.signal, probe.signal]);
    let rotateTimer: unknown = null;
    let carried = false;
    try {
      const done = await exchange(this.ctx(signal), { sessionId: this.id, seq: null, body: new Uint8Array(0), acceptMaxBody: this.limits.acceptMaxBody, v2: this.v2('stream', null) });
      if (this.closed) return;
      if (done.kind === 'failed') return this.fail(done.error);
      if (done.kind === 'closed') return; // the probe gave up on it (below)
      this.learn(done.res);
      const res = done.res;
      if (!res.stream) {
        // A transport that cannot stream hands the whole body: it is a poll answer.
        leadArrived = true;
        carried = this.deliverAt(res, res.body.subarray(Math.min(res.body.length, Number(res.header?.(HEADER_LEAD) ?? 0))));
        return;
      }
      let lead = Number(res.header?.(HEADER_LEAD) ?? 0);
      let at = Number(res.header?.(HEADER_OFFSET) ?? NaN);
      const streamMax = Number(res.header?.(HEADER_STREAM_MAX) ?? NaN);
      if (!Number.isSafeInteger(lead) || lead < 0 || !Number.isSafeInteger(at) || at < 0) return this.fail(new MeekError('HTTP', 'a stream without a valid X-Meek-Offset or X-Meek-Lead'));
      if (Number.isFinite(streamMax) && streamMax > STREAM_ROTATE_EARLY_MS) {
        rotateTimer = this.clock.setTimeout(() => {
          // Let a fresh stream take over; this one is read until the edge ends it.
          if (this.down === token && !this.closed) {
            this.down = null;
            this.pump();
          }
        }, streamMax - STREAM_ROTATE_EARLY_MS);
      }
      if (lead === 0) leadArrived = true;
      const iterator = res.stream[Symbol.asyncIterator]();
      const onAbort = () => void iterator.return?.();
      signal.addEventListener('abort', onAbort);
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done || this.closed) break;
          let chunk = next.value;
          if (lead > 0) {
            const skip = Math.min(lead, chunk.length);
            lead -= skip;
            chunk = chunk.subarray(skip);
            if (lead === 0) leadArrived = true;
          }
          if (chunk.length === 0) continue;
          const before = this.received;
          this.deliverChunk(at, chunk);
          at += chunk.length;
          if (this.closed) return;
          if (this.received > before) {
            carried = true;
            this.pump(); // an acknowledgement may be due
          }
        }
      } catch {
        // Cut by the path or aborted: the next down request resumes from what arrived.
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } finally {
      this.clock.clearTimeout(probeTimer);
      if (rotateTimer !== null) this.clock.clearTimeout(rotateTimer);
      if (!this.closed) {
        if (!leadArrived) this.setMode('poll');
        // As after a poll: a stream that brought nothing ends the follow-up of a session with no stream open.
        this.lastCarried = carried;
        // A stream that ended soon and brought nothing (a path that cuts them): not again at once.
        if (this.down === token) {
          this.down = null;
          if (leadArrived && !carried) await this.pause(STREAM_MIN_LIFE_MS - (this.clock.now() - opened));
        }
        if (this.down === null) this.pump();
      }
    }
  }

  private setMode(mode: MeekMode): void {
    if (this.modeNow === mode) return;
    this.modeNow = mode;
    this.o.onMode?.(mode);
  }

  /** A whole poll body at the response's X-Meek-Offset; whether it brought new bytes. */
  private deliverAt(res: MeekResponse, body: Uint8Array): boolean {
    if (body.length === 0) return false;
    const at = Number(res.header?.(HEADER_OFFSET) ?? NaN);
    if (!Number.isSafeInteger(at) || at < 0) {
      this.fail(new MeekError('HTTP', 'a v2 answer without a valid X-Meek-Offset'));
      return false;
    }
    const before = this.received;
    this.deliverChunk(at, body);
    return this.received > before;
  }

  /** Hands on the part of `chunk` (at offset `at`) not delivered yet. A gap is the edge's bug: the session ends. */
  private deliverChunk(at: number, chunk: Uint8Array): void {
    if (at > this.received) {
      this.fail(new MeekError('HTTP', `downstream gap: got offset ${at}, expected ${this.received}`));
      return;
    }
    const skip = this.received - at;
    if (skip >= chunk.length) return;
    const fresh = skip > 0 ? chunk.subarray(skip) : chunk;
    this.received += fresh.length;
    this.stats.bytesDown += fresh.length;
    this.o.onData(fresh);
  }

  private learn(res: MeekResponse): void {
    this.limits.learn(res.serverMaxBody);
    const window = Number(res.header?.(HEADER_WINDOW));
    if (Number.isSafeInteger(window) && window >= 1) this.window = Math.min(window, PIPELINE_WINDOW * 4);
    const retain = Number(res.header?.(HEADER_RETAIN));
    if (Number.isSafeInteger(retain) && retain >= MIN_MAX_BODY) this.retain = retain;
  }

  private counted(rttMs: number | null, up: number, down: number): void {
    this.stats.polls++;
    this.stats.bytesUp += up;
    if (rttMs === null) return;
    this.stats.lastRttMs = rttMs;
    this.o.onRoundTrip?.({ rttMs, up, down });
  }

  private takeBody(): Uint8Array {
    return this.backlog.take(this.uploadLimit);
  }

  private shutdown(): void {
    this.closed = true;
    this.backlog.clear();
    this.closing.abort();
  }

  private fail(error: MeekError): void {
    if (this.closed) return;
    this.shutdown();
    this.o.onClose(error);
  }
}
