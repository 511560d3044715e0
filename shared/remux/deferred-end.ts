/**
 * A pipe end whose real stream is not there yet: the extension hands the browser's connection a
 * DeferredEnd while it decides or opens the transport (a WebTransport handshake, an async stream
 * open). Writes wait here — at most `limit` bytes before `write` returns false, so the writer is
 * held to its window — and replay in order once `bind` supplies the real end; `fail` resets.
 */
import { UsageError } from '../errors.ts';
import type { PipeEnd } from './pipe.ts';
import type { StreamHandlers } from './stream.ts';

export class DeferredEnd implements PipeEnd {
  private handlers: StreamHandlers = {};
  private queue: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private resetCode: number | null = null;
  private real: PipeEnd | null = null;
  private wantDrain = false;

  constructor(private readonly limit: number) {}

  get bound(): boolean {
    return this.real !== null;
  }

  attach(handlers: StreamHandlers): void {
    if (this.real) return this.real.attach(handlers);
    this.handlers = { ...this.handlers, ...handlers };
  }

  write(chunk: Uint8Array): boolean {
    if (this.real) return this.real.write(chunk);
    if (this.ended || this.resetCode !== null) return false;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued < this.limit) return true;
    this.wantDrain = true;
    return false;
  }

  end(): void {
    if (this.real) return this.real.end();
    this.ended = true;
  }

  reset(code: number): void {
    if (this.real) return this.real.reset(code);
    if (this.resetCode !== null) return;
    this.resetCode = code;
    this.queue = [];
    this.handlers = {};
  }

  consume(n: number): void {
    // Nothing is delivered before `bind`, so there is nothing to consume until then.
    this.real?.consume(n);
  }

  /** The real end arrived: it gets the handlers, the queued bytes, then the FIN or RESET. */
  bind(real: PipeEnd): void {
    if (this.real) throw new UsageError('DeferredEnd bound twice');
    this.real = real;
    if (this.resetCode !== null) return real.reset(this.resetCode);
    const drain = this.wantDrain ? this.handlers.drain : undefined;
    real.attach(this.handlers);
    let open = true;
    for (const chunk of this.queue) open = real.write(chunk);
    this.queue = [];
    if (this.ended) real.end();
    // A writer told to wait is told to go on once the real end can take more.
    else if (drain && open) drain();
  }

  /** No transport for this stream: the user sees a RESET with `code`. */
  fail(code: number): void {
    if (this.real || this.resetCode !== null) return;
    const reset = this.handlers.reset;
    this.reset(code);
    reset?.(code);
  }
}
