/**
 * The Firefox pieces that are pure logic: the manifest derived from the one root manifest, the
 * per-request steering answer, the comlink endpoint over a runtime.Port, the browser detection.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expose, wrap } from 'comlink';
import manifest from '../../manifest.json' with { type: 'json' };
import { FIREFOX_ID, firefoxManifest } from '../../tools/firefox-manifest.ts';
import { NOWHERE, proxyFor, type SteeringState } from '../../extension/background/firefox-steering.ts';
import { portEndpoint, type RuntimePort } from '../../extension/lib/port-endpoint.ts';
import { browserKind } from '../../extension/lib/platform.ts';
import { decide, EMPTY_RULES } from '../../extension/lib/rules.ts';
import { PROXY_USER } from '../../shared/bridge-credential.ts';

describe('the Firefox manifest', () => {
  const ff = firefoxManifest(manifest) as Record<string, unknown> & { permissions: string[]; background: unknown; browser_specific_settings: { gecko: { id: string } } };

  it('runs the same module as an event page, under a fixed gecko id, without Chromium-only fields', () => {
    expect(ff.background).toEqual({ scripts: [manifest.background.service_worker], type: 'module' });
    expect(ff.browser_specific_settings.gecko.id).toBe(FIREFOX_ID);
    expect(ff).not.toHaveProperty('key');
    expect(ff).not.toHaveProperty('minimum_chrome_version');
    expect(ff.permissions).not.toContain('offscreen');
    expect(ff.permissions).not.toContain('webRequestAuthProvider');
    expect(ff.permissions).toContain('webRequestBlocking');
    expect(ff.permissions).toEqual(expect.arrayContaining(manifest.permissions.filter((p) => p !== 'offscreen' && p !== 'webRequestAuthProvider')));
    expect(ff.host_permissions).toEqual(manifest.host_permissions);
    expect(ff.options_ui).toEqual({ page: manifest.options_page, open_in_tab: true });
  });

  it("states a page policy without upgrade-insecure-requests (the bridge link is ws://127.0.0.1)", () => {
    const csp = (ff.content_security_policy as { extension_pages: string }).extension_pages;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/upgrade-insecure-requests/);
  });
});

describe('Firefox steering (proxy.onRequest)', () => {
  const state = (over: Partial<SteeringState> = {}): SteeringState => ({ loaded: true, decide: (h) => ({ tunnel: h === 'blocked.test' }), bridgePort: 8081, pairingToken: 'tok-0123456789abcdef', ...over });

  it('sends a tunneled site to the bridge alone, with the credential on the request', () => {
    const info = proxyFor('blocked.test', state());
    expect(info).toEqual({ type: 'http', host: '127.0.0.1', port: 8081, proxyAuthorizationHeader: `Basic ${Buffer.from(`${PROXY_USER}:tok-0123456789abcdef`).toString('base64')}` });
    expect(proxyFor('open.test', state())).toEqual({ type: 'direct' });
  });

  it('fails closed while the rules are not read: nothing goes direct, tunneled or not', () => {
    expect(proxyFor('open.test', state({ loaded: false }))).toEqual(NOWHERE);
    expect(proxyFor('blocked.test', state({ loaded: false }))).toEqual(NOWHERE);
    expect(NOWHERE.type).not.toBe('direct');
  });

  it('answers as the rules module decides, for any host and rules', () => {
    fc.assert(
      fc.property(fc.domain(), fc.array(fc.domain(), { maxLength: 5 }), fc.boolean(), (host, sites, allSites) => {
        const rules = { ...EMPTY_RULES, sites, allSites };
        const info = proxyFor(host, state({ decide: (h) => decide(h, rules) }));
        expect(info.type === 'http').toBe(decide(host, rules).tunnel);
      }),
    );
  });
});

describe('comlink over a runtime.Port', () => {
  /** Two connected ports, as runtime.connect and onConnect give them (messages cloned, delivered later). */
  function portPair(): [RuntimePort, RuntimePort] {
    const make = () => {
      const listeners = new Set<(m: unknown) => void>();
      return { listeners, port: { onMessage: { addListener: (l: (m: unknown) => void) => listeners.add(l), removeListener: (l: (m: unknown) => void) => listeners.delete(l) }, onDisconnect: { addListener: () => undefined } } };
    };
    const a = make();
    const b = make();
    const send = (to: Set<(m: unknown) => void>) => (m: unknown) => {
      const copy = structuredClone(m);
      setTimeout(() => to.forEach((l) => l(copy)), 0);
    };
    return [
      { ...a.port, postMessage: send(b.listeners) },
      { ...b.port, postMessage: send(a.listeners) },
    ];
  }

  it('carries calls and answers, errors included', async () => {
    const [page, background] = portPair();
    expose({ add: (x: number, y: number) => x + y, fail: () => { throw new Error('refused'); }, status: () => ({ linked: true, rules: { sites: ['a.test'] } }) }, portEndpoint(background));
    const api = wrap<{ add(x: number, y: number): number; fail(): void; status(): { linked: boolean; rules: { sites: string[] } } }>(portEndpoint(page));
    expect(await api.add(2, 3)).toBe(5);
    expect(await api.status()).toEqual({ linked: true, rules: { sites: ['a.test'] } });
    await expect(api.fail()).rejects.toThrow('refused');
  });
});

describe('browser detection', () => {
  it('is Firefox only where browser.runtime.getBrowserInfo exists', () => {
    expect(browserKind({})).toBe('chromium');
    expect(browserKind({ browser: {} })).toBe('chromium');
    expect(browserKind({ chrome: { runtime: {} } })).toBe('chromium');
    expect(browserKind({ browser: { runtime: { getBrowserInfo: () => undefined } } })).toBe('firefox');
  });
});

describe('failed resources in Firefox', () => {
  it("keeps Firefox's failure names under Chromium's, and still ignores the ones a censor does not cause", async () => {
    const { FailedResources } = await import('../../extension/background/failed-resources.ts');
    const f = new FailedResources();
    f.note(1, 'https://cdn.blocked.test/a.js', 'NS_ERROR_UNKNOWN_HOST', () => false, 5);
    f.note(1, 'https://img.blocked.test/a.png', 'NS_ERROR_NET_RESET', () => false, 6);
    f.note(1, 'https://ads.test/x', 'NS_BINDING_ABORTED', () => false, 7);
    expect(f.list(1, () => false)).toEqual([
      { host: 'cdn.blocked.test', error: 'net::ERR_NAME_NOT_RESOLVED', at: 5 },
      { host: 'img.blocked.test', error: 'net::ERR_CONNECTION_RESET', at: 6 },
    ]);
  });
});
