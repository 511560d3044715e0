/**
 * The worker's side of the document that holds the WebRTC peers (lib/peer-port.ts, lib/peer-host.ts).
 * The document is made on demand and closed once no peer has been in use for IDLE_CLOSE_MS. In
 * Chromium it is an offscreen document (reason WEB_RTC) that greets the worker with a control port
 * through `navigator.serviceWorker`; a worker that restarted while the document lived asks it
 * (chrome.runtime) to greet again. Firefox's event page is a document: it hosts them itself.
 */
import { OFFSCREEN_RECONNECT, type ControlReply, type ControlRequest, type IceServer, type PeerPort, type RtcPeers } from '../lib/peer-port.ts';

const DOCUMENT = 'offscreen.html';
/** The document goes this long after its last peer closed. */
export const IDLE_CLOSE_MS = 10_000;
/** A document that has not greeted by then is not coming. */
const GREETING_DEADLINE_MS = 5000;

/** Where the document that hosts the peers comes from: Chromium's offscreen API, or the page itself. */
export interface PeerDocuments {
  /** Makes sure a document exists and will greet `peers` (greeting()) with its control port. */
  ensure(peers: OffscreenPeers): Promise<void>;
  close(): Promise<void>;
}

/** Chromium: an offscreen document (reason WEB_RTC) that greets through navigator.serviceWorker. */
export const offscreenDocuments: PeerDocuments = {
  async ensure() {
    const contexts = await chrome.runtime.getContexts({ contextTypes: [chrome.runtime.ContextType.OFFSCREEN_DOCUMENT] });
    if (contexts.length > 0) {
      // It outlived the worker that made it: ask it to greet this one.
      await chrome.runtime.sendMessage(OFFSCREEN_RECONNECT).catch(() => undefined);
      return;
    }
    await chrome.offscreen.createDocument({
      url: DOCUMENT,
      reasons: [chrome.offscreen.Reason.WEB_RTC],
      justification: 'WebRTC through a TURN server: the service worker has no RTCPeerConnection',
    });
  },
  close: () => chrome.offscreen.closeDocument().catch(() => undefined),
};

export class OffscreenPeers implements RtcPeers {
  private control: MessagePort | null = null;
  private greeted: Array<(port: MessagePort) => void> = [];
  private pending = new Map<number, { resolve(v: { sdp: string; port: PeerPort }): void; reject(e: Error): void }>();
  private nextId = 1;
  private live = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private creating: Promise<void> | null = null;

  constructor(private readonly documents: PeerDocuments = offscreenDocuments) {}

  /** worker.ts hands over every greeting it receives. */
  greeting(port: MessagePort): void {
    this.control?.close();
    this.control = port;
    port.onmessage = (e: MessageEvent) => this.reply(e.data as ControlReply, e.ports[0]);
    // A new document (or a reloaded one) lost its peers: what was asked of the old one is void.
    for (const p of this.pending.values()) p.reject(new Error('the offscreen document was replaced'));
    this.pending.clear();
    for (const resolve of this.greeted.splice(0)) resolve(port);
  }

  private reply(r: ControlReply, port: MessagePort | undefined): void {
    const p = this.pending.get(r.id);
    if (!p) return port?.close();
    this.pending.delete(r.id);
    if (r.t === 'failed' || !port) return p.reject(new Error(r.t === 'failed' ? r.why : 'the offscreen document sent no port'));
    this.live++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    let closed = false;
    const peer: PeerPort = {
      postMessage: (m, transfer) => port.postMessage(m, transfer ?? []),
      get onmessage() {
        return port.onmessage;
      },
      set onmessage(h) {
        port.onmessage = h;
      },
      close: () => {
        if (closed) return;
        closed = true;
        port.close();
        if (--this.live === 0) this.idleTimer = setTimeout(() => void this.closeDocument(), IDLE_CLOSE_MS);
      },
    };
    p.resolve({ sdp: r.sdp, port: peer });
  }

  private async controlPort(): Promise<MessagePort> {
    if (this.control) return this.control;
    const greeted = new Promise<MessagePort>((resolve, reject) => {
      this.greeted.push(resolve);
      setTimeout(() => reject(new Error('the offscreen document did not start')), GREETING_DEADLINE_MS);
    });
    this.creating ??= this.documents.ensure(this).finally(() => (this.creating = null));
    await this.creating;
    return greeted;
  }

  async offer(iceServers: IceServer[]): Promise<{ sdp: string; port: PeerPort }> {
    const control = await this.controlPort();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      control.postMessage({ t: 'offer', id, iceServers } satisfies ControlRequest);
    });
  }

  private async closeDocument(): Promise<void> {
    this.idleTimer = null;
    if (this.live > 0 || this.pending.size > 0) return;
    this.control?.close();
    this.control = null;
    await this.documents.close();
  }
}
