/**
 * The engine without a browser: its store, proxy settings, bridge link and tunnel are stand-ins,
 * the browser's connections real ReMux streams over an in-memory pair, the clock the test's.
 */
import { describe, expect, it } from 'vitest';
import type { Destination } from '../../shared/eagersocks.ts';
import { SettingsError } from '../../shared/errors.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { DEFAULT_SETTINGS, type PassageSettings } from '../../shared/settings.ts';
import { Engine } from '../../extension/background/engine.ts';
import type { LinkState } from '../../extension/background/bridge-link.ts';
import type { Schema, Store } from '../../extension/background/store.ts';
import type { TunnelStatus } from '../../extension/background/tunnel.ts';
import type { Rules } from '../../extension/lib/rules.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { muxPair, settle } from '../support/mux-pipe.ts';

class MapStore implements Store {
  readonly data = new Map<keyof Schema, unknown>();
  saves: Array<keyof Schema> = [];
  failing = false;
  async load<K extends keyof Schema>(key: K) {
    if (this.failing) throw new Error('IndexedDB timed out');
    return this.data.get(key) as Schema[K] | undefined;
  }
  async save<K extends keyof Schema>(key: K, value: Schema[K]) {
    this.saves.push(key);
    this.data.set(key, structuredClone(value));
  }
}

const SITE_DEST: Destination = { type: 'domain', host: 'www.blocked.test', port: 443 };

function world(stored: Partial<Schema> = {}) {
  const clock = new FakeClock();
  const store = new MapStore();
  for (const [k, v] of Object.entries(stored)) store.data.set(k as keyof Schema, v);
  const applied: Array<{ rules: Rules; bridgePort: number; edgeUrl: string }> = [];
  let proxyFails = false;
  const links: Array<{ port: number; token: string }> = [];
  let onStream: (s: MuxStream) => void = () => undefined;
  const linkState: LinkState = { linked: true, rttMs: 3, error: null, problem: null };
  const tunnels: Array<{ settings: PassageSettings; closed: boolean; opened: Destination[] }> = [];
  // The edge side of every tunneled connection: an echo over a second in-memory mux pair.
  const edge = muxPair({ acceptor: { onStream: (s) => s.attach({ data: (c) => (s.write(c.slice()), s.consume(c.length)), end: () => s.end() }) } });
  const engine = new Engine({
    store,
    applyProxy: async (rules, bridgePort, edgeUrl) => {
      if (proxyFails) throw new Error('proxy refused');
      applied.push({ rules, bridgePort, edgeUrl });
    },
    link: (handler) => {
      onStream = handler;
      return { connect: (port, token) => links.push({ port, token }), state: linkState };
    },
    tunnel: (settings) => {
      const t = { settings, closed: false, opened: [] as Destination[] };
      tunnels.push(t);
      const status: TunnelStatus = { transport: 'meek', why: 'meek: chosen in the options', reachable: true, error: null, rttMs: 42, detail: null, problem: null, fallback: false };
      return {
        open: (d) => (t.opened.push(d), edge.opener.open(d)),
        rttMs: 42,
        status: () => status,
        close: () => void (t.closed = true),
      };
    },
    clock,
  });
  // The browser's side: the bridge opens a stream per connection on the link.
  const bridge = muxPair({ acceptor: { onStream: (s) => onStream(s) } });
  return { clock, store, engine, applied, links, tunnels, bridge, failProxy: () => (proxyFails = true) };
}

