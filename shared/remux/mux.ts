/**
 * The ReMux connection (PROTOCOL.md §2): many streams over one ordered byte stream, each with
 * credit-based flow control. Sans-I/O: bytes come in through `receive`, go out through the
 * sink, and the transport that owns both (a meek session, a WebSocket, a socket) stays thin.
 *
 * Stream-id lifetime is the subtle part. An id is free once this side has sent and received a
 * FIN or RESET for it, with one refinement that keeps a crossing RESET from killing a reused
 * id: after sending RESET without having sent FIN first, only the peer's RESET (its answer or
 * its own crossing one) ends the wait — the peer is then certain to send one, because it cannot
 * have freed the id without our FIN.
 *
 * One race remains that no per-stream rule closes: the acceptor may send FIN, then RESET before
 * our FIN reached it; we free the id at its FIN, and its RESET arrives after. So the opener
 * quarantines ids freed by a FIN from the peer until a PING sent after the freeing is answered —
 * the byte stream is ordered, so by then any such late RESET has arrived (and was ignored).
 */
import { concat } from '../bytes.ts';
import { RemuxError, UsageError, isProtocolError, type PassageError } from '../errors.ts';
import { decodeDestination, encodeDestination, type Destination } from '../eagersocks.ts';
import { FrameDecoder, type FrameSink } from './decoder.ts';
import {
  ControlType,
  GoawayCode,
  HEADER_LENGTH,
  INITIAL_WINDOW,
  MAX_PAYLOAD,
  MAX_STREAM_ID,
  MAX_WINDOW,
  ResetCode,
  decodeControl,
  encodeControl,
  encodeCoverReply,
  encodePadding,
  encodeHeader,
} from './frame.ts';
import { MuxStream, type StreamHost } from './stream.ts';
import type { PaddingPolicy } from './padding.ts';

export interface MuxSink {
  /**
   * The next bytes of the outgoing ReMux byte stream, in order. The views are the mux's to
   * give away: the sink may keep them. Return false to stop data and control frames until
   * `resume()` (a GOAWAY that ends the connection still goes out).
   */
  write(chunks: Uint8Array[]): boolean;
  /**
   * Bytes it can take now; a flush cuts data frames up to it (one frame past it at most). A sink
   * with none must have said so by returning false: the mux then waits for `resume()`.
   */
  room?(): number;
}

/**
 * Receive-window auto-tuning (as QUIC's and HTTP/2's implementations do): a stream whose reader
 * used up its window within two round trips of the last grant gets its window doubled, up to
 * `maxWindow`, so one stream can fill a long path (256 KiB per RTT is 4.7 MB/s at 55 ms). Only
 * for a receiver whose memory is not bound by the fixed-window formulas (the extension).
 */
export interface AutotunePolicy {
  maxWindow: number;
  /**
   * Credit beyond INITIAL_WINDOW that this side's streams may hold together: what the receiver
   * commits past one window per stream, so readers that grew their windows and then stalled
   * cannot make it hold more. Growth stops while it is spent.
   */
  connectionExtra: number;
  /** The path's round trip now, ms; null: not known yet (no growth). */
  rttMs(): number | null;
}

