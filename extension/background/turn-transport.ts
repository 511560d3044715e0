/**
 * WebRTC through TURN (PROTOCOL.md §4.1): one relay-only peer connection, held by the offscreen
 * document, whose `remux` data channel carries a ReMux byte stream to the edge; every tunneled
 * connection is one ReMux stream, as over meek. The worker signals through the edge (its offer
 * posted to `<path>rtc`), runs the mux, and moves bytes to and from the document over a message
 * port with transferred buffers. Same surface as WebTransport: `ready` settles with the handshake,
 * `closed` resolves when the session ends.
 */
import { concat } from '../../shared/bytes.ts';
import { systemClock, type Clock } from '../../shared/clock.ts';
import type { Destination } from '../../shared/eagersocks.ts';
// The window a stream may grow to in the extension, as on meek (the path may be long).
import { extensionAutotune } from '../../shared/meek/meek-mux.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import { Mux } from '../../shared/remux/mux.ts';
import { defaultPadding } from '../../shared/remux/padding.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import type { PeerEvent, PeerPort, PeerRequest, RtcPeers } from '../lib/peer-port.ts';
import type { TurnOffer } from './offers.ts';
import { DEAD_AFTER_MS, KEEPALIVE_EVERY_MS, type SessionTransport, type TransportState } from './transport.ts';

/** Bytes handed to the document and not yet out of the data channel's buffer, above which the mux waits. */
export const SEND_LIMIT = 1024 * 1024;

export interface TurnTransportDeps {
  peers: RtcPeers;
  /** Posts the offer to the edge and returns its answer (throws with why not). */
  signal(offerSdp: string): Promise<string>;
  clock?: Clock;
}

export class TurnTransport implements SessionTransport {
  readonly state: TransportState = { name: 'turn', reachable: null, rttMs: null, error: null, sessions: 0, detail: null, problem: null };
  readonly ready: Promise<void>;
  readonly closed: Promise<string>;
  private readonly mux: Mux;
  private readonly clock: Clock;
  private port: PeerPort | null = null;
  private unacked = 0;
  private paused = false;
  private ended = false;
  private end!: (why: string) => void;
  private opened!: () => void;
  private pingTimer: unknown = null;
  private lastHeard = 0;

  constructor(offer: TurnOffer, deps: TurnTransportDeps, handshakeTimeoutMs: number, padding = false) {
    this.clock = deps.clock ?? systemClock;
    this.closed = new Promise<string>((resolve) => (this.end = resolve));
    void this.closed.then((why) => {
      this.ended = true;
      this.state.sessions = 0;
      this.state.error ??= why;
      this.shutdown();
    });
    this.mux = new Mux({
      role: 'opener',
      maxStreams: 1024,
      ...(padding ? { padding: defaultPadding(() => this.clock.random()) } : {}),
      autotune: extensionAutotune(() => this.state.rttMs),
      sink: { write: (chunks) => this.send(chunks) },
      onClose: (error) => this.end(error ? `the edge's mux ended: ${error.message}` : 'closed'),
    });
    const opened = new Promise<void>((resolve) => (this.opened = resolve));
    let timer: unknown;
    const deadline = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new Error(`no data channel within ${handshakeTimeoutMs / 1000} s`)), handshakeTimeoutMs);
    });
    const handshake = (async () => {
      const { sdp, port } = await deps.peers.offer(offer.iceServers);
      if (this.ended) return port.close();
      this.port = port;
      port.onmessage = (e) => this.receive(e.data);
      const answer = await deps.signal(sdp);
      if (this.ended) return;
      this.post({ t: 'answer', sdp: answer });
      await opened;
    })();
    this.ready = Promise.race([handshake, deadline, this.closed.then((why) => Promise.reject(new Error(why)))]).then(
      () => {
        this.clock.clearTimeout(timer);
        this.state.reachable = true;
        this.state.sessions = 1;
        this.lastHeard = this.clock.now();
        this.keepAlive();
      },
      (e: unknown) => {
        this.clock.clearTimeout(timer);
        this.state.reachable = false;
        this.state.error = (e as Error).message;
        this.end(this.state.error);
        throw new Error(this.state.error);
      },
    );
    handshake.catch(() => undefined);
  }

  private post(message: PeerRequest): void {
    this.port?.postMessage(message);
  }

  /** The mux's next bytes, as one transferred buffer; false (the mux waits) while too much is unacknowledged. */
  private send(chunks: Uint8Array[]): boolean {
    if (!this.port || this.ended) return true;
    const buffer = concat(chunks);
    const n = buffer.length;
    this.port.postMessage(buffer.buffer, [buffer.buffer]);
    this.unacked += n;
    this.paused = this.unacked >= SEND_LIMIT;
    return !this.paused;
  }

  private receive(data: unknown): void {
    if (this.ended) return;
    if (data instanceof ArrayBuffer) {
      // Only bytes from the edge count as hearing from it; the document's own messages say nothing of the path.
      this.lastHeard = this.clock.now();
      return this.mux.receive(new Uint8Array(data));
    }
    const event = data as PeerEvent;
    if (event.t === 'open') this.opened();
    else if (event.t === 'ack') {
      this.unacked = Math.max(0, this.unacked - event.n);
      if (this.paused && this.unacked < SEND_LIMIT) {
        this.paused = false;
        this.mux.resume();
      }
    } else if (event.t === 'closed') this.end(event.why);
  }

  /**
   * A PING a second: its answer is the RTT the popup shows; nothing heard for 3 s (bytes or an
   * answer) ends the session — ICE alone takes far longer to call a path with a dead relay failed.
   */
  private keepAlive(): void {
    this.pingTimer = this.clock.setTimeout(() => {
      this.pingTimer = null;
      if (this.ended) return;
      if (this.clock.now() - this.lastHeard > DEAD_AFTER_MS) return this.end(`no answer from the edge for ${DEAD_AFTER_MS / 1000} s`);
      this.mux.ping().then((rtt) => (this.state.rttMs = Math.round(rtt)), () => undefined);
      this.keepAlive();
    }, KEEPALIVE_EVERY_MS);
  }

  open(destination: Destination): MuxStream {
    if (this.ended) throw new Error(this.state.error ?? 'the TURN session has ended');
    return this.mux.open(destination);
  }

  private shutdown(): void {
    if (this.pingTimer !== null) this.clock.clearTimeout(this.pingTimer);
    this.pingTimer = null;
    this.mux.destroy(undefined, ResetCode.CANCELLED);
    this.post({ t: 'close' });
    this.port?.close();
    this.port = null;
  }

  close(): void {
    this.end('closed');
  }
}
