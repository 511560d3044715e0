/**
 * raw mode: the session's bytes go to one fixed TCP upstream, as Tor's and Lantern's
 * meek-server do, so an unmodified meek-v1 client works against the edge.
 */
import net from 'node:net';
import { DownstreamBuffer } from './downstream-buffer.ts';
import type { Upstream } from './upstream.ts';

export class RawUpstream implements Upstream {
  readonly downstream: DownstreamBuffer;
  ended = false;

  private constructor(private readonly socket: net.Socket, bufferLimit: number, private readonly onBytes: (up: number, down: number) => void) {
    this.downstream = new DownstreamBuffer(bufferLimit);
    this.downstream.onDrain = () => socket.resume();
    socket.on('data', (chunk: Buffer) => {
      onBytes(0, chunk.length);
      if (!this.downstream.push([chunk])) socket.pause();
    });
    const end = () => {
      this.ended = true;
      this.downstream.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', () => {}); // 'close' follows; the client learns by 410
  }

  /**
   * Dials the upstream; rejects when it cannot be reached (the edge answers 502). A `preamble`
   * (a PROXY header) is the connection's first bytes, before any of the client's.
   */
  static connect(
    host: string,
    port: number,
    timeoutMs: number,
    bufferLimit: number,
    onBytes: (up: number, down: number) => void,
    preamble: Uint8Array | null = null,
  ): Promise<RawUpstream> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => socket.destroy(new Error('dial timeout')), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        if (preamble) socket.write(preamble);
        socket.removeListener('error', reject);
        resolve(new RawUpstream(socket, bufferLimit, onBytes));
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get finished(): boolean {
    return this.ended && this.downstream.size === 0;
  }

  get streamCount(): number {
    return this.ended ? 0 : 1;
  }

  /** The downstream, and what the socket holds toward the upstream (one request body at most: write waits for drain). */
  memoryUsed(): number {
    return this.downstream.size + this.socket.writableLength;
  }

  relieve(): void {}

  write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0 || this.ended) return Promise.resolve();
    this.onBytes(bytes.length, 0);
    return new Promise((resolve) => {
      if (this.socket.write(bytes)) resolve();
      else {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      }
    });
  }

  /** Raw mode carries one connection a meek-v1 client cannot reopen elsewhere: it runs to the deadline. */
  closeQuiet(): void {}

  /** A raw session has no GOAWAY: it is over only when its upstream is. */
  get movedAway(): boolean {
    return this.finished;
  }

  goaway(): void {
    this.socket.end();
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
    this.downstream.wake();
  }
}
