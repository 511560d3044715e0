/**
 * What the background needs from its browser, in one interface (docs/PLATFORM.md, "Firefox"):
 * how chosen sites are steered, how proxy errors and the bridge's credential reach the engine,
 * how the pages reach the api, and where WebRTC peers live. worker.ts picks the implementation
 * once; nothing else asks which browser it runs in.
 */
import type { PassageApi } from '../lib/api.ts';
import type { RtcPeers } from '../lib/peer-port.ts';
import type { Rules } from '../lib/rules.ts';
import type { Engine } from './engine.ts';
import type { ProxyAuth } from './proxy-auth.ts';

export interface BackgroundPlatform {
  /** The engine's applyProxy: the rules in force for the browser, and the WebRTC guard. */
  applyProxy(rules: Rules, bridgePort: number, edgeUrl: string, guardWebRtc: boolean, temporary: readonly string[]): Promise<unknown>;
  /** Registers, at the top level, the listeners that steer requests and report proxy trouble. */
  hookProxy(engine: Engine, proxyAuth: ProxyAuth, wake: () => void): void;
  /** Keeps the background running while the tunnel carries connections, where the browser would stop it. */
  keepAwake(engine: Engine): void;
  /** Serves the api to the popup and options pages. */
  serveApi(api: PassageApi): void;
  /** The WebRTC peers for the TURN transport. */
  readonly peers: RtcPeers;
}

/** The WebRTC guard, alike in both: no UDP around the proxy while any site is proxied. */
export async function guardWebRtc(on: boolean): Promise<void> {
  const policy = chrome.privacy.network.webRTCIPHandlingPolicy;
  if (on) await policy.set({ value: 'disable_non_proxied_udp' });
  else await policy.clear({});
}
