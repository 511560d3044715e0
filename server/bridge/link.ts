/**
 * The extension's link (PROTOCOL.md §5): one WebSocket at a time carrying a ReMux byte stream on
 * which the bridge opens a stream per browser connection. A newly authenticated link replaces
 * the old one (a restarted service worker may reconnect before the old socket is seen dead).
 */
import type { WebSocket } from 'ws';
import { Mux } from '../../shared/remux/mux.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { Logger } from 'pino';

/** Above this much unsent link data the mux stops sending stream data until the socket drains. */
const LINK_HIGH_WATER = 1024 * 1024;

export interface Link {
  readonly mux: Mux;
  readonly socket: WebSocket;
}

export class LinkManager {
  private current: Link | null = null;
  private waiters: Array<(link: Link | null) => void> = [];

  constructor(private readonly logger: Logger) {}

  get link(): Link | null {
    return this.current;
  }

  /** Adopts an authenticated WebSocket as the link, replacing any previous one. */
  adopt(socket: WebSocket): void {
    const old = this.current;
    let blocked = false;
    const mux = new Mux({
      role: 'opener',
      maxStreams: 4096,
      sink: {
        write(chunks) {
          if (socket.readyState !== socket.OPEN) return true;
          const message = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          socket.send(message, () => {
            if (blocked && socket.bufferedAmount < LINK_HIGH_WATER / 2) {
              blocked = false;
              mux.resume();
            }
          });
          if (socket.bufferedAmount >= LINK_HIGH_WATER) blocked = true;
          return !blocked;
        },
      },
      onClose: (error) => {
        // Only a protocol error closes with 1002; a replaced or ending link is closed by its owner.
        if (!error) return;
        this.logger.warn({ code: error.code }, 'link protocol error');
        socket.close(1002, 'protocol error');
      },
    });
    const link: Link = { mux, socket };
    this.current = link;
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return void socket.close(1003, 'binary only');
      mux.receive(data);
    });
    socket.on('close', () => {
      mux.destroy(undefined, ResetCode.CANCELLED);
      if (this.current === link) {
        this.current = null;
        this.logger.info('extension unlinked');
      }
    });
    socket.on('error', () => socket.terminate());
    if (old) {
      this.logger.info('a new link replaces the old one');
      old.mux.destroy(undefined, ResetCode.CANCELLED);
      old.socket.close(1000, 'replaced');
    } else this.logger.info('extension linked');
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(link);
  }

  /** The link, waiting up to `ms` for one to come (a stopped worker relinks within that). */
  waitForLink(ms: number): Promise<Link | null> {
    if (this.current) return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(null);
      }, ms);
      const done = (link: Link | null) => {
        clearTimeout(timer);
        resolve(link);
      };
      this.waiters.push(done);
    });
  }

  close(): void {
    this.current?.mux.destroy();
    this.current?.socket.close(1001, 'bridge shutting down');
    this.current = null;
  }
}