export interface MuxOptions {
  /** Grow fast streams' receive windows (AutotunePolicy); fixed at the initial window when absent. */
  autotune?: AutotunePolicy;
  /** Pad the first frames of every stream (padding.ts); none when absent. */
  padding?: PaddingPolicy;
  /** Only the opener opens streams: the extension toward the edge, the bridge toward the extension. */
  role: 'opener' | 'acceptor';
  sink: MuxSink;
  /** Acceptor: a stream the peer opened. Attach handlers at once, or data waits in the stream. */
  onStream?(stream: MuxStream): void;
  /** The connection is over: after a protocol error (then GOAWAY 0x04 was sent), or `destroy`. */
  onClose?(error?: PassageError): void;
  onGoaway?(code: number): void;
  /** The number of open streams changed. */
  onStreamCount?(count: number): void;
  /**
   * The number of streams that may still receive (the peer has not finished them) changed. A meek
   * session polls only while this is above zero: a stream the far side has finished can bring
   * nothing more, so a browser keeping such a connection half-open costs no polling.
   */
  onReceivingCount?(count: number): void;
  /** Streams open at once; above it the acceptor RESETs 0x06 and the opener refuses to open. */
  maxStreams?: number;
  /** Largest payload per data frame (≤ 65535). */
  maxFramePayload?: number;
  /** Bytes a stream may queue for sending before `write` returns false. */
  sendBufferLimit?: number;
  /**
   * Bytes all streams together may queue for sending; a write past it returns false and the
   * writer waits for `drain` (one writer's chunk past it at most).
   */
  sendBudget?: number;
  /**
   * Receive credit the connection may commit: every open stream holds one INITIAL_WINDOW the peer
   * may fill. The acceptor RESETs 0x06 a stream that would commit more.
   */
  receiveBudget?: number;
  /**
   * Bytes of control frames that may wait unsent (default 16 KiB: 2,048 RESETs, far above the stream limit's worth): while the sink is paused, or
   * produced by one input. A peer that forces more (RESETs, PONGs, refused opens it never
   * answers) gets GOAWAY 0x06: the connection ends. No honest peer comes near it.
   */
  controlBudget?: number;
  /** Asked for every stream the peer opens: false RESETs it 0x06 (a process-wide memory budget). */
  admitStream?(): boolean;
  /**
   * Asked with every write and flush: true holds writers as a spent send budget does, and holds
   * back the credit (WINDOW) this side would return, until `relieve()` — near a process-wide
   * memory budget nothing more is taken in either direction.
   */
  underPressure?(): boolean;
  /** Where id allocation starts, and the highest id it uses before wrapping (tests shrink the space to force reuse). */
  firstStreamId?: number;
  lastStreamId?: number;
  now?(): number;
}

/** Bytes of data frames handed to the sink per flush before yielding to other work. */
const FLUSH_BUDGET = 1024 * 1024;
/** Credit is returned in batches once a quarter window was consumed (fewer WINDOW frames). */
const GRANT_THRESHOLD = INITIAL_WINDOW / 4;
/** A peer flooding PINGs while our sink is stalled gets no more than this many PONGs queued. */
const MAX_PENDING_PONGS = 64;
export const DEFAULT_CONTROL_BUDGET = 16 * 1024;

export class Mux implements StreamHost {
  private readonly role: 'opener' | 'acceptor';
  private readonly sink: MuxSink;
  private readonly options: MuxOptions;
  private readonly maxStreams: number;
  private readonly maxFramePayload: number;
  private readonly sendBufferLimit: number;
  private readonly sendBudget: number;
  private readonly receiveBudget: number;
  private readonly controlBudget: number;
  private readonly now: () => number;
  /** Bytes queued by all streams and not yet cut into frames. */
  private sendQueuedBytes = 0;
  /** Bytes of control frames not yet handed to the sink. */
  private controlBytes = 0;
  /** Streams the peer opened that were refused and whose RESET it has not answered. */
  private refusedWaiting = 0;
  /** Receive credit past INITIAL_WINDOW that open streams hold (AutotunePolicy.connectionExtra bounds it). */
  private extraCredit = 0;
  /** Writers held by the shared budget (or pressure), told to go on once it frees up. */
  private readonly budgetWaiters = new Set<MuxStream>();

  private readonly decoder = new FrameDecoder();
  /** Every id not yet free on this side, including streams only waiting for the peer's close. */
  private readonly streams = new Map<number, MuxStream>();
  private readonly ready = new Set<MuxStream>();
  private readonly grants = new Set<MuxStream>();
  private control: Uint8Array[] = [];
  private pendingPongs = 0;
  private readonly pings = new Map<bigint, { start: number; resolve(rtt: number): void; reject(e: Error): void }>();
  private nextPing = 1n;
  /** Opener: ids freed by the peer's FIN, not reusable until `quarantinePing` is answered. */
  private readonly quarantine = new Set<number>();
  private readonly quarantineNext: number[] = [];
  private quarantinePing: bigint | null = null;
  private quarantineBatch: number[] = [];

  private nextId = 1;
  private readonly lastId: number;
  private userStreams = 0;
  private flushScheduled = false;
  private paused = false;
  private closed = false;
  private goawaySent = false;
  /** Our GOAWAY's PING came back: the peer had read the GOAWAY, so an open arriving now did not cross it. */
  private goawaySettled = false;
  private goawayReceived = false;
  /** A frame rejected at its first piece: its later pieces are skipped. */
  private discarding = -1;
  /** An opening frame whose pieces are being gathered so the EagerSocks header is contiguous. */
  private opening: { id: number; buf: Uint8Array; fill: number } | null = null;

