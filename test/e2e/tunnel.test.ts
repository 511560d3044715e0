/**
 * Passage end to end in Debian's Chromium with the built extension, driven through its real UI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configureExtension, launchBrowser, sha256, patternBytes, startCompanions, startOrigin, type Browser, type Companions, type Origin } from '../support/e2e.ts';

describe('e2e: a per-site switch in real Chromium', () => {
  let origin: Origin;
  let companions: Companions;
  let browser: Browser;
  let base: { blocked: string; open: string };

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-'));
    origin = await startOrigin(dir);
    companions = await startCompanions(dir);
    browser = await launchBrowser(origin.port);
    await configureExtension(browser, companions.edge.port, companions.bridge.port);
    base = { blocked: `https://blocked.test:${origin.port}`, open: `https://open.test:${origin.port}` };
  });
  afterAll(async () => {
    await browser?.close();
    await companions?.stop();
    await origin?.close();
  });

  async function popupFor(url: string) {
    const tabId = await browser.tabIdOf(url);
    const popup = await browser.context.newPage();
    await popup.goto(`chrome-extension://${browser.extensionId}/popup.html?tab=${tabId}`);
    await popup.waitForFunction(() => document.getElementById('site')!.textContent !== '…');
    return popup;
  }

  async function edgeBytesDown(): Promise<number> {
    const text = await (await fetch(`${companions.edge.url}/metrics`)).text();
    return Number(/passage_edge_bytes_down_total (\d+)/.exec(text)?.[1] ?? 0);
  }

  it('a blocked site fails until switched on in the popup, loads through the edge, and fails again when off', async () => {
    const page = await browser.context.newPage();
    expect(await browser.visit(page, `${base.blocked}/`)).toMatch(/ERR_NAME_NOT_RESOLVED/);

    const popup = await popupFor(`${base.blocked}/`);
    expect(await popup.textContent('#site')).toBe('blocked.test');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage');
    await popup.waitForFunction(() => /Companion linked/.test(document.getElementById('status-companion')!.textContent ?? ''));

    const hitsBefore = origin.hits.get('blocked.test') ?? 0;
    const downBefore = await edgeBytesDown();
    expect(await browser.visit(page, `${base.blocked}/`)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    expect(origin.hits.get('blocked.test')).toBeGreaterThan(hitsBefore);
    expect(await edgeBytesDown()).toBeGreaterThan(downBefore);

    await popup.reload();
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'direct');
    expect(await browser.visit(page, `${base.blocked}/`)).toMatch(/ERR_NAME_NOT_RESOLVED/);
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
    const popupPage = await browser.context.newPage();
    await popupPage.goto(`chrome-extension://${browser.extensionId}/options.html`);
    await popupPage.fill('#new-site', 'blocked.test');
    await popupPage.click('#add-site button');
    await popupPage.waitForSelector('#notice:not([hidden])');
    await popupPage.close();
    expect(await browser.visit(page, `${base.blocked}/many`)).toBeNull();
    const loaded = await page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length);
    expect(loaded).toBe(50);
    const size = 20 * 1024 * 1024;
    const digest = await page.evaluate(async (n) => {
      const buf = await (await fetch(`/bytes?size=${n}`)).arrayBuffer();
      const d = await crypto.subtle.digest('SHA-256', buf);
      return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
    }, size);
    expect(digest).toBe(sha256(patternBytes(size)));
    await page.close();
  });
});
