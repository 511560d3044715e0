/**
 * WebRTC through TURN end to end: Debian's coturn (shared secret, as deployed) behind a counting
 * UDP relay, the real companion with `--turn`, and Chromium with the built extension, whose
 * offscreen document holds a relay-only peer connection. The relay counts the bytes, so a page
 * said to load over TURN is shown to have crossed the TURN server; coturn killed hands the tunnel
 * to meek, and its return brings TURN back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import {
  PAIRING_TOKEN,
  addSiteThroughOptions,
  downloadDigest,
  launchBrowser,
  patternBytes,
  saveOptions,
  sha256,
  startCompanions,
  startOrigin,
  waitForTransport,
  type Browser,
  type Companions,
  type Origin,
} from '../support/e2e.ts';
import { startCoturn, type Coturn } from '../support/coturn.ts';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';
import { delayRelay, type DelayRelay } from '../support/tcp-relay.ts';
import { waitFor } from '../support/wait.ts';
import { edgeCounter, streamsOpened as edgeStreamsOpened } from '../support/processes.ts';

const streamsOpened = (c: Companions) => edgeStreamsOpened(c.edge.adminUrl);
/** Bytes the edge's ICE shims carried toward the browser (TURN over TCP/TLS goes through them). */
const shimBytesOut = (c: Companions) => edgeCounter(c.edge.adminUrl, 'passage_edge_ice_shim_bytes_total', '{direction="out"}');

const offscreenDocuments = (b: Browser) =>
  b.worker.evaluate(async () => (await chrome.runtime.getContexts({ contextTypes: [chrome.runtime.ContextType.OFFSCREEN_DOCUMENT] })).length);

describe('e2e: WebRTC through TURN (coturn), with meek as the fallback', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let origin: Origin;
  let coturn: Coturn;
  let front: UdpRelay;
  let companions: Companions;
  let browser: Browser;
  let blocked: string;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-turn-'));
    origin = await startOrigin(dir);
    cleanups.push(() => origin.close());
    coturn = await startCoturn();
    cleanups.push(() => coturn.stop());
    front = await startUdpRelay({ targetPort: coturn.port });
    cleanups.push(() => front.close());
    companions = await startCompanions(dir, ['--turn', `turn:127.0.0.1:${front.port}?transport=udp`, '--rtc-address', '127.0.0.1'], { PASSAGE_TURN_SECRET: coturn.secret });
    cleanups.push(() => companions.stop());
    browser = await launchBrowser(origin.port);
    cleanups.push(() => browser.close());
    blocked = `https://blocked.test:${origin.port}`;
    await saveOptions(browser, {
      edgeUrl: `http://127.0.0.1:${companions.edge.port}/`,
      bridgePort: String(companions.bridge.port),
      pairingToken: PAIRING_TOKEN,
      webtransportRetrySeconds: '2',
    });
    await addSiteThroughOptions(browser, 'blocked.test');
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  async function loadHello(page: Page, url: string): Promise<void> {
    expect(await browser.visit(page, url)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
  }

  it('auto with an edge that offers TURN and no WebTransport: the page and a 20 MiB download (byte-exact) go through the TURN server', async () => {
    const s = await waitForTransport(browser, 'turn');
    expect(s.transportWhy).toBe('TURN: WebRTC relayed by the TURN server');
    expect(await offscreenDocuments(browser)).toBe(1);
    const page = await browser.context.newPage();
    const before = await streamsOpened(companions);
    const relayed = front.forwardedBytes.toClient;
    const shimmed = await shimBytesOut(companions);
    await loadHello(page, `${blocked}/`);
    const size = 20 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    // Over UDP the browser takes the edge's peer directly, not its ICE shim (a few checks at most).
    expect((await shimBytesOut(companions)) - shimmed).toBeLessThan(64 * 1024);
    const after = await streamsOpened(companions);
    expect(after.webrtc).toBeGreaterThan(before.webrtc);
    expect(after.meek).toBe(before.meek);
    // Every byte of the download crossed the TURN server: the browser's peer has relay candidates only.
    expect(front.forwardedBytes.toClient - relayed).toBeGreaterThan(size);
    // coturn took the minted credentials and relayed through a channel to the edge.
    expect(coturn.log()).toMatch(/ALLOCATE processed, success/);
    expect(coturn.log()).toMatch(/CHANNEL_BIND processed, success|CREATE_PERMISSION processed, success/);
    // The popup says which transport, in words.
    const popup = await browser.context.newPage();
    await popup.goto(`chrome-extension://${browser.extensionId}/popup.html`);
    await popup.waitForFunction(() => /WebRTC through the TURN server/.test(document.body.textContent ?? ''));
    await popup.close();
    await page.close();
  });

  it('coturn killed: meek takes over within seconds and the page still loads; coturn back: TURN again', async () => {
    await waitForTransport(browser, 'turn');
    // The WebRTC guard is in force (a site is proxied): the reconnection below is made under it.
    expect(await browser.worker.evaluate(async () => (await chrome.privacy.network.webRTCIPHandlingPolicy.get({})).value)).toBe('disable_non_proxied_udp');
    const port = coturn.port;
    await coturn.stop('SIGKILL');
    const fallback = await waitForTransport(browser, 'meek', /TURN/, 15_000);
    expect(fallback.transportWhy).toMatch(/^meek: TURN session ended: no answer from the edge for 3 s; trying TURN again in 2 s/);
    const page = await browser.context.newPage();
    origin.dropConnections();
    const before = await streamsOpened(companions);
    await loadHello(page, `${blocked}/?meek`);
    const onMeek = await streamsOpened(companions);
    expect(onMeek.meek).toBeGreaterThan(before.meek);

    coturn = await startCoturn({ port, secret: coturn.secret });
    cleanups.push(() => coturn.stop());
    await waitForTransport(browser, 'turn', /TURN/, 30_000);
    origin.dropConnections();
    await loadHello(page, `${blocked}/?turn`);
    const back = await streamsOpened(companions);
    expect(back.webrtc).toBeGreaterThan(onMeek.webrtc);
    expect(back.meek).toBe(onMeek.meek);
    await page.close();
  });

  it('the offscreen document goes once no TURN session needs it (meek chosen in the options)', async () => {
    await waitForTransport(browser, 'turn');
    expect(await offscreenDocuments(browser)).toBe(1);
    await saveOptions(browser, { transport: 'meek' });
    await waitForTransport(browser, 'meek', /chosen in the options/);
    await waitFor('the offscreen document to close', async () => (await offscreenDocuments(browser)) === 0, 30_000);
  });
});

