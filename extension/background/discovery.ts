/**
 * Discovery (PROTOCOL.md §4): `GET <meek path>config`, authenticated like meek, tells the client
 * the edge's WebTransport URL and the certificate hashes to pin. The answer is kept, so a client
 * that cannot ask (edge briefly down) still knows where WebTransport was; hashes from a config
 * link are pinned too.
 */
import { isCertificateHash, type PassageSettings } from '../../shared/settings.ts';
import type { Store } from './store.ts';

export interface Offer {
  url: string;
  certificateHashes: string[];
}

function parseOffer(body: unknown): Offer | null {
  const wt = (body as { webtransport?: unknown } | null)?.webtransport;
  if (wt === null) return null;
  const o = wt as { url?: unknown; certificateHashes?: unknown } | undefined;
  if (typeof o?.url !== 'string' || !o.url.startsWith('https://') || !Array.isArray(o.certificateHashes) || !o.certificateHashes.every(isCertificateHash)) {
    throw new Error('the edge sent a malformed WebTransport offer');
  }
  return { url: o.url, certificateHashes: o.certificateHashes };
}

const withPins = (offer: Offer, settings: PassageSettings): Offer => ({
  url: offer.url,
  certificateHashes: [...new Set([...offer.certificateHashes, ...settings.webtransportHashes])],
});

/** The offer, or why there is none: `edgeSaidNo` when the edge answered that it has none. */
export interface Discovery {
  offer: Offer | null;
  why: string;
  edgeSaidNo: boolean;
}

/** Asks the edge; the last answer is kept in `store` for when asking fails. */
export async function discover(settings: PassageSettings, store: Store): Promise<Discovery> {
  try {
    const res = await fetch(new URL('config', settings.edgeUrl), {
      headers: settings.authToken ? { 'x-meek-auth': settings.authToken } : {},
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      signal: AbortSignal.timeout(5000),
    });
    if (res.status !== 200) throw new Error(`the edge answered ${res.status}`);
    const offer = parseOffer(await res.json());
    if (!offer) return { offer: null, why: 'the edge offers no WebTransport', edgeSaidNo: true };
    await store.save('offer', { edgeUrl: settings.edgeUrl, ...offer, fetchedAt: Date.now() }).catch(() => undefined);
    return { offer: withPins(offer, settings), why: '', edgeSaidNo: false };
  } catch (e) {
    const stored = await store.load('offer').catch(() => undefined);
    if (stored && stored.edgeUrl === settings.edgeUrl) return { offer: withPins(stored, settings), why: '', edgeSaidNo: false };
    return { offer: null, why: `could not ask the edge (${(e as Error).message})`, edgeSaidNo: false };
  }
}
