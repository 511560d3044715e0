/**
 * Firefox's side of the platform (platform.ts). Firefox MV3 runs the background as an event page:
 * - steering is per request through `proxy.onRequest` (firefox-steering.ts); the listener is
 *   registered at the top level, so a request wakes a suspended page, which reads its rules first;
 * - the credential is named with each proxied request, and onAuthRequired answers the bridge's
 *   407 (Firefox asked once a session: firefox-steering.ts); blocking listeners return a promise;
 * - proxy errors come as `proxy.onError`;
 * - an event page is suspended after `extensions.background.idle.timeout` (30 s) without events
 *   or API calls — open WebSockets and WebTransport sessions do not count — which would cut the
 *   bridge link under a long download; while connections are open it makes an API call a second;
 * - the pages reach the api over a runtime.Port (lib/port-endpoint.ts);
 * - the page is a document, so it hosts the WebRTC peers itself (lib/peer-host.ts).
 */
import { expose } from 'comlink';
import { hostPeers } from '../lib/peer-host.ts';
import { API_PORT } from '../lib/platform.ts';
import { portEndpoint } from '../lib/port-endpoint.ts';
import { proxyFor, type FirefoxProxyInfo } from './firefox-steering.ts';
import { OffscreenPeers } from './offscreen-peers.ts';
import { tunnelsAny, urlHost } from '../lib/rules.ts';
import { guardWebRtc, type BackgroundPlatform } from './platform.ts';
import type { AuthAnswer, AuthChallenge } from './proxy-auth.ts';

/** The parts of Firefox's `browser` namespace used here (not in @types/chrome). */
interface FirefoxBrowser {
  proxy: {
    onRequest: { addListener(l: (d: { url: string; incognito?: boolean }) => Promise<FirefoxProxyInfo>, filter: { urls: string[] }): void };
    onError: { addListener(l: (e: { message?: string }) => void): void };
  };
  webRequest: {
    onAuthRequired: { addListener(l: (d: AuthChallenge) => Promise<AuthAnswer>, filter: { urls: string[] }, extra: string[]): void };
  };
}

/**
 * How often a busy event page tells Firefox it is in use. A call the parent process answers
 * counts (docs/PLATFORM.md: measured with a 3 s idle timeout); one a second stays well inside
 * any timeout a user or a test sets, for the cost of one IPC message.
 */
export const FIREFOX_KEEPALIVE_MS = 1000;

const firefox = () => (globalThis as unknown as { browser: FirefoxBrowser }).browser;

export function firefoxPlatform(): BackgroundPlatform {
  let closeHost: (() => void) | null = null;
  const peers = new OffscreenPeers({
    async ensure(p) {
      if (closeHost) return;
      const channel = new MessageChannel();
      closeHost = hostPeers(channel.port1);
      p.greeting(channel.port2);
    },
    async close() {
      closeHost?.();
      closeHost = null;
    },
  });
  return {
    // Steering is per request (hookProxy); what is applied up front is the WebRTC guard alone.
    async applyProxy(rules, _bridgePort, _edgeUrl, guard, temporary) {
      await guardWebRtc(tunnelsAny(rules, temporary) && guard);
      return null;
    },
    peers,
    hookProxy(engine, proxyAuth, wake) {
      firefox().proxy.onRequest.addListener(
        async (d) => {
          await engine.start();
          return proxyFor(urlHost(d.url), { loaded: engine.loaded, decide: (h) => engine.decide(h), bridgePort: engine.settings.bridgePort, pairingToken: engine.settings.pairingToken });
        },
        { urls: ['<all_urls>'] },
      );
      firefox().proxy.onError.addListener((e) => {
        engine.noteProxyError(e.message ?? 'proxy error');
        wake();
      });
      firefox().webRequest.onAuthRequired.addListener(
        async (d) => {
          await engine.start();
          return proxyAuth.answer(d, engine.settings);
        },
        { urls: ['<all_urls>'] },
        ['blocking'],
      );
    },
    keepAwake(engine) {
      setInterval(() => {
        if (engine.busy) void chrome.alarms.get('passage-wake');
      }, FIREFOX_KEEPALIVE_MS);
    },
    serveApi(api) {
      chrome.runtime.onConnect.addListener((port) => {
        if (port.name === API_PORT && port.sender?.id === chrome.runtime.id) expose(api, portEndpoint(port));
      });
    },
  };
}