  bytesIn = 0;
  bytesOut = 0;
  /** Bytes of PADDING frames sent (part of bytesOut) and received (part of bytesIn). */
  paddingOut = 0;
  paddingIn = 0;

  constructor(options: MuxOptions) {
    this.options = options;
    this.role = options.role;
    this.sink = options.sink;
    this.maxStreams = Math.min(options.maxStreams ?? 256, MAX_STREAM_ID);
    this.maxFramePayload = Math.max(1, Math.min(options.maxFramePayload ?? MAX_PAYLOAD, MAX_PAYLOAD));
    this.sendBufferLimit = options.sendBufferLimit ?? INITIAL_WINDOW;
    this.sendBudget = options.sendBudget ?? Infinity;
    this.receiveBudget = options.receiveBudget ?? Infinity;
    this.controlBudget = options.controlBudget ?? DEFAULT_CONTROL_BUDGET;
    this.now = options.now ?? Date.now;
    this.lastId = Math.min(Math.max(options.lastStreamId ?? MAX_STREAM_ID, 1), MAX_STREAM_ID);
    this.nextId = Math.min(Math.max(options.firstStreamId ?? 1, 1), this.lastId);
  }

  /** Streams the user can still see (not reset, not fully closed). */
  get streamCount(): number {
    return this.userStreams;
  }

  /** What this connection holds now: queued send bytes, waiting control frames, and the windows of its open streams. */
  get memoryUsed(): number {
    return this.sendQueuedBytes + this.controlBytes + this.userStreams * INITIAL_WINDOW + this.extraCredit;
  }

  /** Ids not yet free on this side (open, waiting for the peer's close, or in quarantine). */
  get idsInUse(): number[] {
    return [...this.streams.keys(), ...this.quarantine];
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether the opener may open another stream now. */
  get canOpen(): boolean {
    return (
      !this.closed &&
      !this.goawayReceived &&
      !this.goawaySent &&
      this.userStreams < this.maxStreams &&
      this.streams.size + this.quarantine.size < this.lastId
    );
  }

  // ---------------------------------------------------------------- opening

  /** Opener: a new stream to `destination`; bytes written before the next tick ride in its first frame. */
  open(destination: Destination): MuxStream {
    if (this.role !== 'opener') throw new UsageError('only the opener opens streams');
    if (this.closed) throw new RemuxError('MUX_CLOSED', 'connection closed');
    if (this.goawayReceived || this.goawaySent) throw new RemuxError('GOAWAY', 'connection is going away');
    if (this.userStreams >= this.maxStreams || this.streams.size + this.quarantine.size >= this.lastId) {
      throw new RemuxError('STREAM_LIMIT', `stream limit ${this.maxStreams} reached`);
    }
    const header = encodeDestination(destination);
    let id = this.nextId;
    while (this.streams.has(id) || this.quarantine.has(id)) id = id === this.lastId ? 1 : id + 1;
    this.nextId = id === this.lastId ? 1 : id + 1;
    const stream = new MuxStream(this, id, destination, this.sendBufferLimit);
    stream.pendingHeader = header;
    this.streams.set(id, stream);
    this.count(stream);
    this.markReady(stream);
    return stream;
  }

  // ---------------------------------------------------------------- input

  /** Feeds bytes of the incoming ReMux byte stream. The mux keeps views into `chunk`: don't reuse it. */
  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    this.bytesIn += chunk.length;
    try {
      this.decoder.push(chunk, this.frameSink);
    } catch (e) {
      if (isProtocolError(e)) this.fail(e);
      else throw e;
    }
  }

  private readonly frameSink: FrameSink = {
    data: (id, length, offset, piece) => {
      if (this.closed) return;
      if (offset > 0) {
        if (this.discarding === id) return;
        if (this.opening && this.opening.id === id) return this.gatherOpening(piece);
      } else this.discarding = -1;
      const stream = this.streams.get(id);
      if (stream?.pendingHeader) return; // an id the peer cannot know yet: stale
      if (!stream) {
        if (offset > 0) return; // the rest of a frame whose start was dropped
        if (this.role === 'opener' || length === 0) return; // only the opener opens; FIN for an unknown id is stale
        this.opening = { id, buf: new Uint8Array(length), fill: 0 };
        return this.gatherOpening(piece);
      }
      this.streamData(stream, length, offset, piece);
    },
    control: (payload) => {
      if (!this.closed) this.handleControl(payload);
    },
    stopped: () => this.closed,
  };

