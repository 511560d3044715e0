/**
 * Firefox steers per request (docs/PLATFORM.md, "Firefox"): it ignores Chromium's PAC settings and
 * asks `proxy.onRequest` instead. The answer comes from the same `decide` as the Chromium PAC
 * (lib/rules.ts), and it fails closed the same way: a tunneled site gets the bridge alone (no
 * direct fallback), and while the rules cannot be read no request goes direct at all.
 */
import { basicProxyAuthorization } from '../../shared/bridge-credential.ts';

export type FirefoxProxyInfo =
  | { type: 'direct' }
  | { type: 'http'; host: string; port: number; proxyAuthorizationHeader?: string; failoverTimeout?: number };

/** What Firefox cannot use: a request sent here fails (the discard port on loopback, refused). */
export const NOWHERE: FirefoxProxyInfo = { type: 'http', host: '127.0.0.1', port: 9 };

export interface SteeringState {
  /** The rules were read: false while the store cannot be read. */
  loaded: boolean;
  decide(host: string): { tunnel: boolean };
  bridgePort: number;
  pairingToken: string;
}

/**
 * The proxy for a request to `host`, with the bridge's credential as `proxyAuthorizationHeader`.
 * Measured (docs/PLATFORM.md): Firefox still sent the session's first CONNECT without it; the
 * bridge's one 407 was answered by onAuthRequired, and Firefox sent the credential from then on.
 */
export function proxyFor(host: string, s: SteeringState): FirefoxProxyInfo {
  if (!s.loaded) return NOWHERE;
  if (!s.decide(host).tunnel) return { type: 'direct' };
  return {
    type: 'http',
    host: '127.0.0.1',
    port: s.bridgePort,
    ...(s.pairingToken ? { proxyAuthorizationHeader: basicProxyAuthorization(s.pairingToken) } : {}),
  };
}
