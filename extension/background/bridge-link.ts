/**
 * The link to the companion's bridge (PROTOCOL.md §5): a WebSocket to 127.0.0.1 carrying a ReMux
 * byte stream on which the bridge opens one stream per browser connection. Reconnects with
 * backoff; a PING at least every 15 s keeps the connection — and this service worker — alive.
 */
import { concat } from '../../shared/bytes.ts';
import { Mux } from '../../shared/remux/mux.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

const HIGH_WATER = 1024 * 1024;

const KEEPALIVE_MS = 15_000;

/** Why the link is down, for the popup to put in words: no token yet, nothing listening, or the bridge refused us. */
export type LinkProblem = 'not-paired' | 'not-running' | 'refused' | 'closed';

export interface LinkState {
  linked: boolean;
  rttMs: number | null;
  error: string | null;
  problem: LinkProblem | null;
}

/**
 * Whether something answers HTTP on the bridge's port. A refused WebSocket upgrade (403: wrong
 * pairing token, or another extension id) looks like "nothing there" to a page; the bridge's
 * own /status tells the two apart.
 */
async function bridgeAnswers(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/status`, { cache: 'no-store', credentials: 'omit', signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

export class BridgeLink {
  private socket: WebSocket | null = null;
  private mux: Mux | null = null;
  private retryMs = 100;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private keepalive: ReturnType<typeof setInterval> | null = null;
  private target: { port: number; token: string } | null = null;
  readonly state: LinkState = { linked: false, rttMs: null, error: null, problem: null };

  constructor(private readonly onStream: (stream: MuxStream) => void) {}

  /** Links to the bridge at `port` (reconnecting if the target changed); no-op when already linked there. */
  connect(port: number, token: string): void {
    if (this.target && this.target.port === port && this.target.token === token && (this.socket || this.timer)) return;
    this.disconnect();
    this.target = { port, token };
    if (!token) {
      this.state.error = 'not paired: no pairing token in the options';
      this.state.problem = 'not-paired';
      return;
    }
    this.open();
  }

  disconnect(): void {
    this.target = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.teardown();
  }

  private open(): void {
    const target = this.target;
    if (!target) return;
    this.timer = null;
    const socket = new WebSocket(`ws://127.0.0.1:${target.port}/link?token=${encodeURIComponent(target.token)}`);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    let waiting = false;
    const mux = new Mux({
      role: 'acceptor',
      maxStreams: 4096,
      sink: {
        write(chunks) {
          if (socket.readyState !== WebSocket.OPEN) return true;
          socket.send((chunks.length === 1 ? chunks[0]! : concat(chunks)) as Uint8Array<ArrayBuffer>);
          if (socket.bufferedAmount < HIGH_WATER) return true;
          // Browsers have no drain event for WebSockets: look again shortly.
          if (!waiting) {
            waiting = true;
            const check = () => {
              if (socket.bufferedAmount < HIGH_WATER / 2 || socket.readyState !== WebSocket.OPEN) {
                waiting = false;
                mux.resume();
              } else setTimeout(check, 5);
            };
            setTimeout(check, 5);
          }
          return false;
        },
      },
      onStream: (s) => this.onStream(s),
      onClose: () => socket.close(),
    });
    this.mux = mux;
    socket.onopen = () => {
      this.retryMs = 100;
      this.state.linked = true;
      this.state.error = null;
      this.state.problem = null;
      this.keepalive = setInterval(() => {
        mux.ping().then((rtt) => (this.state.rttMs = rtt), () => {});
      }, KEEPALIVE_MS);
      mux.ping().then((rtt) => (this.state.rttMs = rtt), () => {});
    };
    socket.onmessage = (ev) => mux.receive(new Uint8Array(ev.data as ArrayBuffer));
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      const wasLinked = this.state.linked;
      this.teardown();
      this.state.error = `link closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
      if (ev.code === 1006 && !wasLinked) {
        void bridgeAnswers(target.port).then((answers) => {
          if (this.target !== target || this.state.linked) return;
          this.state.problem = answers ? 'refused' : 'not-running';
          this.state.error = answers ? 'the companion refused the pairing token' : 'nothing answers on the bridge port';
        });
      } else this.state.problem = 'closed';
      if (this.target) {
        this.timer = setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 5000);
      }
    };
  }

  private teardown(): void {
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    this.mux?.destroy(undefined, ResetCode.CANCELLED);
    this.mux = null;
    const s = this.socket;
    this.socket = null;
    if (s && s.readyState <= WebSocket.OPEN) s.close();
    this.state.linked = false;
  }
}