  private gatherOpening(piece: Uint8Array): void {
    const o = this.opening!;
    o.buf.set(piece, o.fill);
    o.fill += piece.length;
    if (o.fill < o.buf.length) return;
    this.opening = null;
    this.acceptStream(o.id, o.buf);
  }

  private acceptStream(id: number, payload: Uint8Array): void {
    let parsed: ReturnType<typeof decodeDestination>;
    try {
      parsed = decodeDestination(payload);
    } catch {
      parsed = null;
    }
    const placeholder: Destination = { type: 'domain', host: 'invalid', port: 1 };
    if (!parsed) return this.refuse(id, placeholder, ResetCode.PROTOCOL);
    if (this.goawaySettled) return this.refuse(id, parsed.destination, ResetCode.CANCELLED);
    if (this.userStreams >= this.maxStreams) return this.refuse(id, parsed.destination, ResetCode.RESOURCES);
    if ((this.userStreams + 1) * INITIAL_WINDOW > this.receiveBudget) return this.refuse(id, parsed.destination, ResetCode.RESOURCES);
    if (this.options.admitStream && !this.options.admitStream()) return this.refuse(id, parsed.destination, ResetCode.RESOURCES);
    const stream = new MuxStream(this, id, parsed.destination, this.sendBufferLimit);
    this.streams.set(id, stream);
    this.count(stream);
    this.options.onStream?.(stream);
    const rest = payload.subarray(parsed.length);
    if (rest.length > 0 && stream.local !== 'reset') {
      if (rest.length > stream.recvWindow) return this.resetStream(stream, ResetCode.PROTOCOL);
      stream.recvWindow -= rest.length;
      stream.deliver(rest);
    }
  }

  /** A stream that is never shown to the user: RESET at once, the id held until the opener answers. */
  private refuse(id: number, destination: Destination, code: number): void {
    // A peer that opens and never answers our RESETs would fill the id space with placeholders.
    if (this.refusedWaiting >= this.maxStreams) return this.fail(new RemuxError('CONTROL_FLOOD', `over ${this.maxStreams} refused streams unanswered`), GoawayCode.RESOURCES);
    const stream = new MuxStream(this, id, destination, 0);
    stream.local = 'reset';
    stream.placeholder = true;
    this.refusedWaiting++;
    this.streams.set(id, stream);
    this.queueControl(encodeControl({ type: ControlType.RESET, stream: id, code }));
  }

  private streamData(stream: MuxStream, length: number, offset: number, piece: Uint8Array): void {
    if (stream.local === 'reset') {
      // Discarding until the peer's close (see the header comment for which close counts).
      if (length === 0 && stream.resetAfterFin) this.release(stream, true);
      return;
    }
    if (stream.remote !== 'open') {
      this.discarding = stream.id;
      return this.resetStream(stream, ResetCode.PROTOCOL); // data (or a second FIN) after FIN
    }
    if (length === 0) {
      stream.remote = 'fin';
      stream.pendingGrant = 0;
      this.grants.delete(stream);
      if (stream.local === 'fin') this.release(stream, true);
      else this.recount();
      stream.deliverEnd();
      return;
    }
    if (offset === 0) {
      if (length > stream.recvWindow) {
        this.discarding = stream.id;
        return this.resetStream(stream, ResetCode.PROTOCOL);
      }
      stream.recvWindow -= length;
    }
    stream.deliver(piece);
  }

