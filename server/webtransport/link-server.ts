/**
 * The edge's end of the WebTransport front's link (shared/webtransport-link.ts): a Unix socket in
 * a private folder. Each connection asks whether a session may open — the edge's own path, token
 * and session-limit checks answer — and then carries a ReMux acceptor whose streams go through
 * the same relay, dialer and policy as meek's remux mode.
 */
import net from 'node:net';
import { concat } from '../../shared/bytes.ts';
import { decodeSessionRequest, encodeSessionAnswer, type SessionRequest } from '../../shared/webtransport-link.ts';
import type { Dial } from '../exit/dialer.ts';
import type { ExitBudget, ExitEvents } from '../exit/exit-mux.ts';
import { carrySession, type CarriedSession } from '../exit/carried-session.ts';

/** A front that connects and never asks is dropped. */
const HELLO_TIMEOUT_MS = 5000;

export interface LinkServerOptions {
  /** Where to listen: a path inside a folder only this user can enter. */
  socketPath: string;
  /** 200 opens the session; any other status refuses it (the front answers the browser with it). */
  decide(request: SessionRequest): number;
  maxStreams: number;
  budget: ExitBudget;
  /** Unsent bytes toward the front above which the mux pauses (the session's downstream share). */
  downstreamLimit: number;
  dial: Dial;
  events: ExitEvents;
  onSessionOpen(): void;
  onSessionClose(): void;
}

export interface LinkServer {
  /**
   * Draining: ends each session's streams that sit at a quiet moment, and each session left with
   * none (the client then falls back to meek and rediscovers, through the balancer, another edge).
   */
  closeQuiet(quietMs: number): void;
  close(): Promise<void>;
}

export async function startLinkServer(o: LinkServerOptions): Promise<LinkServer> {
  const { socketPath } = o;
  const open = new Set<net.Socket>();
  const sessions = new Set<CarriedSession>();

  const server = net.createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    let buf: Uint8Array = new Uint8Array(0);
    const onHello = (chunk: Buffer) => {
      buf = concat([buf, chunk]);
      let hello: ReturnType<typeof decodeSessionRequest>;
      try {
        hello = decodeSessionRequest(buf);
      } catch {
        return void socket.destroy();
      }
      if (!hello) return;
      socket.off('data', onHello);
      socket.setTimeout(0);
      const status = o.decide(hello.request);
      socket.write(encodeSessionAnswer(status));
      if (status !== 200) return void socket.end();
      serveSession(socket, hello.rest);
    };
    socket.on('data', onHello);
  });

  const serveSession = (socket: net.Socket, early: Uint8Array) => {
    o.onSessionOpen();
    const session = carrySession(
      {
        get writable() {
          return !socket.destroyed;
        },
        send: (chunks) => {
          // One write for the flush's frames (a writev), not one per header and payload.
          socket.cork();
          for (const c of chunks) socket.write(c);
          socket.uncork();
        },
        get backlog() {
          return socket.writableLength;
        },
        close: () => socket.end(),
      },
      o,
    );
    sessions.add(session);
    socket.on('drain', () => session.drained());
    socket.on('data', (chunk: Buffer) => session.receive(chunk));
    socket.on('close', () => {
      sessions.delete(session);
      session.end();
      o.onSessionClose();
    });
    if (early.length > 0) session.receive(early);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    closeQuiet(quietMs) {
      for (const session of sessions) session.closeQuiet(quietMs);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
