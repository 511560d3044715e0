/**
 * Passage end to end in Debian's Chromium with the built extension, driven through its real UI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addSiteThroughOptions, downloadDigest, engineStatus, launchBrowser, patternBytes, saveOptions, sha256, startOrigin, startWorld, workerHeapUsed, type Browser, type Companions, type Origin, type World } from '../support/e2e.ts';
import { startBufferingProxy } from '../support/reverse-proxies.ts';

describe('e2e: a per-site switch in real Chromium', () => {
  let origin: Origin;
  let companions: Companions;
  let browser: Browser;
  let base: { blocked: string; open: string };

  let world: World;

  beforeAll(async () => {
    world = await startWorld();
    ({ origin, companions, browser } = world);
    base = { blocked: `https://blocked.test:${origin.port}`, open: `https://open.test:${origin.port}` };
  });
  afterAll(() => world?.close());

  async function popupFor(url: string) {
    const tabId = await browser.tabIdOf(url);
    const popup = await browser.context.newPage();
    await popup.goto(`chrome-extension://${browser.extensionId}/popup.html?tab=${tabId}`);
    await popup.waitForFunction(() => document.getElementById('site')!.textContent !== '…');
    return popup;
  }

  async function edgeBytesDown(): Promise<number> {
    const text = await (await fetch(`${companions.edge.adminUrl}/metrics`)).text();
    return Number(/passage_edge_bytes_down_total (\d+)/.exec(text)?.[1] ?? 0);
  }

  it('a blocked site fails until switched on in the popup, loads through the edge, and fails again when off', async () => {
    const page = await browser.context.newPage();
    expect(await browser.visit(page, `${base.blocked}/`)).toMatch(/ERR_NAME_NOT_RESOLVED/);

    const popup = await popupFor(`${base.blocked}/`);
    expect(await popup.textContent('#site')).toBe('blocked.test');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (rule: blocked.test)');
    await popup.waitForFunction(() => /Companion linked/.test(document.getElementById('status-companion')!.textContent ?? ''));

    // The PAC is mandatory (fails closed) and names the bridge alone; WebRTC is kept off raw UDP.
    const applied = await browser.worker.evaluate(async () => ({
      proxy: (await chrome.proxy.settings.get({})).value as { mode: string; pacScript?: { data: string; mandatory: boolean } },
      webrtc: (await chrome.privacy.network.webRTCIPHandlingPolicy.get({})).value,
    }));
    expect(applied.proxy.mode).toBe('pac_script');
    expect(applied.proxy.pacScript!.mandatory).toBe(true);
    expect(applied.proxy.pacScript!.data).toContain(`PROXY 127.0.0.1:${companions.bridge.port}`);
    expect(applied.proxy.pacScript!.data).not.toMatch(/;\s*DIRECT/);
    expect(applied.webrtc).toBe('disable_non_proxied_udp');

    const hitsBefore = origin.hits.get('blocked.test') ?? 0;
    const downBefore = await edgeBytesDown();
    expect(await browser.visit(page, `${base.blocked}/`)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    expect(origin.hits.get('blocked.test')).toBeGreaterThan(hitsBefore);
    expect(await edgeBytesDown()).toBeGreaterThan(downBefore);

    await popup.reload();
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (rule: blocked.test)');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'direct');
    expect(await browser.visit(page, `${base.blocked}/`)).toMatch(/ERR_NAME_NOT_RESOLVED/);
    // Nothing proxied any more: the proxy settings and the WebRTC policy are cleared again.
    const cleared = await browser.worker.evaluate(async () => ({
      mode: ((await chrome.proxy.settings.get({})).value as { mode: string }).mode,
      webrtc: (await chrome.privacy.network.webRTCIPHandlingPolicy.get({})).value,
    }));
    expect(cleared.mode).toBe('system');
    expect(cleared.webrtc).not.toBe('disable_non_proxied_udp');
    await popup.close();
    await page.close();
  });

  it('an unlisted site always loads direct', async () => {
    const page = await browser.context.newPage();
    const downBefore = await edgeBytesDown();
    expect(await browser.visit(page, `${base.open}/`)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from open.test');
    expect(await edgeBytesDown()).toBe(downBefore);
    await page.close();
  });

  it('a page with 50 subresources loads completely, and a 20 MiB download is byte-exact', async () => {
    const page = await browser.context.newPage();
    await addSiteThroughOptions(browser, 'blocked.test');
    expect(await browser.visit(page, `${base.blocked}/many`)).toBeNull();
    const loaded = await page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length);
    expect(loaded).toBe(50);
    const size = 20 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    await page.close();
  });

  it('meek v2: downloads stream, and the popup says so; behind a proxy that buffers responses it polls instead, and pages still load byte-exact', async () => {
    const page = await browser.context.newPage();
    await addSiteThroughOptions(browser, 'blocked.test');
    expect(await browser.visit(page, `${base.blocked}/many`)).toBeNull();
    expect((await engineStatus(browser)).transportDetail).toBe('streaming downloads');
    const popup = await popupFor(`${base.blocked}/many`);
    await popup.waitForFunction(() => /downloads streamed/.test(document.getElementById('status-transport')!.textContent ?? ''));
    await popup.close();
    const buffering = await startBufferingProxy(companions.edge.port);
    try {
      await saveOptions(browser, { edgeUrl: `http://127.0.0.1:${buffering.port}/` });
      expect(await browser.visit(page, `${base.blocked}/many`)).toBeNull();
      const size = 5 * 1024 * 1024;
      expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
      expect((await engineStatus(browser)).transportDetail).toBe('polling: this network holds streamed responses back');
    } finally {
      await saveOptions(browser, { edgeUrl: `http://127.0.0.1:${companions.edge.port}/` });
      await buffering.close();
      await page.close();
    }
  });
});

describe('e2e: recovery and bounds', () => {
  let origin: Origin;
  let companions: Companions;
  let browser: Browser;
  let blocked: string;

  let world: World;

  beforeAll(async () => {
    world = await startWorld();
    ({ origin, companions, browser } = world);
    blocked = `https://blocked.test:${origin.port}`;
    await addSiteThroughOptions(browser, 'blocked.test');
  });
  afterAll(() => world?.close());

  it('the edge killed and restarted mid-session: the next load works', async () => {
    const page = await browser.context.newPage();
    expect(await browser.visit(page, `${blocked}/`)).toBeNull();
    await companions.restartEdge();
    // The old meek session is gone (410 or connection errors); the engine starts a fresh one.
    let error: string | null = 'not tried';
    for (let i = 0; i < 5 && error !== null; i++) error = await browser.visit(page, `${blocked}/?after-restart=${i}`);
    expect(error).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    await page.close();
  });

  it('a stopped service worker is woken by the navigation alone, with PAC and rules in force', async () => {
    const page = await browser.context.newPage();
    expect(await browser.visit(page, `${blocked}/`)).toBeNull();
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    // Only the site is reloaded: no extension page is opened to wake the worker.
    expect(await browser.visit(page, `${blocked}/?after-stop`)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    await page.close();
  });

  it('a 50 MiB download the page stops reading holds the worker and the edge to a few windows, then completes byte-exact', async () => {
    const { rssBytes } = await import('../support/processes.ts');
    const page = await browser.context.newPage();
    expect(await browser.visit(page, `${blocked}/`)).toBeNull();
    const size = 50 * 1024 * 1024;
    const edgeBefore = await rssBytes(companions.edge.child.pid!);
    const heapOf = () => workerHeapUsed(browser, page);
    const heapBefore = await heapOf();
    // The page reads the first MiB, then stops reading while the origin sends the rest.
    await page.evaluate(async (n) => {
      const res = await fetch(`/bytes?size=${n}`);
      const reader = res.body!.getReader();
      const parts: Uint8Array[] = [];
      let got = 0;
      while (got < 1024 * 1024) {
        const { value } = await reader.read();
        parts.push(value!);
        got += value!.length;
      }
      Object.assign(window, { reader, parts });
    }, size);
    // Wait (bounded) until the pipeline has filled to its bounds: the edge stops reading more.
    const down = async () => Number(/passage_edge_bytes_down_total (\d+)/.exec(await (await fetch(`${companions.edge.adminUrl}/metrics`)).text())?.[1] ?? 0);
    let last = -1;
    for (let i = 0; i < 60; i++) {
      const now = await down();
      if (now === last) break;
      last = now;
      await new Promise((r) => setTimeout(r, 250));
    }
    // Measured here: Chromium itself drains a response the page does not read into its own
    // buffers, so the stall stops at the browser; what Passage holds meanwhile must stay small.
    expect(last).toBeGreaterThan(1024 * 1024);
    const heapGrowth = (await heapOf()) - heapBefore;
    const edgeGrowth = (await rssBytes(companions.edge.child.pid!)) - edgeBefore;
    expect(heapBefore).toBeGreaterThan(0);
    // The worker retains (after a forced GC) less than a few 256 KiB windows.
    expect(heapGrowth).toBeLessThan(4 * 256 * 1024);
    // RSS also counts allocator slack from moving 50 MiB, so its bound is looser (measured ~40 MiB).
    expect(edgeGrowth).toBeLessThan(64 * 1024 * 1024);
    // Reading resumes: everything arrives, byte-exact.
    const digest = await page.evaluate(async () => {
      const w = window as unknown as { reader: ReadableStreamDefaultReader<Uint8Array>; parts: Uint8Array[] };
      for (;;) {
        const { value, done } = await w.reader.read();
        if (done) break;
        w.parts.push(value);
      }
      const all = new Uint8Array(w.parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of w.parts) {
        all.set(p, at);
        at += p.length;
      }
      const d = await crypto.subtle.digest('SHA-256', all);
      return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('');
    });
    expect(digest).toBe(sha256(patternBytes(size)));
    await page.close();
  });
});

describe('e2e: an edge that loses responses', () => {
  it('every 4th meek response dropped after processing: pages still load byte-exact', async () => {
    const world = await startWorld([], { dropEvery: 4 });
    const { origin, companions, browser } = world;
    try {
      await addSiteThroughOptions(browser, 'blocked.test');
      const page = await browser.context.newPage();
      expect(await browser.visit(page, `https://blocked.test:${origin.port}/many`)).toBeNull();
      const missing = await page.evaluate(() => [...document.images].filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.src));
      const diagnosis = async () => JSON.stringify({ missing, engine: await browser.worker.evaluate(() => (globalThis as unknown as { passage: { engine: { status(): unknown } } }).passage.engine.status()), edge: companions.edge.stderr.join('').slice(-2000) });
      expect(missing, await diagnosis()).toEqual([]);
      const size = 5 * 1024 * 1024;
      const digest = await page.evaluate(async (n) => {
        const d = await crypto.subtle.digest('SHA-256', await (await fetch(`/bytes?size=${n}`)).arrayBuffer());
        return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
      }, size);
      expect(digest).toBe(sha256(patternBytes(size)));
      const metrics = await (await fetch(`${companions.edge.adminUrl}/metrics`)).text();
      expect(metrics, await diagnosis()).toMatch(/passage_edge_replays_total [1-9]/);
      expect(world.proxy!.dropped).toBeGreaterThan(0);
    } finally {
      await world.close();
    }
  });
});

describe('e2e: the bridge wants its credential', () => {
  it("a cold worker answers the bridge's first 407 itself: the very first tunneled load after a worker stop works", async () => {
    const world = await startWorld();
    try {
      await addSiteThroughOptions(world.browser, 'blocked.test');
      const page = await world.browser.context.newPage();
      const cdp = await world.browser.context.newCDPSession(page);
      await cdp.send('ServiceWorker.enable');
      await cdp.send('ServiceWorker.stopAllWorkers');
      // No proxied request has been made in this browser yet: no credential is cached, so the
      // bridge's 407 must reach the stopped worker's onAuthRequired and be answered by it.
      expect(await world.browser.visit(page, `https://blocked.test:${world.origin.port}/`)).toBeNull();
      expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    } finally {
      await world.close();
    }
  });
});

describe('e2e: setup through the UI', () => {
  it('imports a passage:// config link, and tells the user when the companion is not running', async () => {
    const { encodeConfigLink } = await import('../../shared/config-link.ts');
    const { listen } = await import('../support/servers.ts');
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-'));
    const origin = await startOrigin(dir);
    const closed = await listen(() => {});
    await closed.close(); // a port with nothing behind it
    const browser = await launchBrowser(origin.port);
    try {
      const options = await browser.context.newPage();
      await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
      const link = encodeConfigLink({ edgeUrl: 'http://127.0.0.1:9/', bridgePort: closed.port, pairingToken: 'imported-token-0123456789', sessions: 3 });
      await options.fill('#config-link', link);
      await options.click('#import');
      await options.waitForSelector('#notice:not([hidden])');
      expect(await options.inputValue('#bridgePort')).toBe(String(closed.port));
      expect(await options.inputValue('#sessions')).toBe('3');
      // An edge off this machine over plain http is refused with the reason.
      await options.fill('#edgeUrl', 'http://edge.example.net/');
      await options.click('#save');
      await options.waitForSelector('#error:not([hidden])');
      expect(await options.textContent('#error')).toMatch(/https/);
      const popup = await browser.context.newPage();
      await popup.goto(`chrome-extension://${browser.extensionId}/popup.html`);
      await popup.waitForFunction(() => /not running/.test(document.getElementById('problem')!.textContent ?? ''), null, { timeout: 15_000 });
      expect(await popup.textContent('#problem')).toBe('The companion is not running. Start it (npm start, or passage bridge) and this will clear by itself.');
    } finally {
      await browser.close();
      await origin.close();
    }
  });
});
