/**
 * Chromium's side of the platform (platform.ts): the PAC through chrome.proxy (mandatory: a broken
 * PAC fails closed), the bridge's credential through webRequest.onAuthRequired, the api on a
 * MessageChannel posted to the service worker, WebRTC peers in an offscreen document.
 */
import { expose } from 'comlink';
import { OFFSCREEN_HELLO } from '../lib/peer-port.ts';
import { buildPac } from '../lib/pac.ts';
import { alwaysDirectHosts, type Rules } from '../lib/rules.ts';
import { OffscreenPeers } from './offscreen-peers.ts';
import { guardWebRtc, type BackgroundPlatform } from './platform.ts';

async function applyPac(rules: Rules, bridgePort: number, edgeUrl: string, guard: boolean, temporary: readonly string[] = []): Promise<string | null> {
  const pac = buildPac({ rules, temporary, bridge: { host: '127.0.0.1', port: bridgePort }, alwaysDirect: alwaysDirectHosts(edgeUrl) });
  if (pac === null) await chrome.proxy.settings.clear({ scope: 'regular' });
  else await chrome.proxy.settings.set({ value: { mode: 'pac_script', pacScript: { data: pac, mandatory: true } }, scope: 'regular' });
  await guardWebRtc(pac !== null && guard);
  return pac;
}

export function chromiumPlatform(): BackgroundPlatform {
  const peers = new OffscreenPeers();
  return {
    applyProxy: applyPac,
    peers,
    hookProxy(engine, proxyAuth, wake) {
      chrome.proxy.onProxyError.addListener((details) => {
        engine.noteProxyError(`${details.error}${details.details ? `: ${details.details}` : ''}`);
        wake();
      });
      // The bridge wants its credential on every proxied request; a cold worker is woken by the challenge.
      chrome.webRequest.onAuthRequired.addListener(
        (details, respond) => {
          void engine.start().then(() => respond?.(proxyAuth.answer(details, engine.settings)));
        },
        { urls: ['<all_urls>'] },
        ['asyncBlocking'],
      );
    },
    // The link's pings keep the worker running (docs/PLATFORM.md, worker lifetime).
    keepAwake() {},
    serveApi(api) {
      // comlink: a page sends one end of a MessageChannel; the api is served on it. The offscreen
      // document greets the same way, with its control port (offscreen-peers.ts).
      self.addEventListener('message', (event: Event) => {
        const e = event as MessageEvent;
        if (e.data === 'passage-api' && e.ports[0]) expose(api, e.ports[0]);
        if (e.data === OFFSCREEN_HELLO && e.ports[0]) peers.greeting(e.ports[0]);
      });
    },
  };
}
