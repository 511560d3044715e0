/**
 * Passage end to end in Debian's firefox-esr with the Firefox build (dist-firefox/): the same
 * extension, steering through proxy.onRequest instead of a PAC, its background an event page
 * reached over a runtime.Port. Driven through its real popup and options pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'puppeteer-core';
import { PAIRING_TOKEN, downloadDigest, patternBytes, sha256, startCompanions, startOrigin, untilTransport, type Companions, type Origin } from '../support/e2e.ts';
import { configureFirefox, launchFirefox, saveFirefoxOptions, until, type Firefox } from '../support/firefox.ts';
import { streamsOpened as edgeStreamsOpened } from '../support/processes.ts';
import { freeUdpPort, startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';
import { startCoturn, type Coturn } from '../support/coturn.ts';

interface Status {
  transport: string;
  transportWhy: string;
  linked: boolean;
}

const status = (ff: Firefox) => ff.background<Status>('(g) => g.passage.engine.status()');

const waitForTransport = (ff: Firefox, transport: string, why = /./, timeoutMs = 30_000) => untilTransport(() => status(ff), transport, why, timeoutMs);

async function tabIdOf(ff: Firefox, url: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const id = await ff.background<number>(`async (g) => ((await g.chrome.tabs.query({})).find((t) => (t.url ?? '').startsWith(${JSON.stringify(url)}))?.id ?? -1)`);
    if (id >= 0) return id;
    if (Date.now() > deadline) throw new Error(`no tab shows ${url}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Adds a site through the options page's add-site field, as a user would. */
async function addSite(ff: Firefox, site: string): Promise<void> {
  const page = await ff.extensionPage('options.html');
  await page.type('#new-site', site);
  await page.click('#add-site button');
  await until(page, `!document.getElementById('notice').hidden`);
  await page.close();
}


