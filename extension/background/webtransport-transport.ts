/**
 * The WebTransport transport: one session to the edge over the browser's own QUIC, pinned to the
 * certificate hashes the edge advertises (PROTOCOL.md §4); every tunneled connection is one
 * bidirectional stream led by its EagerSocks header. Same surface as the meek transport: `open`
 * hands back a pipe end at once (the stream itself opens asynchronously).
 */
import { encodeDestination, type Destination } from '../../shared/eagersocks.ts';
import { DeferredEnd } from '../../shared/remux/deferred-end.ts';
import { INITIAL_WINDOW, ResetCode } from '../../shared/remux/frame.ts';
import type { PipeEnd } from '../../shared/remux/pipe.ts';
import { WebTransportStreamEnd } from './webtransport-stream.ts';
import { DEAD_AFTER_MS, KEEPALIVE_EVERY_MS, type SessionTransport, type TransportState } from './transport.ts';


const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

/**
 * Cover datagrams (PROTOCOL.md §4): with padding on, each new stream is accompanied by this many
 * datagrams of random size, which the front echoes like any other — traffic beside the stream's
 * first flights in both directions, so their sizes and count say less. Never 4 bytes (a keep-alive).
 */
const COVER_PER_STREAM = 2;
const COVER_MIN = 64;
const COVER_MAX = 1000;

export class WebTransportTransport implements SessionTransport {
  readonly state: TransportState = { name: 'webtransport', reachable: null, rttMs: null, error: null, sessions: 0, detail: null, problem: null };
  private readonly session: WebTransport;
  /** Settles with the handshake: resolves once the session is up, rejects with why it is not. */
  readonly ready: Promise<void>;
  /** Resolves when an established session ends, with the reason. */
  readonly closed: Promise<string>;
  private end: (why: string) => void = () => undefined;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private datagramWriter: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(url: string, token: string, hashes: readonly string[], handshakeTimeoutMs: number, private readonly padding = false) {
    const target = new URL(url);
    if (token) target.searchParams.set('token', token);
    this.session = new WebTransport(target.href, {
      serverCertificateHashes: hashes.map((h) => ({ algorithm: 'sha-256', value: hexBytes(h) })),
    });
    this.closed = new Promise<string>((resolve) => (this.end = resolve));
    this.session.closed.then(
      (info) => this.end(`the edge closed the session${info.reason ? `: ${info.reason}` : ''}`),
      (e: unknown) => this.end(describe(e)),
    );
    void this.closed.then((why) => {
      this.state.sessions = 0;
      this.state.error ??= why;
      if (this.pingTimer) clearInterval(this.pingTimer);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.ready = Promise.race([
      this.session.ready,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no handshake within ${handshakeTimeoutMs / 1000} s`)), handshakeTimeoutMs))),
    ]).then(
      () => {
        clearTimeout(timer);
        this.state.reachable = true;
        this.state.sessions = 1;
        this.keepAlive();
      },
      (e: unknown) => {
        clearTimeout(timer);
        this.state.reachable = false;
        this.state.error = describe(e);
        this.close();
        throw new Error(this.state.error);
      },
    );
  }

  /**
   * Sends a numbered datagram every second and reads the echoes: their round trip is the RTT the
   * popup shows, and their absence for 3 s ends the session — QUIC alone would wait for its idle
   * timeout (30 s) while new connections hang on a session whose edge is gone.
   */
  private keepAlive(): void {
    const writer = this.session.datagrams.writable.getWriter();
    this.datagramWriter = writer;
    const reader = this.session.datagrams.readable.getReader();
    const sent = new Map<number, number>();
    let seq = 0;
    let lastAnswer = performance.now();
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          if (value.length !== 4) continue;
          const at = sent.get(new DataView(value.buffer, value.byteOffset).getUint32(0));
          if (at === undefined) continue;
          lastAnswer = performance.now();
          this.state.rttMs = Math.round(lastAnswer - at);
        }
      } catch {
        // the session ended: `closed` says why
      }
    })();
    this.pingTimer = setInterval(() => {
      const now = performance.now();
      if (now - lastAnswer > DEAD_AFTER_MS) {
        this.end(`no answer from the edge for ${DEAD_AFTER_MS / 1000} s`);
        return this.close();
      }
      const ping = new Uint8Array(4);
      new DataView(ping.buffer).setUint32(0, ++seq);
      sent.set(seq, now);
      sent.delete(seq - 8); // only recent pings can still be answered usefully
      writer.write(ping).catch(() => undefined);
    }, KEEPALIVE_EVERY_MS);
  }

  /** A stream to `destination`; it resets with 0x01 if the session cannot open one. */
  open(destination: Destination): PipeEnd {
    const end = new DeferredEnd(INITIAL_WINDOW);
    const header = encodeDestination(destination);
    if (this.padding) this.cover();
    this.session.createBidirectionalStream().then(
      (stream) => end.bind(new WebTransportStreamEnd(stream, header)),
      () => end.fail(ResetCode.UNREACHABLE),
    );
    return end;
  }

  private cover(): void {
    const writer = this.datagramWriter;
    if (!writer) return;
    const max = Math.min(COVER_MAX, this.session.datagrams.maxDatagramSize ?? COVER_MAX);
    for (let i = 0; i < COVER_PER_STREAM; i++) {
      const n = COVER_MIN + Math.floor(Math.random() * Math.max(1, max - COVER_MIN));
      writer.write(crypto.getRandomValues(new Uint8Array(n === 4 ? 5 : n))).catch(() => undefined);
    }
  }

  close(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    try {
      this.session.close();
    } catch {
      // already closed
    }
  }
}

function describe(e: unknown): string {
  const message = (e as Error | null)?.message;
  return message ? message.replace(/^WebTransportError: /, '') : String(e);
}
