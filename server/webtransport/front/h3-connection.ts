/**
 * One QUIC connection speaking HTTP/3 with WebTransport (draft-02): the server's control stream
 * with SETTINGS (kept referenced for the connection's life — Chromium drops the session if it
 * closes), the peer's control and QPACK streams, request streams (an extended CONNECT opens a
 * session after the edge said yes; anything else is 404), and WebTransport streams handed to
 * their session. A protocol violation closes this connection only, with its HTTP/3 error code.
 */
import { isProtocolError } from '../../../shared/errors.ts';
import { FrameType, H3FrameDecoder, decodeSettings, type H3Frame } from '../../../shared/h3/frame.ts';
import { decodeFieldSection } from '../../../shared/h3/qpack.ts';
import {
  H3Error,
  SESSION_ACCEPTED,
  UniStreamType,
  WT_BIDI_SIGNAL,
  classifyRequest,
  goawayFrame,
  readPreamble,
  responseHeaders,
  serverControlPreamble,
} from '../../../shared/h3/webtransport.ts';
import { readVarint } from '../../../shared/h3/varint.ts';
import { askEdge } from './edge-link.ts';
import { readUntil } from './byte-reader.ts';
import { WtSession } from './wt-session.ts';

/** Largest HTTP/3 frame accepted on control and request streams (field sections are small). */
const MAX_FRAME = 16 * 1024;
/** WebTransport sessions per connection (advertised in SETTINGS; Chromium uses one). */
const MAX_SESSIONS = 1;

/** An HTTP/3 connection error (RFC 9114 §8): the whole connection closes with `code`. */
class H3ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ConnectionOptions {
  linkPath: string;
  log(message: string): void;
  /** With no session (or CONNECT being decided) this long after the handshake, the connection is closed. */
  connectDeadlineMs: number;
}

type Waiting = Array<(session: WtSession | null) => void>;

export class H3Connection {
  private control: WritableStreamDefaultWriter<Uint8Array> | null = null;
  private peerControl = false;
  private readonly sessions = new Map<number, WtSession>();
  /** CONNECTs being decided by the edge: WebTransport streams for them wait. */
  private readonly pending = new Map<number, Waiting>();
  private highestRequest = -1;
  private goingAway = false;
  private closed = false;

  constructor(
    private readonly conn: Deno.QuicConn,
    private readonly o: ConnectionOptions,
  ) {}

  async run(): Promise<void> {
    try {
      const ctl = await this.conn.createUnidirectionalStream();
      this.control = ctl.getWriter();
      await this.control.write(serverControlPreamble(MAX_SESSIONS));
    } catch {
      return this.teardown();
    }
    void this.acceptUni();
    void this.acceptBidi();
    void this.echoDatagrams();
    // A handshake that never becomes a session holds a place a user needs: give it a deadline.
    const deadline = setTimeout(() => {
      if (this.sessions.size === 0 && this.pending.size === 0) this.close(H3Error.NO_ERROR, 'no session');
    }, this.o.connectDeadlineMs);
    await this.conn.closed.catch(() => undefined);
    clearTimeout(deadline);
    this.teardown();
  }