  private handleControl(payload: Uint8Array): void {
    const msg = decodeControl(payload);
    if (msg.type === 'unknown' && msg.code === ControlType.PADDING) this.paddingIn += HEADER_LENGTH + payload.length;
    switch (msg.type) {
      case ControlType.COVER: {
        // Answered once per stream, at most MAX_COVER_REPLY: a peer cannot make this side send
        // more filler than it has opened streams.
        const stream = this.streams.get(msg.stream);
        if (this.role !== 'acceptor' || !stream || stream.coverAnswered || stream.local === 'reset') return;
        stream.coverAnswered = true;
        const reply = encodeCoverReply(msg.stream, msg.size);
        this.paddingOut += reply.length;
        return this.queueControl(reply);
      }
      case ControlType.COVER_REPLY: {
        this.paddingIn += HEADER_LENGTH + payload.length;
        const stream = this.streams.get(msg.stream);
        if (stream) this.endCover(stream);
        return;
      }
      case ControlType.WINDOW: {
        const stream = this.streams.get(msg.stream);
        if (!stream || stream.local === 'reset') return;
        if (stream.sendWindow + msg.delta > MAX_WINDOW) return this.resetStream(stream, ResetCode.PROTOCOL);
        stream.sendWindow += msg.delta;
        if (stream.queued > 0 || stream.finQueued) this.markReady(stream);
        return;
      }
      case ControlType.RESET: {
        const stream = this.streams.get(msg.stream);
        if (!stream || stream.pendingHeader) return; // not open, or not yet known to the peer
        if (stream.local === 'reset') return this.release(stream); // the answer, or a crossing RESET
        // Answer once, then the id is free here: both sides have sent and received a RESET.
        this.queueControl(encodeControl({ type: ControlType.RESET, stream: stream.id, code: msg.code }));
        stream.local = 'reset';
        stream.remote = 'reset';
        this.dropSendState(stream);
        this.uncount(stream);
        this.release(stream);
        stream.deliverReset(msg.code);
        return;
      }
      case ControlType.PING:
        if (this.pendingPongs >= MAX_PENDING_PONGS) return;
        this.pendingPongs++;
        this.queueControl(encodeControl({ type: ControlType.PONG, nonce: msg.nonce }));
        return;
      case ControlType.PONG: {
        if (msg.nonce === this.quarantinePing) return this.endQuarantine();
        const ping = this.pings.get(msg.nonce);
        if (!ping) return;
        this.pings.delete(msg.nonce);
        ping.resolve(this.now() - ping.start);
        return;
      }
      case ControlType.GOAWAY:
        this.goawayReceived = true;
        this.options.onGoaway?.(msg.code);
        return;
      default:
        return; // unknown control types are ignored (§2)
    }
  }

  // ---------------------------------------------------------------- stream host

  streamWritable(stream: MuxStream, bytes: number): void {
    this.sendQueuedBytes += bytes;
    this.markReady(stream);
  }

  sendBudgetSpent(stream: MuxStream): boolean {
    const spent = this.sendQueuedBytes >= this.sendBudget || this.options.underPressure?.() === true;
    if (spent) this.budgetWaiters.add(stream);
    return spent;
  }

  /** Writers held by the budget or by pressure get their `drain` if there is room now. */
  relieve(): void {
    if (this.budgetWaiters.size === 0 && this.grants.size === 0) return;
    if (this.options.underPressure?.() === true) return;
    if (this.grants.size > 0) this.scheduleFlush(); // credit held back under pressure goes out now
    if (this.sendQueuedBytes >= this.sendBudget) return;
    const waiting = [...this.budgetWaiters];
    this.budgetWaiters.clear();
    for (const stream of waiting) stream.afterSend();
  }

  streamReset(stream: MuxStream, code: number): void {
    this.resetStream(stream, code, false);
  }

  streamConsumed(stream: MuxStream): void {
    if (stream.pendingGrant >= Math.max(GRANT_THRESHOLD, stream.windowSize / 4)) {
      this.grants.add(stream);
      this.scheduleFlush();
    }
  }

  /** We abort a stream: RESET to the peer, the user told (unless it asked for it). */
  private resetStream(stream: MuxStream, code: number, notifyUser = true): void {
    if (stream.local === 'reset' || this.streams.get(stream.id) !== stream) return;
    const opened = stream.pendingHeader === null; // the peer knows this id
    stream.resetAfterFin = stream.local === 'fin';
    stream.local = 'reset';
    this.dropSendState(stream);
    this.uncount(stream);
    if (!opened) {
      this.forget(stream);
    } else {
      this.queueControl(encodeControl({ type: ControlType.RESET, stream: stream.id, code }));
      if (stream.remote === 'reset') this.release(stream);
    }
    if (notifyUser) stream.deliverReset(code);
    else stream.forget();
  }

  private dropSendState(stream: MuxStream): void {
    this.endCover(stream);
    this.sendQueuedBytes -= stream.queued;
    this.budgetWaiters.delete(stream);
    stream.clearSend();
    stream.pendingHeader = null;
    this.ready.delete(stream);
    this.grants.delete(stream);
  }

