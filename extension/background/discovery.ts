/**
 * Discovery (PROTOCOL.md §4): `GET <meek path>config`, authenticated like meek, tells the client
 * what the edge offers besides meek: its WebTransport URL and the certificate hashes to pin, and
 * TURN servers with short-lived credentials (§4.1). The answer is kept, so a client that cannot
 * ask (edge briefly down) still knows where WebTransport was and, until they expire, the TURN
 * credentials; hashes from a config link are pinned too.
 */
import { isCertificateHash, type PassageSettings } from '../../shared/settings.ts';
import type { IceServer } from '../lib/peer-port.ts';
import type { TurnOffer, WebTransportOffer } from './offers.ts';
import type { Store } from './store.ts';

/** What the edge offers. A kind is null when the edge said it has none, or could not be asked and nothing usable is kept. */
export interface Discovery {
  webtransport: WebTransportOffer | null;
  turn: TurnOffer | null;
  /** Why the edge could not be asked (the offers are then what was kept); null when it answered. */
  unreachable: string | null;
}

/** Stored TURN credentials are used only while this much of their life is left (a session needs them to refresh its allocation). */
const TURN_MARGIN_MS = 5 * 60_000;
const MAX_ICE_SERVERS = 4;

const malformed = (what: string) => new Error(`the edge sent a malformed ${what} offer`);

function parseWebTransport(wt: unknown): WebTransportOffer | null {
  if (wt === null || wt === undefined) return null;
  const o = wt as { url?: unknown; certificateHashes?: unknown };
  if (typeof o.url !== 'string' || !o.url.startsWith('https://') || !Array.isArray(o.certificateHashes) || !o.certificateHashes.every(isCertificateHash)) {
    throw malformed('WebTransport');
  }
  return { url: o.url, certificateHashes: o.certificateHashes };
}

const isTurnUrl = (u: unknown): u is string => typeof u === 'string' && /^turns?:[^\s]+$/.test(u) && u.length <= 512;

function parseTurn(turn: unknown): TurnOffer | null {
  if (turn === null || turn === undefined) return null;
  const o = turn as { iceServers?: unknown; expiresAt?: unknown };
  const servers = o.iceServers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.length > MAX_ICE_SERVERS || typeof o.expiresAt !== 'number' || !Number.isFinite(o.expiresAt)) throw malformed('TURN');
  const iceServers = servers.map((s: unknown): IceServer => {
    const e = s as { urls?: unknown; username?: unknown; credential?: unknown };
    const urls = typeof e.urls === 'string' ? [e.urls] : e.urls;
    if (!Array.isArray(urls) || urls.length === 0 || !urls.every(isTurnUrl) || typeof e.username !== 'string' || typeof e.credential !== 'string') throw malformed('TURN');
    return { urls, username: e.username, credential: e.credential };
  });
  return { iceServers, expiresAt: o.expiresAt };
}

const withPins = (offer: WebTransportOffer | null, settings: PassageSettings): WebTransportOffer | null =>
  offer && { url: offer.url, certificateHashes: [...new Set([...offer.certificateHashes, ...settings.webtransportHashes])] };

/** Asks the edge; the last answer is kept in `store` for when asking fails. */
export async function discover(settings: PassageSettings, store: Store, now: () => number = Date.now): Promise<Discovery> {
  try {
    const res = await fetch(new URL('config', settings.edgeUrl), {
      headers: settings.authToken ? { 'x-meek-auth': settings.authToken } : {},
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      signal: AbortSignal.timeout(5000),
    });
    if (res.status !== 200) throw new Error(`the edge answered ${res.status}`);
    const body = (await res.json()) as { webtransport?: unknown; turn?: unknown } | null;
    const webtransport = parseWebTransport(body?.webtransport);
    const turn = parseTurn(body?.turn);
    await store.save('offer', { edgeUrl: settings.edgeUrl, webtransport, turn, fetchedAt: now() }).catch(() => undefined);
    return { webtransport: withPins(webtransport, settings), turn, unreachable: null };
  } catch (e) {
    const why = `could not ask the edge (${(e as Error).message})`;
    const stored = await store.load('offer').catch(() => undefined);
    if (!stored || stored.edgeUrl !== settings.edgeUrl) return { webtransport: null, turn: null, unreachable: why };
    const turn = stored.turn && stored.turn.expiresAt - now() > TURN_MARGIN_MS ? stored.turn : null;
    return { webtransport: withPins(stored.webtransport ?? null, settings), turn, unreachable: why };
  }
}
