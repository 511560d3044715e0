/**
 * One ReMux stream as its user sees it: a writable side bounded by the peer's credit and a
 * readable side whose credit is returned only as the user consumes (PROTOCOL.md §2).
 * The Mux owns the wire; a stream only keeps its own buffers and state.
 */
import { UsageError } from '../errors.ts';
import type { Destination } from '../eagersocks.ts';
import { INITIAL_WINDOW } from './frame.ts';

export interface StreamHandlers {
  /** Payload bytes in order (views: copy them if kept past `consume`). Call `consume` once used. */
  data?(piece: Uint8Array): void;
  /** The peer finished its side (FIN): no more data will arrive. */
  end?(): void;
  /** The stream was aborted by the peer, or by the connection ending, with a RESET code. */
  reset?(code: number): void;
  /** The write buffer fell below its limit after `write` returned false. */
  drain?(): void;
}

/** What a stream needs from its Mux; keeps the two from depending on each other's internals. */
export interface StreamHost {
  /** The stream has something new to send: `bytes` more queued (0 for a FIN). */
  streamWritable(stream: MuxStream, bytes: number): void;
  /** Whether the connection's shared send budget is spent (the stream then waits for `drain`). */
  sendBudgetSpent(stream: MuxStream): boolean;
  streamReset(stream: MuxStream, code: number): void;
  streamConsumed(stream: MuxStream): void;
}

export type LocalState = 'open' | 'fin' | 'reset';
export type RemoteState = 'open' | 'fin' | 'reset';

export class MuxStream {
  readonly id: number;
  readonly destination: Destination;
  /** Set by the Mux: the encoded EagerSocks header still to lead the opening frame. */
  pendingHeader: Uint8Array | null = null;

  // Sending side (the Mux reads these while cutting frames).
  sendQueue: Uint8Array[] = [];
  queued = 0;
  sendWindow = INITIAL_WINDOW;
  finQueued = false;
  local: LocalState = 'open';
  /** After we RESET: whether a FIN from the peer also ends the wait (only if our FIN went first). */
  resetAfterFin = false;

  // Receiving side.
  remote: RemoteState = 'open';
  recvWindow = INITIAL_WINDOW;
  pendingGrant = 0;
  /** The window this side aims to keep open; auto-tuning grows it for a fast reader (mux.ts). */
  windowSize = INITIAL_WINDOW;
  /** When the last WINDOW grant went out (0: none yet). */
  lastGrantAt = 0;
  private unconsumed = 0;
  private inbox: Uint8Array[] | null = null;
  private endPending = false;
  private handlers: StreamHandlers = {};
  private wantDrain = false;

  /** Counted among the connection's open streams (the Mux's bookkeeping). */
  counted = false;
  /** A stream the peer opened that was refused at once: kept only until the peer answers its RESET. */
  placeholder = false;
  bytesIn = 0;
  bytesOut = 0;
  /** Data frames sent so far that the padding policy padded (it pads only a stream's first few). */
  paddedFrames = 0;
  /**
   * Opener: whether the stream's first bytes were looked at for the cover round trip (padding.ts):
   * `unknown` until they are, `held` while they wait for COVER_REPLY, `clear` after.
   */
  cover: 'unknown' | 'held' | 'clear' = 'unknown';
  coverTimer: ReturnType<typeof setTimeout> | null = null;
  /** Acceptor: the peer's one COVER for this stream was answered. */
  coverAnswered = false;

  constructor(
    private readonly host: StreamHost,
    id: number,
    destination: Destination,
    private readonly sendBufferLimit: number,
  ) {
    this.id = id;
    this.destination = destination;
  }

  /**
   * Adds the user's callbacks (merged with earlier ones). Data that arrived before a `data`
   * handler existed waits in the stream (unconsumed, so bounded by the window) and is handed
   * over now, followed by a FIN that came after it.
   */
  attach(handlers: StreamHandlers): void {
    this.handlers = { ...this.handlers, ...handlers };
    const data = this.handlers.data;
    if (this.inbox && data) {
      const inbox = this.inbox;
      this.inbox = null;
      for (const piece of inbox) data(piece);
    }
    if (this.endPending && this.inbox === null && this.handlers.end) {
      this.endPending = false;
      this.handlers.end();
    }
  }

  /** True while the user may still write. */
  get writable(): boolean {
    return this.local === 'open' && !this.finQueued;
  }

  /**
   * Queues bytes for the peer; the Mux takes ownership of `chunk` (do not modify it afterwards).
   * Returns false when the buffer is at its limit: wait for `drain`. Writes after the stream
   * ended or was reset are dropped (a RESET can cross a write) and return false.
   */
  write(chunk: Uint8Array): boolean {
    if (!this.writable) return false;
    if (chunk.length > 0) {
      this.sendQueue.push(chunk);
      this.queued += chunk.length;
      this.host.streamWritable(this, chunk.length);
    }
    if (this.queued >= this.sendBufferLimit || this.host.sendBudgetSpent(this)) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /** Half-close: FIN goes out after everything queued. */
  end(): void {
    if (!this.writable) return;
    this.finQueued = true;
    this.host.streamWritable(this, 0);
  }

  /** Aborts both directions with a RESET code (§2); nothing more is delivered to the user. */
  reset(code: number): void {
    if (this.local === 'reset') return;
    this.host.streamReset(this, code);
  }

  /** Returns credit for `n` bytes the user has really consumed (written onward, processed). */
  consume(n: number): void {
    if (!(n > 0)) return;
    if (n > this.unconsumed) throw new UsageError(`consumed ${n} bytes, only ${this.unconsumed} delivered`);
    this.unconsumed -= n;
    if (this.remote !== 'open' || this.local === 'reset') return;
    this.pendingGrant += n;
    this.host.streamConsumed(this);
  }

  /** Bytes delivered to the user and not yet consumed. */
  get buffered(): number {
    return this.unconsumed;
  }

  // ---- called by the Mux ----

  deliver(piece: Uint8Array): void {
    this.bytesIn += piece.length;
    this.unconsumed += piece.length;
    if (this.inbox) this.inbox.push(piece);
    else if (this.handlers.data) this.handlers.data(piece);
    else this.inbox = [piece];
  }

  deliverEnd(): void {
    // Data still waiting for a handler must reach the user before the end does.
    if (this.inbox === null && this.handlers.end) this.handlers.end();
    else this.endPending = true;
  }

  deliverReset(code: number): void {
    this.inbox = null;
    this.endPending = false;
    const handler = this.handlers.reset;
    this.handlers = {};
    handler?.(code);
  }

  /** The user reset the stream itself: it wants no further callbacks. */
  forget(): void {
    this.inbox = null;
    this.endPending = false;
    this.handlers = {};
  }

  /** Called by the Mux after frames were cut from the queue, or its shared budget freed up. */
  afterSend(): void {
    if (this.wantDrain && this.queued < this.sendBufferLimit && this.local === 'open' && !this.host.sendBudgetSpent(this)) {
      this.wantDrain = false;
      this.handlers.drain?.();
    }
  }

  /** Drops everything queued for sending (on RESET). */
  clearSend(): void {
    this.sendQueue = [];
    this.queued = 0;
    this.finQueued = false;
    this.wantDrain = false;
  }
}
