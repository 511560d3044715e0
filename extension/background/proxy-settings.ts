/**
 * Applies the rules to Chromium: the PAC through chrome.proxy (mandatory: a broken PAC fails
 * closed), and WebRTC kept off non-proxied UDP while any site is proxied (if the user keeps that on).
 */
import { buildPac } from '../lib/pac.ts';
import { alwaysDirectHosts, type Rules } from '../lib/rules.ts';

export async function applyProxy(rules: Rules, bridgePort: number, edgeUrl: string, guardWebRtc: boolean, temporary: readonly string[] = []): Promise<string | null> {
  const pac = buildPac({ rules, temporary, bridge: { host: '127.0.0.1', port: bridgePort }, alwaysDirect: alwaysDirectHosts(edgeUrl) });
  if (pac === null) await chrome.proxy.settings.clear({ scope: 'regular' });
  else await chrome.proxy.settings.set({ value: { mode: 'pac_script', pacScript: { data: pac, mandatory: true } }, scope: 'regular' });
  const policy = chrome.privacy.network.webRTCIPHandlingPolicy;
  if (pac !== null && guardWebRtc) await policy.set({ value: 'disable_non_proxied_udp' });
  else await policy.clear({});
  return pac;
}