describe('e2e: TURN over TLS (turns:) where UDP to the TURN server is blocked', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let origin: Origin;
  let coturn: Coturn;
  let udp: UdpRelay;
  let tls: DelayRelay;
  let companions: Companions;
  let browser: Browser;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-turns-'));
    origin = await startOrigin(dir);
    cleanups.push(() => origin.close());
    coturn = await startCoturn({ tls: true });
    cleanups.push(() => coturn.stop());
    // The censor drops UDP to the TURN server; TLS to it (443 in a deployment) gets through.
    udp = await startUdpRelay({ targetPort: coturn.port });
    udp.blackhole = true;
    cleanups.push(() => udp.close());
    tls = await delayRelay(coturn.tlsPort!, 0);
    cleanups.push(async () => tls.close());
    companions = await startCompanions(
      dir,
      ['--turn', `turn:127.0.0.1:${udp.port}?transport=udp`, '--turn', `turns:127.0.0.1:${tls.port}?transport=tcp`, '--rtc-address', '127.0.0.1'],
      { PASSAGE_TURN_SECRET: coturn.secret },
    );
    cleanups.push(() => companions.stop());
    browser = await launchBrowser(origin.port);
    cleanups.push(() => browser.close());
    await saveOptions(browser, {
      edgeUrl: `http://127.0.0.1:${companions.edge.port}/`,
      bridgePort: String(companions.bridge.port),
      pairingToken: PAIRING_TOKEN,
      transport: 'turn',
    });
    await addSiteThroughOptions(browser, 'blocked.test');
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('the session connects over TLS to coturn, and a page and an 8 MiB download (byte-exact) cross it', async () => {
    const s = await waitForTransport(browser, 'turn', /TURN/, 30_000);
    expect(s.transportWhy).toBe('TURN: WebRTC relayed by the TURN server');
    const page = await browser.context.newPage();
    const before = await streamsOpened(companions);
    const relayed = tls.bytes.down;
    const shimmed = await shimBytesOut(companions);
    expect(await browser.visit(page, `https://blocked.test:${origin.port}/`)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    const size = 8 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    expect((await streamsOpened(companions)).webrtc).toBeGreaterThan(before.webrtc);
    // Every byte crossed the TLS connection to coturn, none the blocked UDP port.
    expect(tls.bytes.down - relayed).toBeGreaterThan(size);
    expect(udp.forwarded.toClient).toBe(0);
    // …and the edge's ICE shim, which lets the browser's zero tiebreaker through to libjuice.
    expect((await shimBytesOut(companions)) - shimmed).toBeGreaterThan(size);
    // coturn took the minted credentials on a TLS session and relayed through a channel.
    expect(coturn.log()).toMatch(/new, realm=<passage\.test>, username=<\d+>, .*method=TLSv1\.[23]/);
    expect(coturn.log()).toMatch(/CHANNEL_BIND processed, success/);
    await page.close();
  });
});