describe('e2e: Passage in firefox-esr', () => {
  let origin: Origin;
  let companions: Companions;
  let relay: UdpRelay;
  let ff: Firefox;
  let blocked: string;
  let open: string;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-firefox-'));
    origin = await startOrigin(dir);
    const frontPort = await freeUdpPort();
    relay = await startUdpRelay({ targetPort: frontPort });
    companions = await startCompanions(dir, ['--wt-listen', `127.0.0.1:${frontPort}`, '--wt-advertise', `https://127.0.0.1:${relay.port}/`, '--config-dir', dir]);
    ff = await launchFirefox();
    await configureFirefox(ff, companions.edge.port, companions.bridge.port);
    await saveFirefoxOptions(ff, { webtransportRetrySeconds: '2' });
    blocked = `https://blocked.test:${origin.port}`;
    open = `https://open.test:${origin.port}`;
  });
  afterAll(async () => {
    await ff?.close();
    await companions?.stop();
    await relay?.close();
    await origin?.close();
  });

  const streamsOpened = () => edgeStreamsOpened(companions.edge.adminUrl);
  const webRtcPolicy = () => ff.background<string>('async (g) => (await g.chrome.privacy.network.webRTCIPHandlingPolicy.get({})).value');

  async function popupFor(url: string): Promise<Page> {
    const popup = await ff.extensionPage(`popup.html?tab=${await tabIdOf(ff, url)}`);
    await until(popup, `document.getElementById('site').textContent !== '…'`);
    return popup;
  }

  async function loadHello(page: Page, url: string, host = 'blocked.test'): Promise<void> {
    expect(await ff.visit(page, url)).toBeNull();
    expect(await page.$eval('#hello', (el) => el.textContent)).toBe(`hello from ${host}`);
  }

  it('pairs with the bridge from its moz-extension origin', async () => {
    const bridge = (await (await fetch(`${companions.bridge.url}/status`)).json()) as { linked: boolean };
    expect(bridge.linked).toBe(true);
    expect((await status(ff)).linked).toBe(true);
    // Its token is the pairing token the options page was given.
    expect(await ff.background<string>('async (g) => g.passage.engine.settings.pairingToken')).toBe(PAIRING_TOKEN);
  });

  it('a site switched on in the popup loads over WebTransport (20 MiB byte-exact), an unlisted one goes direct, and switched off it fails again', async () => {
    const page = await ff.browser.newPage();
    expect(await ff.visit(page, `${blocked}/`)).toMatch(/NS_ERROR_UNKNOWN_HOST|UNKNOWN_HOST/);
    let popup = await popupFor(`${blocked}/`);
    expect(await popup.$eval('#site', (el) => el.textContent)).toBe('blocked.test');
    await popup.click('#site-toggle');
    await until(popup, `document.getElementById('site-state').textContent === 'through Passage (rule: blocked.test)'`);
    // Firefox steers private windows only when allowed to run there; the popup says so.
    await until(popup, `/^Private windows are not steered/.test(document.getElementById('private-note').textContent) && !document.getElementById('private-note').hidden`);
    await waitForTransport(ff, 'webtransport');
    // WebRTC is kept off UDP around the proxy while a site is tunneled.
    expect(await webRtcPolicy()).toBe('disable_non_proxied_udp');

    const before = await streamsOpened();
    const hits = origin.hits.get('blocked.test') ?? 0;
    await loadHello(page, `${blocked}/`);
    expect(origin.hits.get('blocked.test')).toBeGreaterThan(hits);
    const size = 20 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    const after = await streamsOpened();
    expect(after.webtransport).toBeGreaterThan(before.webtransport);
    expect(after.meek).toBe(before.meek);

    // open.test has no rule: it goes direct, and the edge sees nothing of it.
    const openHits = origin.hits.get('open.test') ?? 0;
    await loadHello(page, `${open}/`, 'open.test');
    expect(origin.hits.get('open.test')).toBeGreaterThan(openHits);
    expect(await streamsOpened()).toEqual(after);
    await popup.close();
    await loadHello(page, `${blocked}/?again`);
    popup = await popupFor(`${blocked}/?again`);
    await until(popup, `document.getElementById('site-state').textContent === 'through Passage (rule: blocked.test)'`);
    await popup.click('#site-toggle');
    await until(popup, `document.getElementById('site-state').textContent === 'direct'`);
    expect(await webRtcPolicy()).not.toBe('disable_non_proxied_udp');
    origin.dropConnections();
    expect(await ff.visit(page, `${blocked}/?off`)).toMatch(/UNKNOWN_HOST/);
    await popup.close();
    await page.close();
  });

  it('when UDP goes silent meek carries the site, and WebTransport takes it back when UDP flows', async () => {
    await addSite(ff, 'blocked.test');
    const page = await ff.browser.newPage();
    await waitForTransport(ff, 'webtransport');
    relay.blackhole = true;
    await waitForTransport(ff, 'meek', /no answer from the edge for 3 s/, 15_000);
    origin.dropConnections();
    const before = await streamsOpened();
    await loadHello(page, `${blocked}/?meek`);
    const size = 20 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    const afterMeek = await streamsOpened();
    expect(afterMeek.meek).toBeGreaterThan(before.meek);
    relay.blackhole = false;
    await waitForTransport(ff, 'webtransport');
    origin.dropConnections();
    await loadHello(page, `${blocked}/?back`);
    expect((await streamsOpened()).webtransport).toBeGreaterThan(afterMeek.webtransport);
    await page.close();
  });

  it('the edge killed: the site fails (never direct), and loads again once the edge is back', async () => {
    const page = await ff.browser.newPage();
    await loadHello(page, `${blocked}/?before-kill`);
    const port = companions.edge.port;
    await companions.edge.stop('SIGKILL');
    origin.dropConnections();
    const hits = origin.hits.get('blocked.test') ?? 0;
    expect(await ff.visit(page, `${blocked}/?edge-down`)).not.toBeNull();
    expect(origin.hits.get('blocked.test') ?? 0).toBe(hits);
    await companions.restartEdge();
    expect(companions.edge.port).toBe(port);
    const deadline = Date.now() + 30_000;
    for (;;) {
      origin.dropConnections();
      if ((await ff.visit(page, `${blocked}/?edge-back`)) === null) break;
      if (Date.now() > deadline) throw new Error('the site did not load again after the edge came back');
    }
    expect(await page.$eval('#hello', (el) => el.textContent)).toBe('hello from blocked.test');
    await page.close();
  });
});

