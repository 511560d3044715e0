/**
 * The background (Chromium's service worker, Firefox's event page): the one place that joins the
 * engine to the browser (IndexedDB, the proxy, the bridge's WebSocket, fetch and WebTransport, the
 * platform's timers); what differs between the browsers is platform.ts's. Listeners are
 * registered at the top level so that the browser's own events — a navigation, a proxied request,
 * a proxy error, the keep-alive alarm, a page asking for the api — wake a stopped background,
 * which then restores its state and relinks to the bridge within the bridge's 3 s grace.
 */
import { systemClock } from '../../shared/clock.ts';
import { createApi } from './api.ts';
import { BridgeLink } from './bridge-link.ts';
import { discover } from './discovery.ts';
import { Engine } from './engine.ts';
import { MeekTransport } from './meek-transport.ts';
import { ProxyAuth } from './proxy-auth.ts';
import { chromeSessionStore, indexedDbStore } from './store.ts';
import { FailedResources } from './failed-resources.ts';
import { paintTab, toolbarFor } from './toolbar.ts';
import { tabInfo } from './tab-info.ts';
import { Tunnel } from './tunnel.ts';
import { signalRtc } from './rtc-signal.ts';
import { TurnTransport } from './turn-transport.ts';
import { WebTransportTransport } from './webtransport-transport.ts';
import { browserKind } from '../lib/platform.ts';
import { chromiumPlatform } from './chromium-platform.ts';
import { firefoxPlatform } from './firefox-platform.ts';

const platform = browserKind() === 'firefox' ? firefoxPlatform() : chromiumPlatform();
const { peers } = platform;
const store = indexedDbStore;
const engine = new Engine({
  store,
  session: chromeSessionStore,
  applyProxy: platform.applyProxy,
  link: (onStream) => new BridgeLink(onStream),
  tunnel: (settings) =>
    new Tunnel(settings, {
      meek: (s) => new MeekTransport({ edgeUrl: s.edgeUrl, authToken: s.authToken, parallel: s.sessions, streaming: s.meekStreaming, padding: s.padding }),
      webtransport: (offer, s, timeoutMs) => new WebTransportTransport(offer.url, s.authToken, offer.certificateHashes, timeoutMs, s.padding),
      turn: (offer, s, timeoutMs) => new TurnTransport(offer, { peers, signal: (sdp) => signalRtc(s, sdp) }, timeoutMs, s.padding),
      discover: (s) => discover(s, store),
      clock: systemClock,
    }),
  clock: systemClock,
});
const failed = new FailedResources();
const api = createApi(engine, failed);
const tunneled = (host: string) => engine.decide(host).tunnel;
const wake = () => void engine.start();

chrome.runtime.onStartup.addListener(wake);
chrome.runtime.onInstalled.addListener(wake);
chrome.webNavigation.onBeforeNavigate.addListener(wake);
chrome.alarms.onAlarm.addListener(wake);
// Failed resources: a page's requests that went direct and failed.
chrome.webRequest.onErrorOccurred.addListener((d) => failed.note(d.tabId, d.url, d.error, tunneled, Date.now()), { urls: ['<all_urls>'] });
chrome.webNavigation.onCommitted.addListener((d) => {
  if (d.frameId === 0) failed.reset(d.tabId);
});
chrome.tabs.onRemoved.addListener((tabId) => failed.reset(tabId));
platform.hookProxy(engine, new ProxyAuth(), wake);
platform.keepAwake(engine);

void chrome.alarms.create('passage-wake', { periodInMinutes: 0.5 });

/** Every tab's toolbar button, from the state in force now. */
async function paintTabs(): Promise<void> {
  await engine.start();
  const status = engine.status();
  const tabs = await chrome.tabs.query({});
  await Promise.all(
    tabs.map(async (tab) => {
      if (tab.id === undefined) return;
      // The tab as queried: asking the api would fetch each tab again.
      const { state, title } = toolbarFor(status, tabInfo(engine, tab), engine.counters, Date.now());
      await paintTab(tab.id, state, title);
    }),
  );
}
let painting: Promise<void> | null = null;
const repaint = () => void (painting ??= paintTabs().finally(() => (painting = null)));
chrome.tabs.onUpdated.addListener((_id, change) => {
  if (change.url || change.status) repaint();
});
chrome.tabs.onActivated.addListener(repaint);
engine.onChange = repaint;
// While problems come and go (the companion stopped, the edge unreachable) the buttons follow;
// the tabs are repainted only when what the buttons show could have changed.
let shown = '';
setInterval(() => {
  const s = engine.status();
  // The minute is in it too: a site's failure stops showing after a while (lib/problems.ts).
  const now = JSON.stringify([Math.floor(Date.now() / 60_000), s.linked, s.linkProblem, s.edgeProblem, s.edgeReachable, s.proxyError, s.transport, s.webtransportFallback, Object.values(engine.counters).map((c) => c.failure?.at ?? 0)]);
  if (now !== shown) {
    shown = now;
    repaint();
  }
}, 2000);

// The shortcut (Alt+Shift+P by default): the active tab's site through Passage, or not.
chrome.commands.onCommand.addListener((command) => {
  if (command !== 'toggle-site') return;
  void (async () => {
    const tab = await api.tab(null);
    await api.switchTab(tab.id, !tab.proxied, false);
    repaint();
  })();
});

platform.serveApi(api);

wake();

// Reachable from DevTools (and tests) as `passage.engine` in the worker's console.
Object.assign(globalThis, { passage: { engine } });