  /** The id is free on this side (for the opener, after quarantine when the peer's FIN freed it). */
  private release(stream: MuxStream, byPeerFin = false): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.forget(stream);
    if (stream.placeholder) this.refusedWaiting--;
    this.uncount(stream);
    if (byPeerFin && this.role === 'opener') {
      this.quarantine.add(stream.id);
      this.quarantineNext.push(stream.id);
      if (this.quarantinePing === null) this.startQuarantinePing();
    }
  }

  /** Drops the stream from the table, and with it the credit past INITIAL_WINDOW it held. */
  private forget(stream: MuxStream): void {
    this.streams.delete(stream.id);
    this.extraCredit -= stream.windowSize - INITIAL_WINDOW;
  }

  private startQuarantinePing(): void {
    const nonce = this.nextPing++;
    this.quarantinePing = nonce;
    this.quarantineBatch = this.quarantineNext.splice(0);
    this.queueControl(encodeControl({ type: ControlType.PING, nonce }));
  }

  private endQuarantine(): void {
    for (const id of this.quarantineBatch) this.quarantine.delete(id);
    this.quarantineBatch = [];
    this.quarantinePing = null;
    if (this.quarantineNext.length > 0) this.startQuarantinePing();
  }

  private count(stream: MuxStream): void {
    stream.counted = true;
    this.userStreams++;
    this.options.onStreamCount?.(this.userStreams);
    this.recount();
  }

  private uncount(stream: MuxStream): void {
    if (!stream.counted) return;
    stream.counted = false;
    this.userStreams--;
    this.options.onStreamCount?.(this.userStreams);
    this.recount();
  }

  private receiving = 0;

  /** Reports a change in the number of streams still able to receive. */
  private recount(): void {
    if (!this.options.onReceivingCount) return;
    let n = 0;
    for (const s of this.streams.values()) if (s.counted && s.remote === 'open' && s.local !== 'reset') n++;
    if (n === this.receiving) return;
    this.receiving = n;
    this.options.onReceivingCount(n);
  }

  // ---------------------------------------------------------------- output

  private markReady(stream: MuxStream): void {
    this.ready.add(stream);
    this.scheduleFlush();
  }

  private queueControl(frame: Uint8Array): void {
    this.control.push(frame);
    this.controlBytes += frame.length;
    if (this.controlBytes > this.controlBudget) {
      return this.fail(new RemuxError('CONTROL_FLOOD', `over ${this.controlBudget} bytes of control frames waiting`), GoawayCode.RESOURCES);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** The sink can take data again after returning false. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.scheduleFlush();
  }

  private flush(): void {
    if (this.closed) return;
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    // Credit goes out even while the sink is paused (the peer may need it to make progress), but not under pressure.
    if (this.options.underPressure?.() !== true) {
      for (const stream of this.grants) {
        if (stream.pendingGrant === 0 || stream.local === 'reset' || stream.remote !== 'open') continue;
        const delta = stream.pendingGrant + this.growth(stream);
        chunks.push(encodeControl({ type: ControlType.WINDOW, stream: stream.id, delta }));
        stream.recvWindow += delta;
        stream.pendingGrant = 0;
      }
      this.grants.clear();
    }
    if (this.control.length > 0 && !this.paused) {
      // One buffer for all of them: a sink that keeps chunks pays per chunk, and these are tiny.
      chunks.push(this.control.length === 1 ? this.control[0]! : concat(this.control));
      this.control = [];
      this.controlBytes = 0;
      this.pendingPongs = 0;
    }
    const touched: MuxStream[] = [];
    const budget = Math.min(FLUSH_BUDGET, this.sink.room?.() ?? FLUSH_BUDGET);
    // No room is a pause like a false from write: the sink calls resume() once it has room.
    if (budget <= 0 && this.ready.size > 0) this.paused = true;
    while (!this.paused && bytes < budget && this.ready.size > 0) {
      let progressed = false;
      for (const stream of this.ready) {
        const sent = this.cutFrame(stream, chunks);
        if (sent < 0) {
          this.ready.delete(stream);
          continue;
        }
        progressed = true;
        bytes += sent + HEADER_LENGTH;
        touched.push(stream);
        if (bytes >= budget) break;
      }
      if (!progressed) break;
    }
    if (chunks.length > 0) {
      for (const c of chunks) this.bytesOut += c.length;
      if (!this.sink.write(chunks)) this.paused = true;
    }
    for (const stream of touched) stream.afterSend();
    this.relieve();
    // More to send: go on when the sink has room (a sink with none says so by pausing us).
    if (!this.paused && this.ready.size > 0 && bytes > 0) this.scheduleFlush();
  }

  /**
   * Appends the stream's next frame to `chunks`. Returns the payload bytes sent, or -1 when the
   * stream has nothing it may send now (no data, or no credit).
   */
  private cutFrame(stream: MuxStream, chunks: Uint8Array[]): number {
    if (stream.local !== 'open') return -1;
    const header = stream.pendingHeader;
    if (header) {
      // The opening frame: EagerSocks header (not counted against the window) plus first bytes.
      let room = Math.min(this.maxFramePayload - header.length, stream.sendWindow, stream.queued);
      const cover = room > 0 && this.holdForCover(stream);
      if (cover) room = 0;
      const first = new Uint8Array(HEADER_LENGTH + header.length + room);
      encodeHeader(stream.id, header.length + room, first, 0);
      first.set(header, HEADER_LENGTH);
      let at = HEADER_LENGTH + header.length;
      for (const piece of this.take(stream, room)) {
        first.set(piece, at);
        at += piece.length;
      }
      stream.pendingHeader = null;
      chunks.push(first);
      stream.sendWindow -= room;
      stream.bytesOut += room;
      this.pad(stream, chunks, first.length);
      if (cover) chunks.push(cover);
      return room;
    }
    if (stream.cover === 'held') return -1;
    const n = Math.min(this.maxFramePayload, stream.sendWindow, stream.queued);
    if (n > 0) {
      const cover = this.holdForCover(stream);
      if (cover) {
        chunks.push(cover);
        return 0;
      }
      chunks.push(encodeHeader(stream.id, n));
      for (const piece of this.take(stream, n)) chunks.push(piece);
      stream.sendWindow -= n;
      stream.bytesOut += n;
      this.pad(stream, chunks, HEADER_LENGTH + n);
      return n;
    }
    if (stream.finQueued && stream.queued === 0) {
      chunks.push(encodeHeader(stream.id, 0));
      stream.finQueued = false;
      stream.local = 'fin';
      this.ready.delete(stream);
      if (stream.remote === 'fin') this.release(stream, true);
      return 0;
    }
    return -1;
  }

  /** Extra credit for a stream whose reader keeps up with the path (AutotunePolicy); 0 when none. */
  private growth(stream: MuxStream): number {
    const policy = this.options.autotune;
    if (!policy) return 0;
    const now = this.now();
    const last = stream.lastGrantAt;
    stream.lastGrantAt = now;
    const rtt = policy.rttMs();
    if (last === 0 || rtt === null || now - last >= 2 * Math.max(rtt, 1) || stream.windowSize >= policy.maxWindow) return 0;
    return this.widen(stream, Math.min(stream.windowSize, policy.maxWindow - stream.windowSize));
  }

  /** Grows the stream's window by up to `want`, within the connection's extra credit; what it grew. */
  private widen(stream: MuxStream, want: number): number {
    const grow = Math.max(0, Math.min(want, this.options.autotune!.connectionExtra - this.extraCredit));
    stream.windowSize += grow;
    this.extraCredit += grow;
    return grow;
  }

  /**
   * Opener, at a stream's first payload bytes: when they are not a TLS record and the policy
   * covers, they are held and the COVER frame to send is returned (padding.ts says why); else null.
   */
  private holdForCover(stream: MuxStream): Uint8Array | null {
    const holdMs = this.options.padding?.coverHoldMs ?? 0;
    if (this.role !== 'opener' || holdMs <= 0 || stream.cover !== 'unknown') return null;
    const [head, next] = stream.sendQueue;
    const second = head!.length > 1 ? head![1] : next?.[0];
    // A TLS handshake record (0x16 0x03 ..): its own handshake gives the round trip.
    if (head![0] === 0x16 && (second === undefined || second === 0x03)) {
      stream.cover = 'clear';
      return null;
    }
    stream.cover = 'held';
    stream.coverTimer = setTimeout(() => this.endCover(stream), holdMs);
    const frame = encodeControl({ type: ControlType.COVER, stream: stream.id, size: this.options.padding!.target() });
    this.paddingOut += frame.length;
    return frame;
  }

  /** The cover round trip is over (answered, timed out, or the stream gone): its bytes may go. */
  private endCover(stream: MuxStream): void {
    if (stream.cover !== 'held') return;
    stream.cover = 'clear';
    if (stream.coverTimer) clearTimeout(stream.coverTimer);
    stream.coverTimer = null;
    if (stream.local === 'open' && !this.closed && (stream.queued > 0 || stream.finQueued)) this.markReady(stream);
  }

  /** Tops one of a stream's first frames up to the policy's size with a PADDING frame. */
  private pad(stream: MuxStream, chunks: Uint8Array[], frameBytes: number): void {
    const policy = this.options.padding;
    if (!policy || stream.paddedFrames >= policy.frames) return;
    stream.paddedFrames++;
    const missing = policy.target() - frameBytes;
    if (missing > HEADER_LENGTH) {
      chunks.push(encodePadding(missing));
      this.paddingOut += missing;
    }
  }

  /** Removes `n` bytes from the head of the stream's queue, as views. */
  private take(stream: MuxStream, n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const q = stream.sendQueue;
    let left = n;
    let i = 0;
    while (left > 0) {
      const head = q[i]!;
      if (head.length <= left) {
        out.push(head);
        left -= head.length;
        i++;
      } else {
        out.push(head.subarray(0, left));
        q[i] = head.subarray(left);
        left = 0;
      }
    }
    if (i > 0) q.splice(0, i);
    stream.queued -= n;
    this.sendQueuedBytes -= n;
    return out;
  }

  // ---------------------------------------------------------------- connection control

  /** Measures a round trip on the control stream. */
  ping(): Promise<number> {
    if (this.closed) return Promise.reject(new RemuxError('MUX_CLOSED', 'connection closed'));
    const nonce = this.nextPing++;
    return new Promise((resolve, reject) => {
      this.pings.set(nonce, { start: this.now(), resolve, reject });
      this.queueControl(encodeControl({ type: ControlType.PING, nonce }));
    });
  }

  /**
   * Tells the peer to open no more streams; the open ones carry on. Opens that crossed the GOAWAY
   * are still served (as HTTP/2's graceful GOAWAY does): a PING follows it, and only opens that
   * arrive after its answer — sent by a peer that had read the GOAWAY — are refused.
   */
  goaway(code: number = GoawayCode.NORMAL): void {
    if (this.closed || this.goawaySent) return;
    this.goawaySent = true;
    this.queueControl(encodeControl({ type: ControlType.GOAWAY, code }));
    const settle = () => (this.goawaySettled = true);
    this.ping().then(settle, settle);
  }

  /** Our GOAWAY has been read by the peer (its PING answered): from now on new opens are refused. */
  get goawayAcknowledged(): boolean {
    return this.goawaySettled;
  }

  /**
   * Ends the connection at once: every stream still open is reset toward its user with `code`
   * (0x05 cancelled by default). The transport calls this when it goes away.
   */
  destroy(error?: PassageError, code: number = ResetCode.CANCELLED): void {
    if (this.closed) return;
    this.closed = true;
    this.opening = null;
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.extraCredit = 0;
    this.ready.clear();
    this.grants.clear();
    this.control = [];
    this.controlBytes = 0;
    this.sendQueuedBytes = 0;
    this.budgetWaiters.clear();
    if (this.userStreams !== 0) {
      this.userStreams = 0;
      this.options.onStreamCount?.(0);
    }
    if (this.receiving !== 0) {
      this.receiving = 0;
      this.options.onReceivingCount?.(0);
    }
    for (const stream of streams) {
      const visible = stream.local !== 'reset' && !(stream.local === 'fin' && stream.remote === 'fin');
      stream.local = 'reset';
      stream.remote = 'reset';
      stream.clearSend();
      if (visible) stream.deliverReset(code);
    }
    for (const ping of this.pings.values()) ping.reject(new RemuxError('MUX_CLOSED', 'connection closed'));
    this.pings.clear();
    this.options.onClose?.(error);
  }

  /** A protocol error for the whole connection: GOAWAY 0x04 goes out, then the connection ends. */
  private fail(error: PassageError, goawayCode: number = GoawayCode.PROTOCOL): void {
    if (this.closed) return;
    const goaway = encodeControl({ type: ControlType.GOAWAY, code: goawayCode });
    this.bytesOut += goaway.length;
    this.sink.write([goaway]);
    this.destroy(error, goawayCode === GoawayCode.RESOURCES ? ResetCode.RESOURCES : ResetCode.PROTOCOL);
  }
}
