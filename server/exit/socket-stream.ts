/**
 * A TCP socket joined to a ReMux stream: the edge joins each dialed destination, the bridge each
 * browser connection. Credit flows end to end: the stream's bytes are consumed (WINDOW granted)
 * once the socket holds at most a window of them unflushed, and the socket is paused while the
 * stream's send buffer is full — a stalled party on either side holds the other to a window.
 */
import { writeSync } from 'node:fs';
import type net from 'node:net';
import { INITIAL_WINDOW } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

export interface JoinEvents {
  /** Bytes that went stream → socket and socket → stream. */
  onBytes?(fromStream: number, fromSocket: number): void;
  /** The stream was reset: by the far side (`peer`) or because the socket failed (`socket`). */
  onReset?(code: number, by: 'peer' | 'socket'): void;
  onClose?(): void;
}

export interface JoinOptions {
  /** The RESET code for a socket that fails or closes without FIN (edge: 0x07; bridge: 0x05). */
  abortCode: number;
}

/**
 * Writes a stream's bytes to a socket and returns the stream's credit as soon as the socket holds
 * at most a window of unflushed bytes — waiting for each write's callback would keep the WINDOW
 * out of the meek reply that carried the data — and the rest at the socket's 'drain'. The edge,
 * the bridge's tunnels and its plain-HTTP requests all write this way; `stop` detaches it.
 */
export function creditedWriter(socket: net.Socket, stream: MuxStream): { write(piece: Uint8Array): void; stop(): void } {
  let owed = 0;
  const repay = () => {
    if (owed === 0) return;
    const n = owed;
    owed = 0;
    stream.consume(n);
  };
  socket.on('drain', repay);
  return {
    write(piece) {
      socket.write(piece);
      if (socket.writableLength <= INITIAL_WINDOW) stream.consume(piece.length);
      else owed += piece.length;
    },
    stop() {
      socket.off('drain', repay);
    },
  };
}

/** A joined pair, as a draining edge sees it. */
export interface JoinedStream {
  /**
   * Ends the pair (FIN toward the stream's peer, the socket closed) if it sits at a quiet moment:
   * its last bytes went toward the stream's peer, nothing has moved for `quietMs` and nothing
   * waits for the socket. That is where a keep-alive connection sits between a response and the
   * next request. True if it did.
   */
  closeIfQuiet(quietMs: number, now: number): boolean;
}

export function joinSocketStream(socket: net.Socket, stream: MuxStream, options: JoinOptions, events: JoinEvents = {}): JoinedStream {
  let closed = false;
  /** Ended by closeIfQuiet: the socket's late bytes (a TLS close_notify) have nowhere to go. */
  let quietEnded = false;
  let lastMoved = Date.now();
  let lastToPeer = false;
  const writer = creditedWriter(socket, stream);
  const finish = () => {
    if (closed) return;
    closed = true;
    writer.stop();
    events.onClose?.();
  };
  const abort = (code: number) => {
    if (closed) return;
    events.onReset?.(code, 'socket');
    stream.reset(code);
    socket.destroy();
    finish();
  };
  socket.setNoDelay(true);
  stream.attach({
    data(piece) {
      lastMoved = Date.now();
      lastToPeer = false;
      events.onBytes?.(piece.length, 0);
      writer.write(piece);
    },
    end() {
      socket.end();
    },
    reset(code) {
      if (closed) return;
      events.onReset?.(code, 'peer');
      socket.destroy();
      finish();
    },
    drain() {
      socket.resume();
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (quietEnded) return;
    lastMoved = Date.now();
    lastToPeer = true;
    events.onBytes?.(0, chunk.length);
    if (!stream.write(chunk)) socket.pause();
  });
  socket.on('end', () => {
    if (quietEnded) return;
    if (wasReset(socket)) abort(options.abortCode);
    else stream.end();
  });
  socket.on('error', () => (quietEnded ? socket.destroy() : abort(options.abortCode)));
  socket.on('close', () => {
    // Closed without its FIN having arrived: never let that look like a clean end.
    if (!socket.readableEnded && !quietEnded) abort(options.abortCode);
    finish();
  });
  return {
    closeIfQuiet(quietMs, now) {
      if (closed || quietEnded || !lastToPeer || now - lastMoved < quietMs || socket.writableLength > 0 || socket.readableEnded) return false;
      quietEnded = true;
      stream.end();
      // Closed, not half-closed: a destination that would keep its side open must not hold the drain.
      socket.destroy();
      return true;
    },
  };
}

/**
 * Whether an 'end' was really an RST. libuv turns a hang-up that arrives right behind data into a
 * plain EOF without reading the pending ECONNRESET, so a reset destination would look like a
 * clean FIN. A zero-length send on the socket reports the truth: it fails (ECONNRESET or EPIPE)
 * on a reset connection and sends nothing on one the peer only half-closed. Seen on Linux:
 * 30–90 % of RSTs right after data surfaced as 'end' without this.
 */
function wasReset(socket: net.Socket): boolean {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  try {
    writeSync(fd, new Uint8Array(0));
    return false;
  } catch (e) {
    // EPIPE also follows our own FIN, so it proves a reset only while our side is still open.
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ECONNRESET' || (code === 'EPIPE' && !socket.writableEnded);
  }
}