  /** Shutdown: GOAWAY, then the sessions end (their CONNECT streams finish). */
  async goaway(): Promise<void> {
    if (this.closed || this.goingAway) return;
    this.goingAway = true;
    await this.control?.write(goawayFrame(this.highestRequest + 4)).catch(() => undefined);
    for (const s of [...this.sessions.values()]) s.close();
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    try {
      this.conn.close({ closeCode: code, reason: reason.slice(0, 100) });
    } catch {
      // already closed
    }
    this.teardown();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.sessions.values()]) s.close();
    for (const waiting of this.pending.values()) for (const w of waiting) w(null);
    this.pending.clear();
  }

  private fail(e: unknown): void {
    if (e instanceof H3ConnectionError) {
      this.o.log(`closing connection: ${e.message}`);
      return this.close(e.code, e.message);
    }
    if (isProtocolError(e)) {
      this.o.log(`closing connection: ${e.message}`);
      return this.close(H3Error.FRAME_ERROR, e.message);
    }
    // Stream errors from a connection that is going away anyway.
  }

  private async acceptUni(): Promise<void> {
    try {
      for await (const stream of this.conn.incomingUnidirectionalStreams) void this.onUni(stream).catch((e) => this.fail(e));
    } catch {
      // connection closed
    }
  }

  private async acceptBidi(): Promise<void> {
    try {
      for await (const stream of this.conn.incomingBidirectionalStreams) void this.onBidi(stream).catch((e) => this.fail(e));
    } catch {
      // connection closed
    }
  }

  /**
   * The clients' keep-alive (PROTOCOL.md §4): a datagram of an open session comes back unchanged,
   * so a client can tell a dead session in seconds instead of QUIC's idle timeout.
   */
  private async echoDatagrams(): Promise<void> {
    try {
      for (;;) {
        const datagram = await this.conn.readDatagram();
        let quarter: ReturnType<typeof readVarint> = null;
        try {
          quarter = readVarint(datagram, 0);
        } catch {
          continue; // a varint above 2^53 names no session of ours
        }
        if (quarter && this.sessions.has(quarter.value * 4)) await this.conn.sendDatagram(datagram);
      }
    } catch {
      // the connection closed
    }
  }

  private async onUni(stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.getReader();
    const head = await readUntil(reader, new Uint8Array(0), 8, (b) => readVarint(b, 0));
    if (!head) return;
    const type = head.value.value;
    const rest = head.buf.subarray(head.value.length);
    if (type === UniStreamType.CONTROL) return this.readPeerControl(reader, rest);
    if (type === UniStreamType.QPACK_ENCODER || type === UniStreamType.QPACK_DECODER) {
      // A zero-capacity dynamic table needs nothing from these streams; they must stay open.
      while (!(await reader.read()).done);
      throw new H3ConnectionError(H3Error.CLOSED_CRITICAL_STREAM, 'QPACK stream closed');
    }
    // Push, WebTransport unidirectional and unknown (grease) streams: not used here.
    await reader.cancel().catch(() => undefined);
  }

  private async readPeerControl(reader: ReadableStreamDefaultReader<Uint8Array>, first: Uint8Array): Promise<void> {
    if (this.peerControl) throw new H3ConnectionError(H3Error.STREAM_CREATION_ERROR, 'second control stream');
    this.peerControl = true;
    const decoder = new H3FrameDecoder(MAX_FRAME);
    let settings = false;
    const handle = (frames: H3Frame[]) => {
      for (const f of frames) {
        if (!settings) {
          if (f.type !== FrameType.SETTINGS) throw new H3ConnectionError(H3Error.MISSING_SETTINGS, 'control stream does not start with SETTINGS');
          decodeSettings(f.payload);
          settings = true;
        } else if (f.type === FrameType.SETTINGS || f.type === FrameType.DATA || f.type === FrameType.HEADERS || f.type === FrameType.PUSH_PROMISE) {
          throw new H3ConnectionError(H3Error.FRAME_UNEXPECTED, `frame 0x${f.type.toString(16)} on the control stream`);
        }
        // GOAWAY, MAX_PUSH_ID, CANCEL_PUSH and unknown frames need no action from this server.
      }
    };
    handle(decoder.push(first));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new H3ConnectionError(H3Error.CLOSED_CRITICAL_STREAM, 'control stream closed');
      handle(decoder.push(value));
    }
  }

  private async onBidi(stream: Deno.QuicBidirectionalStream): Promise<void> {
    const reader = stream.readable.getReader();
    const head = await readUntil(reader, new Uint8Array(0), 16, (b) => readPreamble(b, 2));
    if (!head) return void stream.writable.close().catch(() => undefined);
    const [signal, sessionId] = head.value.values;
    if (signal === WT_BIDI_SIGNAL) {
      const session = this.sessions.get(sessionId!) ?? (await this.waitForSession(sessionId!));
      if (!session) {
        await reader.cancel().catch(() => undefined);
        await stream.writable.abort().catch(() => undefined);
        return;
      }
      return session.addStream(stream, reader, head.buf.subarray(head.value.length));
    }
    return this.onRequest(stream, reader, head.buf);
  }

  private waitForSession(id: number): Promise<WtSession | null> {
    const waiting = this.pending.get(id);
    if (!waiting) return Promise.resolve(null);
    return new Promise((resolve) => waiting.push(resolve));
  }

  private async onRequest(stream: Deno.QuicBidirectionalStream, reader: ReadableStreamDefaultReader<Uint8Array>, first: Uint8Array): Promise<void> {
    const id = Number(stream.readable.id);
    this.highestRequest = Math.max(this.highestRequest, id);
    const writer = stream.writable.getWriter();
    const decoder = new H3FrameDecoder(MAX_FRAME);
    let headers: H3Frame | null = null;
    const scan = (chunk: Uint8Array) => {
      // Unknown (reserved) frame types before HEADERS are skipped (RFC 9114 §9).
      for (const f of decoder.push(chunk)) {
        if (f.type === FrameType.HEADERS) return void (headers ??= f);
        if (f.type === FrameType.DATA) throw new H3ConnectionError(H3Error.FRAME_UNEXPECTED, 'DATA before HEADERS');
      }
    };
    scan(first);
    while (!headers) {
      const { value, done } = await reader.read();
      if (done) return void writer.close().catch(() => undefined);
      scan(value);
    }
    const found: H3Frame = headers;
    let fields;
    try {
      fields = decodeFieldSection(found.payload);
    } catch (e) {
      throw new H3ConnectionError(H3Error.QPACK_DECOMPRESSION_FAILED, (e as Error).message);
    }
    let request;
    try {
      request = classifyRequest(fields);
    } catch {
      return this.answer(writer, reader, 400);
    }
    if (request.kind !== 'webtransport') return this.answer(writer, reader, 404);
    if (this.goingAway || this.closed) return this.answer(writer, reader, 503);
    // The SETTINGS promised one session per connection: a second one is refused, not queued.
    if (this.sessions.size + this.pending.size >= MAX_SESSIONS) return this.answer(writer, reader, 429);
    const waiting: Waiting = [];
    this.pending.set(id, waiting);
    let session: WtSession | null = null;
    try {
      const verdict = await askEdge(this.o.linkPath, { path: request.path, token: request.token, authority: request.authority });
      if (verdict.link === null || this.closed) {
        verdict.link?.close();
        await this.answer(writer, reader, verdict.status === 200 ? 503 : verdict.status);
      } else {
        await writer.write(responseHeaders(200, SESSION_ACCEPTED));
        session = new WtSession(id, writer, verdict.link, (s) => this.sessions.delete(s.id));
        this.sessions.set(id, session);
      }
    } catch (e) {
      this.o.log(`edge link failed: ${(e as Error).message}`);
      await this.answer(writer, reader, 503);
    } finally {
      this.pending.delete(id);
      for (const w of waiting) w(session);
    }
    if (!session) return;
    // The CONNECT stream's end (FIN, reset, or CLOSE_WEBTRANSPORT_SESSION then FIN) ends the session.
    try {
      while (!(await reader.read()).done);
    } catch {
      // reset: the same
    }
    session.close();
  }

  private async answer(writer: WritableStreamDefaultWriter<Uint8Array>, reader: ReadableStreamDefaultReader<Uint8Array>, status: number): Promise<void> {
    await writer.write(responseHeaders(status)).catch(() => undefined);
    await writer.close().catch(() => undefined);
    await reader.cancel().catch(() => undefined);
  }
}
