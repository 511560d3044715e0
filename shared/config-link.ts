/**
 * A `passage://` config link: every setting the extension needs, in one string a user can paste
 * (the companion prints one; the options page exports and imports them). base64url JSON, so it
 * survives chat apps and URL bars.
 */
import { SettingsError } from './errors.ts';

export interface PassageSettings {
  /** The edge's meek URL (https:// unless on loopback). */
  edgeUrl: string;
  authToken: string;
  bridgePort: number;
  pairingToken: string;
  transport: 'auto' | 'webtransport' | 'meek';
  /** Parallel meek sessions (1–8). */
  sessions: number;
  /** Keep WebRTC off non-proxied UDP while any site is proxied. */
  guardWebRtc: boolean;
  /** sha-256 (hex) of the edge's self-signed WebTransport certificates, pinned until discovery refreshes them. */
  webtransportHashes: string[];
  /** Seconds after a fallback to meek before WebTransport is tried again. */
  webtransportRetrySeconds: number;
}

/** A certificate hash as discovery and config links carry it. */
export const isCertificateHash = (h: unknown): h is string => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h);

const PREFIX = 'passage://config/';

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function encodeConfigLink(settings: Partial<PassageSettings>): string {
  return PREFIX + toBase64Url(new TextEncoder().encode(JSON.stringify(settings)));
}

/** Reads a config link; only known fields of the right type survive, anything else is an error. */
export function decodeConfigLink(link: string): Partial<PassageSettings> {
  const bad = (why: string) => new SettingsError('CONFIG_LINK', `not a Passage config link: ${why}`);
  const trimmed = link.trim();
  if (!trimmed.startsWith(PREFIX) || trimmed.length > 8192) throw bad('wrong prefix or too long');
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(trimmed.slice(PREFIX.length))));
  } catch {
    throw bad('undecodable');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not an object');
  const d = data as Record<string, unknown>;
  const out: Partial<PassageSettings> = {};
  if (typeof d.edgeUrl === 'string') out.edgeUrl = d.edgeUrl;
  if (typeof d.authToken === 'string') out.authToken = d.authToken;
  if (typeof d.pairingToken === 'string') out.pairingToken = d.pairingToken;
  if (Number.isInteger(d.bridgePort) && (d.bridgePort as number) > 0 && (d.bridgePort as number) < 65536) out.bridgePort = d.bridgePort as number;
  if (d.transport === 'auto' || d.transport === 'webtransport' || d.transport === 'meek') out.transport = d.transport;
  if (Number.isInteger(d.sessions) && (d.sessions as number) >= 1 && (d.sessions as number) <= 8) out.sessions = d.sessions as number;
  if (typeof d.guardWebRtc === 'boolean') out.guardWebRtc = d.guardWebRtc;
  if (Array.isArray(d.webtransportHashes) && d.webtransportHashes.length <= 4 && d.webtransportHashes.every(isCertificateHash)) out.webtransportHashes = d.webtransportHashes;
  if (Number.isInteger(d.webtransportRetrySeconds) && (d.webtransportRetrySeconds as number) >= 1 && (d.webtransportRetrySeconds as number) <= 86_400) {
    out.webtransportRetrySeconds = d.webtransportRetrySeconds as number;
  }
  return out;
}
