/** What discovery (PROTOCOL.md §4) learns the edge offers besides meek: the shapes the tunnel, its transports and the store share. */
import type { IceServer } from '../lib/peer-port.ts';

export interface WebTransportOffer {
  url: string;
  certificateHashes: string[];
}

export interface TurnOffer {
  iceServers: IceServer[];
  /** When the credentials stop working (ms since the epoch). */
  expiresAt: number;
}
