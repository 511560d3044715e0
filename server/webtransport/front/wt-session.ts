/**
 * One WebTransport session at the front: its CONNECT stream (whose end ends the session) and its
 * bidirectional streams, each relayed to a ReMux stream on the session's link to the edge
 * (PROTOCOL.md §4). A stream's first bytes are its EagerSocks header; the edge dials.
 *
 * Resets: a stream the browser resets arrives as "stream reset by peer: error N" (N in the HTTP/3
 * space), mapped back to the RESET code. Deno 2.9.6 cannot send RESET_STREAM, so an edge RESET
 * becomes STOP_SENDING on the stream with the send side held open; the client reads the aborted
 * write as the reset (docs/PROTOCOL.md §4 records this).
 */
import { decodeDestination, type Destination } from '../../../shared/eagersocks.ts';
import { ResetCode, asResetCode } from '../../../shared/remux/frame.ts';
import type { MuxStream } from '../../../shared/remux/stream.ts';
import { http3ToWebtransport } from '../../../shared/h3/webtransport.ts';
import type { EdgeLink } from './edge-link.ts';
import { readUntil } from './byte-reader.ts';

/** An EagerSocks header is at most 262 bytes (§3). */
const MAX_HEADER = 262;
/** How long a reset stream's send side stays open for the client to see the STOP_SENDING. */
const HOLD_AFTER_RESET_MS = 3000;

export function resetCodeOf(error: unknown): number {
  const m = /reset by peer: error (\d+)|stopped by peer: error (\d+)/.exec(String((error as Error | null)?.message ?? error));
  const h3 = m ? Number(m[1] ?? m[2]) : NaN;
  const code = http3ToWebtransport(h3);
  return asResetCode(code, ResetCode.CANCELLED);
}

export class WtSession {
  private ended = false;
  private readonly streams = new Set<Deno.QuicBidirectionalStream>();

  constructor(
    readonly id: number,
    private readonly connectWriter: WritableStreamDefaultWriter<Uint8Array>,
    private readonly link: EdgeLink,
    private readonly onEnd: (session: WtSession) => void,
  ) {
    void link.closed.then(() => this.close());
  }

  /** The CONNECT stream ended (the browser closed the session) or the edge's link did. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.link.close();
    for (const s of this.streams) {
      s.readable.cancel().catch(() => undefined);
      s.writable.abort().catch(() => undefined);
    }
    this.streams.clear();
    this.connectWriter.close().catch(() => undefined);
    this.onEnd(this);
  }

  /** A bidirectional stream of this session, past its preamble; `first` holds the bytes read after it. */
  async addStream(stream: Deno.QuicBidirectionalStream, reader: ReadableStreamDefaultReader<Uint8Array>, first: Uint8Array): Promise<void> {
    if (this.ended) return void this.refuse(stream, reader);
    this.streams.add(stream);
    const forget = () => this.streams.delete(stream);
    let header: { value: { destination: Destination; length: number }; buf: Uint8Array } | null;
    try {
      header = await readUntil(reader, first, MAX_HEADER, decodeDestination);
    } catch {
      header = null; // malformed or oversized header: this stream only
    }
    if (!header || this.ended || !this.link.mux.canOpen) {
      forget();
      return void this.refuse(stream, reader);
    }
    const tunnel = this.link.mux.open(header.value.destination);
    const rest = header.buf.subarray(header.value.length);
    if (rest.length > 0) tunnel.write(rest);
    relay(stream, reader, tunnel, forget);
  }

  /** Like an edge RESET: STOP_SENDING, the send side held a moment so the client reads it as one. */
  private refuse(stream: Deno.QuicBidirectionalStream, reader: ReadableStreamDefaultReader<Uint8Array>): void {
    reader.cancel().catch(() => undefined);
    setTimeout(() => stream.writable.abort().catch(() => undefined), HOLD_AFTER_RESET_MS);
  }
}

/** Joins a WebTransport stream and a ReMux stream; credit goes back only as bytes are written on. */
function relay(stream: Deno.QuicBidirectionalStream, reader: ReadableStreamDefaultReader<Uint8Array>, tunnel: MuxStream, done: () => void): void {
  const writer = stream.writable.getWriter();
  let finished = false;
  let ends = 0;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
  };
  let drained: (() => void) | null = null;

  tunnel.attach({
    data(piece) {
      const n = piece.length;
      writer.write(piece).then(
        () => tunnel.consume(n),
        (e) => {
          // The browser stopped reading (STOP_SENDING) or the connection died.
          tunnel.reset(resetCodeOf(e));
          drained?.();
          reader.cancel().catch(() => undefined);
          finish();
        },
      );
    },
    end() {
      writer.close().catch(() => undefined);
      if (++ends === 2) finish();
    },
    reset() {
      drained?.();
      reader.cancel().catch(() => undefined);
      setTimeout(() => writer.abort().catch(() => undefined), HOLD_AFTER_RESET_MS);
      finish();
    },
    drain() {
      drained?.();
    },
  });

  void (async () => {
    try {
      for (;;) {
        const { value, done: fin } = await reader.read();
        if (fin) break;
        if (!tunnel.write(value)) await new Promise<void>((resolve) => (drained = resolve));
        drained = null;
      }
      tunnel.end();
      if (++ends === 2) finish();
    } catch (e) {
      if (finished) return;
      tunnel.reset(resetCodeOf(e));
      writer.abort().catch(() => undefined);
      finish();
    }
  })();
}