describe('Engine', () => {
  it('starts from what the store kept: PAC applied, bridge linked, one tunnel; starting again changes nothing', async () => {
    const settings = { ...DEFAULT_SETTINGS, bridgePort: 9999, pairingToken: 'paired-token-0123456789' };
    const rules: Rules = { enabled: true, allSites: false, sites: ['blocked.test'], exclusions: [] };
    const w = world({ settings, rules });
    await w.engine.start();
    await w.engine.start();
    expect(w.applied).toEqual([{ rules, bridgePort: 9999, edgeUrl: settings.edgeUrl }]);
    expect(w.links).toEqual([{ port: 9999, token: 'paired-token-0123456789' }]);
    expect(w.tunnels).toHaveLength(1);
    expect(w.engine.status()).toMatchObject({ linked: true, transport: 'meek', rttMs: 42, rules, settingsError: null, proxyError: null });
  });

  it('a store that cannot be read is reported, and the next wake-up tries again', async () => {
    const w = world();
    w.store.failing = true;
    await w.engine.start();
    expect(w.engine.status().settingsError).toMatch(/could not read settings: IndexedDB timed out/);
    w.store.failing = false;
    await w.engine.start();
    expect(w.engine.status().settingsError).toBeNull();
  });

  it('new transport settings replace the tunnel; rules alone keep it', async () => {
    const w = world();
    await w.engine.start();
    await w.engine.setRules({ enabled: true, allSites: true, sites: [], exclusions: [] });
    expect(w.tunnels).toHaveLength(1);
    await w.engine.setSettings({ ...w.engine.settings, sessions: 4 });
    expect(w.tunnels).toHaveLength(2);
    expect(w.tunnels[0]!.closed).toBe(true);
    expect(w.tunnels[1]!.settings.sessions).toBe(4);
    expect(w.store.data.get('settings')).toMatchObject({ sessions: 4 });
    // Every setting the tunnel reads takes effect at once.
    await w.engine.setSettings({ ...w.engine.settings, meekStreaming: false });
    expect(w.tunnels).toHaveLength(3);
    expect(w.tunnels[2]!.settings.meekStreaming).toBe(false);
    await w.engine.setSettings({ ...w.engine.settings, padding: false });
    expect(w.tunnels).toHaveLength(4);
    await w.engine.setSettings({ ...w.engine.settings, guardWebRtc: false });
    expect(w.tunnels).toHaveLength(4);
  });

  it('refuses settings the validator refuses, saving nothing', async () => {
    const w = world();
    await w.engine.start();
    await expect(w.engine.setSettings({ ...w.engine.settings, edgeUrl: 'http://edge.example.net/' })).rejects.toThrow(SettingsError);
    await expect(w.engine.setSettings({ ...w.engine.settings, sessions: 0 })).rejects.toThrow(/sessions/);
    expect(w.store.saves).not.toContain('settings');
    expect(w.tunnels).toHaveLength(1);
  });

  it('a PAC the browser refuses is reported, not thrown', async () => {
    const w = world();
    w.failProxy();
    await w.engine.start();
    expect(w.engine.status().proxyError).toBe('could not apply the proxy settings: proxy refused');
  });

  it('joins a browser connection to the tunnel byte for byte, counts it under its site and saves the counters later', async () => {
    const w = world({ rules: { enabled: true, allSites: false, sites: ['blocked.test'], exclusions: [] } });
    await w.engine.start();
    const browser = w.bridge.opener.open(SITE_DEST);
    const back: number[] = [];
    let ended = false;
    browser.attach({ data: (c) => (back.push(...c), browser.consume(c.length)), end: () => (ended = true) });
    browser.write(Uint8Array.of(1, 2, 3));
    browser.end();
    await settle();
    await settle();
    expect(w.tunnels[0]!.opened).toEqual([SITE_DEST]);
    expect(back).toEqual([1, 2, 3]);
    expect(ended).toBe(true);
    expect(w.engine.counters['blocked.test']).toEqual({ up: 3, down: 3, streams: 1, rttMs: 42, failure: null });
    expect(w.store.saves).not.toContain('counters');
    await w.clock.advance(2000);
    expect(w.store.data.get('counters')).toEqual({ 'blocked.test': { up: 3, down: 3, streams: 1, rttMs: 42, failure: null } });
  });

  it('a proxy error clears once bytes flow again; the log keeps each connection; a rule switched off ends its open connections', async () => {
    const w = world({ rules: { enabled: true, allSites: false, sites: ['blocked.test'], exclusions: [] } });
    await w.engine.start();
    w.engine.noteProxyError('net::ERR_PROXY_CONNECTION_FAILED');
    const browser = w.bridge.opener.open(SITE_DEST);
    const resets: number[] = [];
    browser.attach({ data: (c) => browser.consume(c.length), reset: (code) => resets.push(code) });
    browser.write(Uint8Array.of(9));
    await settle();
    await settle();
    expect(w.engine.status().proxyError).toBeNull();
    expect(w.engine.status().openStreams).toBe(1);
    expect(w.engine.connections()).toMatchObject([{ host: 'www.blocked.test', site: 'blocked.test', transport: 'meek', up: 1, down: 1, outcome: 'open' }]);
    // The site's rule goes: its connection stops using the tunnel at once.
    await w.engine.setRules({ ...w.engine.rules, sites: [] });
    await settle();
    expect(resets).toEqual([ResetCode.CANCELLED]);
    expect(w.engine.status().openStreams).toBe(0);
    expect(w.engine.connections()[0]).toMatchObject({ outcome: 'reset', code: ResetCode.CANCELLED, by: null });
    w.engine.clearConnections();
    expect(w.engine.connections()).toEqual([]);
  });

  it('the connection log keeps the last 300', async () => {
    const w = world({ rules: { enabled: true, allSites: true, sites: [], exclusions: [] } });
    await w.engine.start();
    for (let i = 0; i < 310; i++) {
      const s = w.bridge.opener.open({ type: 'domain', host: `h${i}.test`, port: 443 });
      s.attach({ end: () => undefined });
      s.end();
      if (i % 50 === 49) await settle(); // let them finish: the stand-in link has 256 streams
    }
    await settle();
    const log = w.engine.connections();
    expect(log).toHaveLength(300);
    expect(log[0]!.host).toBe('h309.test');
    expect(log.at(-1)!.host).toBe('h10.test');
  });

  it('with no usable edge, a browser connection is reset 0x01 at once', async () => {
    const w = world({ settings: { ...DEFAULT_SETTINGS, edgeUrl: 'not a url' } });
    await w.engine.start();
    expect(w.tunnels).toHaveLength(0);
    expect(w.engine.status().transportWhy).toBe('the edge URL is not a URL');
    const browser = w.bridge.opener.open(SITE_DEST);
    const resets: number[] = [];
    browser.attach({ reset: (code) => resets.push(code) });
    await settle();
    expect(resets).toEqual([ResetCode.UNREACHABLE]);
  });
});
