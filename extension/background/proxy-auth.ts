/**
 * The bridge asks every proxied request for its credential (407, Basic `passage:<pairing token>`),
 * so no other process or user on the machine can tunnel through it. Chromium asks the extension
 * (webRequest.onAuthRequired); this answers for the bridge's own challenge and for nothing else,
 * and once per request: a second challenge for the same request means the token is wrong, and
 * answering again would loop.
 */
import { PROXY_USER } from '../../shared/bridge-credential.ts';
import type { PassageSettings } from '../../shared/settings.ts';

export interface AuthChallenge {
  requestId: string;
  isProxy: boolean;
  challenger: { host: string; port: number };
}

export type AuthAnswer = { authCredentials: { username: string; password: string } } | { cancel: true } | Record<string, never>;

/**
 * Request ids remembered at most. Ids are never reused, so none needs forgetting; the set is
 * emptied when full (no listener on every request's end is worth waking the worker for).
 */
const REMEMBERED = 1000;

export class ProxyAuth {
  private readonly answered = new Set<string>();

  answer(challenge: AuthChallenge, settings: Pick<PassageSettings, 'bridgePort' | 'pairingToken'>): AuthAnswer {
    const bridge = challenge.isProxy && ['127.0.0.1', 'localhost'].includes(challenge.challenger.host) && challenge.challenger.port === settings.bridgePort;
    if (!bridge) return {}; // a site's or another proxy's challenge: the browser's own business
    if (!settings.pairingToken || this.answered.has(challenge.requestId)) return { cancel: true };
    if (this.answered.size >= REMEMBERED) this.answered.clear();
    this.answered.add(challenge.requestId);
    return { authCredentials: { username: PROXY_USER, password: settings.pairingToken } };
  }

}
