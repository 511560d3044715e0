/**
 * Failed resources (as ZeroOmega lists them): while a tab shows a tunneled site, requests of that
 * page to hosts that went direct and failed — not resolved, reset, timed out — are kept per tab,
 * so the popup can offer to tunnel them too. Memory only; a tab's list starts again with each
 * page it loads.
 */
import { asciiHost } from '../lib/rules.ts';

/** Chromium's errors that a censor's interference looks like (a cancelled or blocked request is none of them). */
const CENSOR_LIKE = new Set([
  'net::ERR_NAME_NOT_RESOLVED',
  'net::ERR_CONNECTION_RESET',
  'net::ERR_CONNECTION_CLOSED',
  'net::ERR_CONNECTION_REFUSED',
  'net::ERR_CONNECTION_TIMED_OUT',
  'net::ERR_TIMED_OUT',
  'net::ERR_ADDRESS_UNREACHABLE',
  'net::ERR_SSL_PROTOCOL_ERROR',
  'net::ERR_EMPTY_RESPONSE',
  'net::ERR_QUIC_PROTOCOL_ERROR',
]);

/**
 * Firefox names the same failures its own way (webRequest.onErrorOccurred's `error`): they are
 * kept under Chromium's names, so the popup puts both in the same words.
 */
const FIREFOX_NAMES: Readonly<Record<string, string>> = {
  NS_ERROR_UNKNOWN_HOST: 'net::ERR_NAME_NOT_RESOLVED',
  NS_ERROR_NET_RESET: 'net::ERR_CONNECTION_RESET',
  NS_ERROR_NET_INTERRUPT: 'net::ERR_CONNECTION_CLOSED',
  NS_ERROR_CONNECTION_REFUSED: 'net::ERR_CONNECTION_REFUSED',
  NS_ERROR_NET_TIMEOUT: 'net::ERR_CONNECTION_TIMED_OUT',
  NS_ERROR_NET_EMPTY_RESPONSE: 'net::ERR_EMPTY_RESPONSE',
};

/** Per tab; a page with more failing hosts than this shows the first ones. */
const MAX_PER_TAB = 50;

export interface FailedResource {
  host: string;
  error: string;
  at: number;
}

export class FailedResources {
  private readonly byTab = new Map<number, Map<string, FailedResource>>();

  /** A request of tab `tabId` failed; `tunneled` says whether its host goes through Passage. */
  note(tabId: number, url: string, reported: string, tunneled: (host: string) => boolean, now: number): void {
    const error = FIREFOX_NAMES[reported] ?? reported;
    if (tabId < 0 || !CENSOR_LIKE.has(error)) return;
    let host: string | null;
    try {
      host = asciiHost(new URL(url).hostname);
    } catch {
      return;
    }
    if (!host || tunneled(host)) return;
    let list = this.byTab.get(tabId);
    if (!list) this.byTab.set(tabId, (list = new Map()));
    if (list.size < MAX_PER_TAB || list.has(host)) list.set(host, { host, error, at: now });
  }

  /** The tab loads a new page (or closed): its list starts again. */
  reset(tabId: number): void {
    this.byTab.delete(tabId);
  }

  /** The tab's failed hosts that still go direct. */
  list(tabId: number, tunneled: (host: string) => boolean): FailedResource[] {
    return [...(this.byTab.get(tabId)?.values() ?? [])].filter((f) => !tunneled(f.host));
  }
}
