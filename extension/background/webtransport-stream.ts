/**
 * One WebTransport bidirectional stream as a pipe end (shared/remux/pipe.ts), so the engine joins
 * it to the bridge's stream exactly as it joins a meek ReMux stream. Flow control: `write`
 * returns false while more than a window sits in Chromium's send queue; reading pauses while the
 * other side has not consumed a window. FIN is the stream's close; a RESET is an abort carrying
 * its code (PROTOCOL.md §4). The edge cannot send RESET_STREAM (Deno), so it aborts with
 * STOP_SENDING: a write side failing that way is read as RESET 0x07.
 */
import { INITIAL_WINDOW, ResetCode, asResetCode } from '../../shared/remux/frame.ts';
import type { PipeEnd } from '../../shared/remux/pipe.ts';
import type { StreamHandlers } from '../../shared/remux/stream.ts';

/** A stream error's code as the RESET code it carries, when it is one. */
const resetCodeOf = (e: unknown, fallback: ResetCode) => asResetCode((e as { streamErrorCode?: number | null } | null)?.streamErrorCode, fallback);

export class WebTransportStreamEnd implements PipeEnd {
  private handlers: StreamHandlers = {};
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private unsent = 0;
  private wantDrain = false;
  private unconsumed = 0;
  private resume: (() => void) | null = null;
  private finished = false;
  private reading = false;

  constructor(stream: WebTransportBidirectionalStream, header: Uint8Array) {
    this.writer = stream.writable.getWriter();
    this.reader = stream.readable.getReader();
    this.send(header);
    this.writer.closed.catch((e: unknown) => this.abortedByPeer(resetCodeOf(e, ResetCode.CONNECTION_RESET)));
  }

  attach(handlers: StreamHandlers): void {
    this.handlers = { ...this.handlers, ...handlers };
    if (!this.reading && this.handlers.data) {
      this.reading = true;
      void this.readLoop();
    }
  }

  write(chunk: Uint8Array): boolean {
    if (this.finished) return false;
    this.send(chunk);
    if (this.unsent < INITIAL_WINDOW) return true;
    this.wantDrain = true;
    return false;
  }

  private send(chunk: Uint8Array): void {
    const n = chunk.length;
    this.unsent += n;
    this.writer.write(chunk as Uint8Array<ArrayBuffer>).then(
      () => {
        this.unsent -= n;
        if (this.wantDrain && this.unsent < INITIAL_WINDOW) {
          this.wantDrain = false;
          this.handlers.drain?.();
        }
      },
      () => undefined, // the stream failed: `writer.closed` reports it
    );
  }

  end(): void {
    if (this.finished) return;
    this.writer.close().catch(() => undefined);
  }

  reset(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.handlers = {};
    const reason = streamError(code);
    this.writer.abort(reason).catch(() => undefined);
    this.reader.cancel(reason).catch(() => undefined);
    this.resume?.();
  }

  consume(n: number): void {
    this.unconsumed -= n;
    if (this.resume && this.unconsumed < INITIAL_WINDOW) this.resume();
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        if (this.unconsumed >= INITIAL_WINDOW) await new Promise<void>((r) => (this.resume = r));
        this.resume = null;
        if (this.finished) return;
        const { value, done } = await this.reader.read();
        if (done) return void this.handlers.end?.();
        this.unconsumed += value.length;
        this.handlers.data?.(value);
      }
    } catch (e) {
      this.abortedByPeer(resetCodeOf(e, ResetCode.CONNECTION_RESET));
    }
  }

  /** The edge reset (or stopped) the stream, or the session died: the user hears a RESET. */
  private abortedByPeer(code: number): void {
    if (this.finished) return;
    this.finished = true;
    const reset = this.handlers.reset;
    this.handlers = {};
    this.writer.abort().catch(() => undefined);
    this.reader.cancel().catch(() => undefined);
    this.resume?.();
    reset?.(code);
  }
}

/**
 * The error a reset carries to the far side. Chromium 156 constructs WebTransportError from one
 * dictionary ({message, streamErrorCode}) and throws on the (message, options) form the spec and
 * other browsers take — which used to throw here before abort and cancel ran.
 */
function streamError(code: number): WebTransportError {
  const FromInit = WebTransportError as unknown as new (init: { message: string; streamErrorCode: number }) => WebTransportError;
  try {
    return new FromInit({ message: 'reset', streamErrorCode: code });
  } catch {
    return new WebTransportError('reset', { streamErrorCode: code });
  }
}
