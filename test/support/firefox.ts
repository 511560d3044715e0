/**
 * Debian's firefox-esr with the Firefox build (dist-firefox/) installed as a temporary add-on,
 * driven over WebDriver BiDi by puppeteer-core (Playwright's Firefox and geckodriver need a
 * download). BiDi does not reach extension contexts, but the extension's own pages are ordinary
 * tabs: the test opens them at a fixed internal UUID (a profile pref) and, from there, reaches
 * the event page with `runtime.getBackgroundPage()`, as the popup could.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { FIREFOX_ID } from '../../tools/firefox-manifest.ts';
import { ROOT } from './processes.ts';
import { navigationError, PAIRING_TOKEN } from './e2e.ts';

/** The internal UUID the test profile gives the add-on (`moz-extension://UUID`). */
export const FIREFOX_UUID = '5e1f0c3a-9d7b-4c2e-8a61-2b4f7d9e0c15';
export const FIREFOX_ORIGIN = `moz-extension://${FIREFOX_UUID}`;

export interface Firefox {
  browser: Browser;
  /** A tab on one of the extension's pages (popup.html?tab=…, options.html), loaded. */
  extensionPage(file: string): Promise<Page>;
  /** A tab on `url`; never throws for a failed navigation (returns the error text). */
  visit(page: Page, url: string): Promise<string | null>;
  /** Runs `fn` in the event page (through an extension tab); `fn` gets the page's globalThis. */
  background<T>(fn: string): Promise<T>;
  close(): Promise<void>;
}

/**
 * Waits until `expression` is true in the page. Puppeteer's waitFor* compile their predicate with
 * Function(), which an extension page's CSP refuses; a plain evaluate is allowed.
 */
export async function until(page: Page, expression: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await page.evaluate(`(() => { try { return Boolean(${expression}); } catch { return false; } })()`).catch(() => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression} on ${page.url()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** How the tests start Firefox (docs/PLATFORM.md, "Firefox"): test names mapped, background traffic off. */
export function firefoxPrefs(idleTimeoutSeconds?: number): Record<string, unknown> {
  return {
    'extensions.webextensions.uuids': JSON.stringify({ [FIREFOX_ID]: FIREFOX_UUID }),
    // open.test resolves to loopback for the browser; blocked.test does not resolve at all.
    'network.dns.localDomains': 'open.test',
    'network.trr.mode': 5,
    // The tests' TURN server is on loopback, which Firefox's ICE leaves out by default.
    'media.peerconnection.ice.loopback': true,
    'app.update.enabled': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'datareporting.policy.dataSubmissionEnabled': false,
    'toolkit.telemetry.enabled': false,
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'extensions.getAddons.cache.enabled': false,
    ...(idleTimeoutSeconds !== undefined ? { 'extensions.background.idle.timeout': idleTimeoutSeconds * 1000 } : {}),
  };
}

export async function launchFirefox(o: { idleTimeoutSeconds?: number } = {}): Promise<Firefox> {
  const dist = path.join(ROOT, 'dist-firefox');
  if (!existsSync(path.join(dist, 'manifest.json'))) throw new Error('dist-firefox/ is missing: npm test builds it first (npm run build)');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: '/usr/bin/firefox-esr',
    headless: true,
    acceptInsecureCerts: true,
    // Firefox 153 lets WebDriver navigate only to http(s), file, blob and about:blank unless
    // started with system access; the tests open the add-on's own pages (moz-extension://).
    args: ['--remote-allow-system-access'],
    userDataDir: mkdtempSync(path.join(tmpdir(), 'passage-firefox-')),
    extraPrefsFirefox: firefoxPrefs(o.idleTimeoutSeconds),
  });
  await browser.installExtension(dist);
  const self: Firefox = {
    browser,
    async extensionPage(file) {
      const page = await browser.newPage();
      // BiDi reports no load for moz-extension pages: navigate, then wait for the document itself.
      void page.goto(`${FIREFOX_ORIGIN}/${file}`, { timeout: 0 }).catch(() => undefined);
      await until(page, `location.origin === ${JSON.stringify(FIREFOX_ORIGIN)} && document.readyState === 'complete'`);
      return page;
    },
    visit: (page, url) => navigationError(() => page.goto(url, { waitUntil: 'load', timeout: 20_000 })),
    async background<T>(fn: string) {
      const page = await self.extensionPage('options.html');
      try {
        return (await page.evaluate(`(async () => { const g = await browser.runtime.getBackgroundPage(); return await (${fn})(g); })()`)) as T;
      } finally {
        await page.close();
      }
    },
    close: () => browser.close(),
  };
  return self;
}

/** Fills fields of the options page (by element id) and saves, as a user would. */
export async function saveFirefoxOptions(ff: Firefox, fields: Record<string, string>): Promise<void> {
  const page = await ff.extensionPage('options.html');
  for (const [id, value] of Object.entries(fields)) {
    if ((await page.$eval(`#${id}`, (el) => el.tagName)) === 'SELECT') await page.select(`#${id}`, value);
    else {
      await page.$eval(`#${id}`, (el) => ((el as HTMLInputElement).value = ''));
      await page.type(`#${id}`, value);
    }
  }
  await page.click('#save');
  await until(page, `!document.getElementById('notice').hidden`);
  await page.close();
}

export function configureFirefox(ff: Firefox, edgePort: number, bridgePort: number): Promise<void> {
  return saveFirefoxOptions(ff, { edgeUrl: `http://127.0.0.1:${edgePort}/`, bridgePort: String(bridgePort), pairingToken: PAIRING_TOKEN });
}