describe('e2e: Firefox suspends the event page', () => {
  const IDLE_S = 3;
  let origin: Origin;
  let companions: Companions;
  let ff: Firefox;
  let blocked: string;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-firefox-idle-'));
    origin = await startOrigin(dir);
    companions = await startCompanions(dir);
    ff = await launchFirefox({ idleTimeoutSeconds: IDLE_S });
    await configureFirefox(ff, companions.edge.port, companions.bridge.port);
    await addSite(ff, 'blocked.test');
    blocked = `https://blocked.test:${origin.port}`;
  });
  afterAll(async () => {
    await ff?.close();
    await companions?.stop();
    await origin?.close();
  });

  const linked = async () => ((await (await fetch(`${companions.bridge.url}/status`)).json()) as { linked: boolean }).linked;

  it('a suspended page is woken by a request to a tunneled site, which still goes through the tunnel', async () => {
    // Idle, it is suspended: its link to the bridge goes with it.
    const deadline = Date.now() + 30_000;
    while (await linked()) {
      if (Date.now() > deadline) throw new Error('the event page was never suspended');
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = await edgeStreamsOpened(companions.edge.adminUrl);
    const page = await ff.browser.newPage();
    expect(await ff.visit(page, `${blocked}/`)).toBeNull();
    expect(await page.$eval('#hello', (el) => el.textContent)).toBe('hello from blocked.test');
    expect((await edgeStreamsOpened(companions.edge.adminUrl)).meek).toBeGreaterThan(before.meek);
    expect(await linked()).toBe(true);
    await page.close();
  });

  it('while a download is open the page is not suspended: a response held for several idle timeouts arrives whole', async () => {
    const page = await ff.browser.newPage();
    expect(await ff.visit(page, `${blocked}/?hold`)).toBeNull();
    const size = 4 * 1024 * 1024;
    const result = downloadDigest(page, size, '/hold');
    // The held response keeps one connection open; the link must outlive three idle timeouts.
    const until = Date.now() + 3 * IDLE_S * 1000;
    while (Date.now() < until) {
      expect(await linked()).toBe(true);
      await new Promise((r) => setTimeout(r, 250));
    }
    origin.release();
    expect(await result).toBe(sha256(patternBytes(size)));
    await page.close();
  });

  it('site access withdrawn (Firefox lets the user): the popup says the switched-on sites now go direct, with the button to allow it again', async () => {
    const popup = await ff.extensionPage('popup.html');
    await until(popup, `document.getElementById('access-problem').hidden === true && document.getElementById('site').textContent !== '…'`);
    expect(await ff.background<boolean>(`async (g) => g.chrome.permissions.remove({ origins: ['<all_urls>'] })`)).toBe(true);
    await until(popup, `!document.getElementById('access-problem').hidden`);
    expect(await popup.$eval('#access-words', (el) => el.textContent)).toMatch(/^Passage may not see your sites' requests/);
    expect(await popup.$eval('#access-grant', (el) => el.textContent)).toBe('Allow access to all sites');
    await popup.close();
  });
});

describe('e2e: WebRTC through TURN in Firefox, the peers in the event page itself', () => {
  let origin: Origin;
  let coturn: Coturn;
  let front: UdpRelay;
  let companions: Companions;
  let ff: Firefox;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-firefox-turn-'));
    origin = await startOrigin(dir);
    coturn = await startCoturn();
    front = await startUdpRelay({ targetPort: coturn.port });
    companions = await startCompanions(dir, ['--turn', `turn:127.0.0.1:${front.port}?transport=udp`, '--rtc-address', '127.0.0.1'], { PASSAGE_TURN_SECRET: coturn.secret });
    ff = await launchFirefox();
    await configureFirefox(ff, companions.edge.port, companions.bridge.port);
    await addSite(ff, 'blocked.test');
  });
  afterAll(async () => {
    await ff?.close();
    await companions?.stop();
    await front?.close();
    await coturn?.stop();
    await origin?.close();
  });

  it('auto picks TURN where the edge offers it: the page and a 20 MiB download (byte-exact) cross the TURN server', async () => {
    const s = await waitForTransport(ff, 'turn');
    expect(s.transportWhy).toBe('TURN: WebRTC relayed by the TURN server');
    const page = await ff.browser.newPage();
    const before = await edgeStreamsOpened(companions.edge.adminUrl);
    const relayed = front.forwardedBytes.toClient;
    expect(await ff.visit(page, `https://blocked.test:${origin.port}/`)).toBeNull();
    expect(await page.$eval('#hello', (el) => el.textContent)).toBe('hello from blocked.test');
    const size = 20 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    const after = await edgeStreamsOpened(companions.edge.adminUrl);
    expect(after.webrtc).toBeGreaterThan(before.webrtc);
    expect(after.meek).toBe(before.meek);
    expect(front.forwardedBytes.toClient - relayed).toBeGreaterThan(size);
    await page.close();
  });
});
