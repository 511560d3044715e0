/**
 * Absolute-form plain HTTP through the bridge. Each request becomes its own stream to the host
 * it names (rewritten to origin form, `Connection: close`), so a keep-alive browser connection
 * that moves between hosts never sends one host's request down another host's stream. Request
 * bodies are framed by Content-Length; a chunked body turns the rest of the connection into that
 * one stream. The response is relayed as it comes; at its FIN the connection closes unless the
 * browser already sent its next request.
 */
import type net from 'node:net';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { creditedWriter } from '../exit/socket-stream.ts';
import { HttpHeadError, header, parseRequestHead, rewriteAbsoluteForm, type RequestHead } from './proxy-head.ts';

type OpenStream = (destination: Destination) => Promise<MuxStream | null>;
type ErrorPage = (status: number, reason: string, message: string) => Uint8Array;
/** The answer for a request head that lacks the proxy credential, or null when it has it. */
type Admit = (head: RequestHead) => Uint8Array | null;

export class PlainHttpProxy {
  private buf: Buffer<ArrayBufferLike>;
  private current: MuxStream | null = null;
  /** Request body bytes still to forward to `current`; Infinity: all the rest (chunked). */
  private bodyLeft = 0;
  private busy = false;
  private ended = false;
  /** Writes `current`'s response to the socket; owed credit belongs to that stream alone. */
  private writer: ReturnType<typeof creditedWriter> | null = null;

  constructor(
    private readonly socket: net.Socket,
    first: Buffer,
    private readonly open: OpenStream,
    private readonly errorPage: ErrorPage,
    private readonly admit: Admit,
  ) {
    this.buf = first;
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      void this.pump();
    });
    socket.on('end', () => {
      this.ended = true;
      this.current?.end();
    });
    socket.on('close', () => this.current?.reset(ResetCode.CANCELLED));
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.buf.length > 0) {
        if (this.current && this.bodyLeft > 0) {
          const n = Math.min(this.bodyLeft, this.buf.length);
          const piece = this.buf.subarray(0, n);
          this.buf = this.buf.subarray(n);
          this.bodyLeft -= n;
          if (!this.current.write(piece)) {
            this.socket.pause();
            this.current.attach({ drain: () => this.socket.resume() });
          }
          continue;
        }
        let head;
        try {
          head = parseRequestHead(this.buf);
        } catch (e) {
          if (!(e instanceof HttpHeadError)) throw e;
          return this.fail(e.status, e.reason, e.message);
        }
        if (!head) return;
        // Every request on the connection carries the credential (browsers send it on each).
        const refusal = this.admit(head);
        if (refusal) {
          this.buf = Buffer.alloc(0);
          this.current?.reset(ResetCode.CANCELLED);
          return void this.socket.end(refusal);
        }
        let rewritten;
        try {
          if (head.method === 'CONNECT') throw new HttpHeadError('CONNECT on a connection that carried plain HTTP');
          rewritten = rewriteAbsoluteForm(head);
        } catch (e) {
          if (!(e instanceof HttpHeadError)) throw e;
          return this.fail(e.status, e.reason, e.message);
        }
        const chunked = /chunked/i.test(header(head, 'transfer-encoding') ?? '');
        const length = Number(header(head, 'content-length') ?? 0);
        if (!chunked && !(Number.isSafeInteger(length) && length >= 0)) return this.fail(400, 'Bad Request', 'bad Content-Length');
        this.buf = this.buf.subarray(head.length);
        // The previous response is complete (browsers do not pipeline); its stream can go.
        this.current?.reset(ResetCode.CANCELLED);
        this.current = null;
        this.socket.pause();
        const stream = await this.open(rewritten.destination);
        this.socket.resume();
        if (!stream) return this.fail(503, 'Service Unavailable', '');
        this.attach(stream);
        stream.write(rewritten.head);
        this.bodyLeft = chunked ? Infinity : length;
        if (this.ended && this.bodyLeft === 0) stream.end();
      }
    } finally {
      this.busy = false;
    }
  }

  private attach(stream: MuxStream): void {
    this.current = stream;
    this.writer?.stop();
    const writer = creditedWriter(this.socket, stream);
    this.writer = writer;
    stream.attach({
      data: (piece) => writer.write(piece),
      end: () => {
        // Close-delimited responses end here; a browser that already asked again keeps the socket.
        if (this.current === stream && this.buf.length === 0) this.socket.end();
      },
      reset: () => {
        if (this.current === stream) this.socket.destroy();
      },
    });
  }

  private fail(status: number, reason: string, message: string): void {
    this.buf = Buffer.alloc(0);
    this.current?.reset(ResetCode.CANCELLED);
    this.socket.end(this.errorPage(status, reason, message));
  }
}
