/**
 * One meek-v2 session seen from the client (PROTOCOL.md §1.1). Uploads and downloads are apart:
 * - uploads go as sequenced POSTs, several in flight (up to the window the edge advertises), each
 *   the moment bytes are written — never behind a held poll;
 * - downstream bytes come on one down request at a time: a response that streams them where the
 *   path allows, else a poll the edge holds until bytes arrive (its hold grows as PollSchedule's
 *   delay does, so an idle session costs what a v1 one does). With `lanes` above 1, a stream is
 *   lane 0 of several: once one carries a bulk transfer, the others open beside it and the edge
 *   shares the downstream among them in segments (one HTTP/2 stream carries only its receive
 *   window per round trip);
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
  HEADER_LANE,
  HEADER_LEAD,
  HEADER_OFFSET,
  HEADER_RETAIN,
  HEADER_STREAM_MAX,
  HEADER_VERSION,
  HEADER_WINDOW,
  MAX_HOLD_MS,
  MAX_LANES,
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
import { Reassembly } from './reassembly.ts';
import { SegmentReader } from './segments.ts';

/** A stream's lead must arrive this soon after the request, or the path buffers responses. */
export const STREAM_PROBE_MS = 3000;
/** The next stream is opened this long before the edge ends the current one. */
export const STREAM_ROTATE_EARLY_MS = 1000;
/** A stream that ends sooner than this having carried nothing is not replaced at once. */
const STREAM_MIN_LIFE_MS = 1000;
/** The edge is acknowledged on its own once this share of what it retains has arrived unacknowledged. */
const ACK_FRACTION = 4;
/** A lane that carries this much in its life makes the session a bulk one: the other lanes open (and reopen) beside it. */
export const LANE_BULK_BYTES = 1024 * 1024;

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
  /** Streams that may carry the downstream at once (1 … MAX_LANES; 1: one plain stream, the default). */
  lanes?: number;
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
  /** `lanes`: streams opened as a lane past the first; `rewinds`: lane requests that asked the edge to send again. */
  readonly stats = { polls: 0, retries: 0, bytesUp: 0, bytesDown: 0, lastRttMs: null as number | null, streams: 0, lanes: 0, rewinds: 0 };

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
  private readonly downstream: Reassembly;
  private ackSent = 0;
  /** Lanes asked for; whether the edge serves them (null: not known yet). */
  private readonly lanes: number;
  private lanesServed: boolean | null = null;
  /** The open request of lanes 1 … lanes − 1 (lane 0 is `down`); null: none open. */
  private readonly laneDown: Array<object | null>;
  /** Bytes each lane carried in its current (or, once ended, its last) life. */
  private readonly laneCarried: number[];
  /** A lane was cut: the next lane request asks the edge to send again from the acknowledged offset. */
  private rewind = false;
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
    this.lanes = Math.max(1, Math.min(MAX_LANES, Math.floor(options.lanes ?? 1)));
    this.laneDown = new Array<object | null>(this.lanes).fill(null);
    this.laneCarried = new Array<number>(this.lanes).fill(0);
    this.downstream = new Reassembly((bytes) => {
      this.stats.bytesDown += bytes.length;
      this.o.onData(bytes);
    });
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
    if (this.uploading < this.window && this.retain !== null && this.downstream.received - this.ackSent >= this.retain / ACK_FRACTION) void this.upload(null, new Uint8Array(0));
    if (this.down === null && this.wantsDown()) {
      if (this.modeNow === 'stream') void this.stream(0);
      else void this.poll();
    }
    if (this.modeNow === 'stream' && this.lanesServed === true && this.wantsDown()) {
      for (let lane = 1; lane < this.lanes; lane++) {
        if (this.laneDown[lane] === null && (this.bulk(lane) || this.rewind)) void this.stream(lane);
      }
    }
  }

  /** Whether lane `lane` (≥ 1) is wanted: lane 0 or this lane itself carried a bulk transfer in its current or last life. */
  private bulk(lane: number): boolean {
    return this.laneCarried[0]! >= LANE_BULK_BYTES || this.laneCarried[lane]! >= LANE_BULK_BYTES;
  }

  private ctx(closed: AbortSignal = this.closing.signal) {
    return { roundTrip: this.o.roundTrip, clock: this.clock, timeoutMs: this.requestTimeoutMs, closed, onRetry: () => this.stats.retries++ };
  }

  private v2(down: DownKind | null, holdMs: number | null, lane: number | null = null) {
    const ack = this.downstream.received;
    this.ackSent = Math.max(this.ackSent, ack);
    const rewind = lane !== null && this.rewind;
    if (rewind) {
      this.rewind = false;
      this.stats.rewinds++;
    }
    return { ack, down, holdMs, padding: this.o.padding === false ? null : paddingValue(() => this.clock.random()), lane, rewind };
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

  /** Lane 0's request is the session's down slot (polls and pauses share it); the others have their own. */
  private slot(lane: number): object | null {
    return lane === 0 ? this.down : this.laneDown[lane]!;
  }

  private setSlot(lane: number, token: object | null): void {
    if (lane === 0) this.down = token;
    else this.laneDown[lane] = token;
  }

  /**
   * One streaming down request, read to its end; a newer one may take over before it ends. With
   * lanes asked for it is lane `lane`, and an edge that answers it as a plain stream (one that
   * does not serve lanes) is used as one, lane 0 alone from then on.
   */
  private async stream(lane: number): Promise<void> {
    const token = {};
    this.setSlot(lane, token);
    this.stats.streams++;
    if (lane > 0) this.stats.lanes++;
    this.laneCarried[lane] = 0;
    const opened = this.clock.now();
    const probe = new AbortController();
    let leadArrived = false;
    const probeTimer = this.clock.setTimeout(() => {
      if (!leadArrived) probe.abort();
    }, STREAM_PROBE_MS);
    const signal = AbortSignal.any([this.closing.signal, probe.signal]);
    let rotateTimer: unknown = null;
    let carried = false;
    let reader: SegmentReader | null = null;
    try {
      const asLane = this.lanes > 1 && this.lanesServed !== false;
      const done = await exchange(this.ctx(signal), { sessionId: this.id, seq: null, body: new Uint8Array(0), acceptMaxBody: this.limits.acceptMaxBody, v2: this.v2('stream', null, asLane ? lane : null) });
      if (this.closed) return;
      if (done.kind === 'failed') return this.fail(done.error);
      if (done.kind === 'closed') return; // the probe gave up on it (below)
      this.learn(done.res);
      const res = done.res;
      const served = asLane && res.header?.(HEADER_LANE) === String(lane);
      if (asLane && !served && lane > 0) return this.fail(new MeekError('HTTP', `lane ${lane} was answered as a plain stream`));
      if (asLane && this.lanesServed === null) this.lanesServed = served;
      let lead = Number(res.header?.(HEADER_LEAD) ?? 0);
      let at = served ? 0 : Number(res.header?.(HEADER_OFFSET) ?? NaN);
      const streamMax = Number(res.header?.(HEADER_STREAM_MAX) ?? NaN);
      if (!Number.isSafeInteger(lead) || lead < 0 || !Number.isSafeInteger(at) || at < 0) return this.fail(new MeekError('HTTP', 'a stream without a valid X-Meek-Offset or X-Meek-Lead'));
      const retain = this.retain;
      if (served && retain === null) return this.fail(new MeekError('HTTP', 'a lane without X-Meek-Retain'));
      if (Number.isFinite(streamMax) && streamMax > STREAM_ROTATE_EARLY_MS) {
        rotateTimer = this.clock.setTimeout(() => {
          // Let a fresh stream take over; this one is read until the edge ends it.
          if (this.slot(lane) === token && !this.closed) {
            this.setSlot(lane, null);
            this.pump();
          }
        }, streamMax - STREAM_ROTATE_EARLY_MS);
      }
      // Bytes not had yet are traffic (delivered, or waiting behind a gap); a lane's end marker and resent bytes are not.
      let fresh = false;
      if (served) {
        reader = new SegmentReader({
          data: (offset, bytes) => void (fresh = this.downstream.accept(offset, bytes, retain, this.lanes) || fresh),
          end: () => {},
        });
      }
      // A transport that cannot stream hands the whole body at once: the path did not hold it back.
      if (lead === 0 || !res.stream) leadArrived = true;
      const body = res.body;
      const source: AsyncIterable<Uint8Array> = res.stream ?? (async function* () { yield body; })();
      const iterator = source[Symbol.asyncIterator]();
      const onAbort = () => void iterator.return?.();
      signal.addEventListener('abort', onAbort);
      let broken: MeekError | null = null;
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
          fresh = false;
          try {
            if (reader) reader.push(chunk);
            else {
              fresh = this.downstream.accept(at, chunk);
              at += chunk.length;
            }
          } catch (e) {
            if (!(e instanceof MeekError)) throw e;
            broken = e;
            break;
          }
          this.laneCarried[lane]! += chunk.length;
          if (this.closed) return;
          if (fresh) {
            carried = true;
            this.pump(); // an acknowledgement may be due, or the other lanes
          }
        }
      } catch {
        // Cut by the path or aborted: the next down request resumes from what arrived.
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      if (broken) return this.fail(broken);
    } finally {
      this.clock.clearTimeout(probeTimer);
      if (rotateTimer !== null) this.clock.clearTimeout(rotateTimer);
      if (!this.closed) {
        if (!leadArrived) this.setMode('poll');
        // A lane that ended without its end marker was cut: what the edge gave it is sent again.
        if (reader !== null && !reader.complete) this.rewind = true;
        // As after a poll: a stream that brought nothing ends the follow-up of a session with no stream open.
        if (lane === 0) this.lastCarried = carried;
        if (this.slot(lane) === token) {
          this.setSlot(lane, null);
          // A stream that ended soon and brought nothing (a path that cuts them): not again at once.
          if (lane === 0 && leadArrived && !carried) await this.pause(STREAM_MIN_LIFE_MS - (this.clock.now() - opened));
        }
        if (this.down === null || this.rewind) this.pump();
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
    try {
      return this.downstream.accept(at, body);
    } catch (e) {
      if (!(e instanceof MeekError)) throw e;
      this.fail(e);
      return false;
    }
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
    this.downstream.clear();
    this.closing.abort();
  }

  private fail(error: MeekError): void {
    if (this.closed) return;
    this.shutdown();
    this.o.onClose(error);
  }
}
