/**
 * The messages between the service worker and the offscreen document that holds its WebRTC peers
 * (service workers have no RTCPeerConnection). One control port per document: the worker asks
 * for a peer, the document answers with the peer's offer and a port of its own. On a peer's port,
 * an ArrayBuffer (transferred, never copied: docs/PLATFORM.md) is the next bytes of the data
 * channel's byte stream; anything else is one of these messages.
 */
/** A TURN server as RTCPeerConnection takes it, with the credentials discovery handed out. */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

/** worker → document, control port */
export type ControlRequest = { t: 'offer'; id: number; iceServers: IceServer[] };
/** document → worker, control port; a peer's port travels with `offered`. */
export type ControlReply = { t: 'offered'; id: number; sdp: string } | { t: 'failed'; id: number; why: string };
/** worker → document, peer port (besides bytes) */
export type PeerRequest = { t: 'answer'; sdp: string } | { t: 'close' };
/**
 * document → worker, peer port (besides bytes). `ack`: this many bytes the worker sent have left
 * the data channel's buffer — the worker keeps what is unacknowledged bounded.
 */
export type PeerEvent = { t: 'open' } | { t: 'ack'; n: number } | { t: 'closed'; why: string };

/** What the worker needs of a message port (a MessagePort; a Node one in tests). */
export interface PeerPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
  close(): void;
}

/** The worker's side of the offscreen document (background/offscreen-peers.ts). */
export interface RtcPeers {
  /** A new relay-only peer with its `remux` data channel: the offer (every candidate in it) and the peer's port; closing the port ends the peer. */
  offer(iceServers: IceServer[]): Promise<{ sdp: string; port: PeerPort }>;
}

/** Greeting a document sends the worker with its control port. */
export const OFFSCREEN_HELLO = 'passage-offscreen';
/** What the worker sends (chrome.runtime) to make an existing document greet it again: a worker that restarted. */
export const OFFSCREEN_RECONNECT = 'passage-offscreen-reconnect';
