/**
 * One tunneled connection at the edge: a ReMux stream joined to the TCP socket dialed for it.
 * Credit flows end to end: the client's bytes are consumed (WINDOW granted) only once the
 * socket has flushed them, and the socket is paused while the stream's send buffer is full, so
 * a stalled party on either side holds the other to one window.
 */
import type net from 'node:net';
import type { Destination } from '../../shared/eagersocks.ts';
import { INITIAL_WINDOW, ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

export type Dial = (destination: Destination) => Promise<net.Socket>;

export interface RelayEvents {
  onBytes(up: number, down: number): void;
  onDialError(code: number, error: unknown): void;
  onReset(code: number, by: 'client' | 'edge'): void;
  onClose(): void;
}

/** Maps an error from a connected socket to the RESET code the client sees. */
function socketResetCode(error: NodeJS.ErrnoException): number {
  return error.code === 'ECONNRESET' || error.code === 'EPIPE' ? ResetCode.CONNECTION_RESET : ResetCode.UNREACHABLE;
}

export function dialCode(error: unknown): number {
  const code = (error as { resetCode?: unknown } | null)?.resetCode;
  return typeof code === 'number' ? code : ResetCode.UNREACHABLE;
}

export function relayStream(stream: MuxStream, dial: Dial, events: RelayEvents): void {
  let socket: net.Socket | null = null;
  let closed = false;
  let clientEnded = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    events.onClose();
  };

  // No data handler until the dial completes: data waits in the stream, unconsumed (one window at most).
  stream.attach({
    end() {
      clientEnded = true;
      if (socket) socket.end();
    },
    reset(code) {
      events.onReset(code, 'client');
      socket?.destroy();
      finish();
    },
    drain() {
      socket?.resume();
    },
  });

  // Credit goes back as soon as the socket holds at most a window of unflushed bytes: waiting for
  // each write's callback would keep the WINDOW out of the meek response that carried the data.
  let owed = 0;
  const send = (s: net.Socket, piece: Uint8Array) => {
    events.onBytes(piece.length, 0);
    s.write(piece);
    if (s.writableLength <= INITIAL_WINDOW) stream.consume(piece.length);
    else owed += piece.length;
  };
  const repay = () => {
    if (owed === 0 || closed) return;
    const n = owed;
    owed = 0;
    stream.consume(n);
  };

  dial(stream.destination).then(
    (s) => {
      if (closed) {
        s.destroy();
        return;
      }
      socket = s;
      s.setNoDelay(true);
      s.on('drain', repay);
      // Bytes that rode in the opening frame, or came while dialing, were held in the stream.
      stream.attach({ data: (piece) => send(s, piece) });
      if (clientEnded) s.end();
      s.on('data', (chunk: Buffer) => {
        events.onBytes(0, chunk.length);
        if (!stream.write(chunk)) s.pause();
      });
      s.on('end', () => stream.end());
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (closed) return;
        const code = socketResetCode(err);
        events.onReset(code, 'edge');
        stream.reset(code);
        finish();
      });
      s.on('close', (hadError) => {
        if (closed) return;
        // Closed without an error but also without the destination's FIN: never report it as clean.
        if (!hadError && !s.readableEnded) {
          events.onReset(ResetCode.CONNECTION_RESET, 'edge');
          stream.reset(ResetCode.CONNECTION_RESET);
        }
        finish();
      });
    },
    (err) => {
      if (closed) return;
      const code = dialCode(err);
      events.onDialError(code, err);
      stream.reset(code);
      finish();
    },
  );
}
