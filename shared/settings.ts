/**
 * The extension's settings: one type, its defaults and its one validator. The options page, the
 * config link and the worker all go through `checkSettings`, so a value is judged the same way
 * wherever it comes from, and a refusal says which setting and why.
 */
import { SettingsError } from './errors.ts';

export interface PassageSettings {
  /** The edge's meek URL (https:// unless on loopback). */
  edgeUrl: string;
  /** The edge's shared secret, sent in X-Meek-Auth; empty for an edge without one. */
  authToken: string;
  bridgePort: number;
  /** What the bridge wants on the link; empty until paired. */
  pairingToken: string;
  /** auto: WebTransport, then WebRTC through TURN, then meek (PROTOCOL.md §4); the others use that one alone. */
  transport: 'auto' | 'webtransport' | 'turn' | 'meek';
  /** Parallel meek sessions. */
  sessions: number;
  /** meek: try a streaming download (falls back to polling by itself where the path buffers). */
  meekStreaming: boolean;
  /** Random padding on meek requests and on the first frames of each stream (PROTOCOL.md §1.1, §2). */
  padding: boolean;
  /** Keep WebRTC off non-proxied UDP while any site is proxied. */
  guardWebRtc: boolean;
  /** sha-256 (hex) of the edge's self-signed WebTransport certificates, pinned until discovery refreshes them. */
  webtransportHashes: string[];
  /** Seconds after a fallback to meek before WebTransport and TURN are tried again. */
  webtransportRetrySeconds: number;
}

export const DEFAULT_SETTINGS: PassageSettings = {
  edgeUrl: 'http://127.0.0.1:8080/',
  authToken: '',
  bridgePort: 8081,
  pairingToken: '',
  transport: 'auto',
  sessions: 2,
  meekStreaming: true,
  padding: true,
  guardWebRtc: true,
  webtransportHashes: [],
  webtransportRetrySeconds: 60,
};

export const MAX_SESSIONS = 8;
export const MAX_PINNED_HASHES = 4;
export const MAX_RETRY_SECONDS = 86_400;

/** A certificate hash as discovery and config links carry it. */
export const isCertificateHash = (h: unknown): h is string => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h);

/** The edge must be reached over TLS unless it is on this machine. */
export function edgeUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'the edge URL is not a URL';
  }
  if (u.username || u.password) return 'the edge URL must not carry credentials (use the auth token)';
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
  if (u.protocol === 'https:' || (u.protocol === 'http:' && loopback)) return null;
  return 'the edge URL must be https:// (plain http:// only for an edge on this machine)';
}

const wholeIn = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Each setting's rule: the problem with `v`, or null when it may be used. */
const RULES: { [K in keyof PassageSettings]: (v: unknown) => string | null } = {
  edgeUrl: (v) => (typeof v === 'string' ? edgeUrlProblem(v) : 'the edge URL must be text'),
  authToken: (v) => (typeof v === 'string' && /^[\x21-\x7e]*$/.test(v) ? null : 'the auth token must be printable ASCII without spaces'),
  bridgePort: (v) => (wholeIn(v, 1, 65535) ? null : 'the bridge port must be 1–65535'),
  pairingToken: (v) => (typeof v === 'string' && /^[A-Za-z0-9_-]*$/.test(v) ? null : 'the pairing token holds only letters, digits, - and _'),
  transport: (v) => (v === 'auto' || v === 'webtransport' || v === 'turn' || v === 'meek' ? null : 'the transport must be auto, webtransport, turn or meek'),
  sessions: (v) => (wholeIn(v, 1, MAX_SESSIONS) ? null : `parallel sessions must be 1–${MAX_SESSIONS}`),
  meekStreaming: (v) => (typeof v === 'boolean' ? null : 'streaming downloads are on or off'),
  padding: (v) => (typeof v === 'boolean' ? null : 'padding is on or off'),
  guardWebRtc: (v) => (typeof v === 'boolean' ? null : 'the WebRTC guard is on or off'),
  webtransportHashes: (v) =>
    Array.isArray(v) && v.length <= MAX_PINNED_HASHES && v.every(isCertificateHash) ? null : `pinned certificate hashes are up to ${MAX_PINNED_HASHES} sha-256 values in hex`,
  webtransportRetrySeconds: (v) => (wholeIn(v, 1, MAX_RETRY_SECONDS) ? null : `the WebTransport retry delay must be 1–${MAX_RETRY_SECONDS} seconds`),
};

const KEYS = Object.keys(RULES) as Array<keyof PassageSettings>;

/**
 * The known settings in `data`, each checked; a known setting with a bad value is refused
 * (SettingsError, naming it), unknown fields are ignored (a newer version's link still imports).
 */
export function checkSettingsPatch(data: unknown): Partial<PassageSettings> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new SettingsError('INVALID_SETTING', 'settings must be an object');
  const d = data as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of KEYS) {
    if (!(key in d)) continue;
    const problem = RULES[key](d[key]);
    if (problem) throw new SettingsError('INVALID_SETTING', problem);
    out[key] = d[key];
  }
  return out as Partial<PassageSettings>;
}

/** A whole set of settings, every field present and valid. */
export function checkSettings(data: unknown): PassageSettings {
  const patch = checkSettingsPatch(data);
  const missing = KEYS.filter((k) => !(k in patch));
  if (missing.length > 0) throw new SettingsError('INVALID_SETTING', `settings lack ${missing.join(', ')}`);
  return patch as PassageSettings;
}
