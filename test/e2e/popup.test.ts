/**
 * The popup, the options page and the toolbar button as a person meets them, in real Chromium
 * with the built extension and the real companion: the one current problem in plain words for
 * each failure, the state in force, failed resources, rules, sharing and backups, the connection
 * log; and screenshots of each state and language in docs/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { downloadDigest, launchBrowser, PAIRING_TOKEN, patternBytes, saveOptions, sha256, startWorld, type Browser, type World } from '../support/e2e.ts';
import { ROOT, startCompanion } from '../support/processes.ts';
import { listen } from '../support/servers.ts';
import { decodeConfigLink } from '../../shared/config-link.ts';

const SHOTS = path.join(ROOT, 'docs/screenshots');

async function popupFor(browser: Browser, url: string): Promise<Page> {
  const tabId = await browser.tabIdOf(url);
  const popup = await browser.context.newPage();
  await popup.setViewportSize({ width: 380, height: 560 });
  await popup.goto(`chrome-extension://${browser.extensionId}/popup.html?tab=${tabId}`);
  await popup.waitForFunction(() => document.getElementById('site')!.textContent !== '…');
  return popup;
}

/** Waits until the popup's problem line reads `want` (it refreshes every second). */
async function problemIs(popup: Page, want: RegExp): Promise<string> {
  await popup.waitForFunction((src) => new RegExp(src).test(document.getElementById('problem')!.textContent ?? ''), want.source, { timeout: 20_000 });
  return (await popup.textContent('#problem'))!;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** What the toolbar button shows for a tab: its title and badge (read in the worker). */
function toolbar(browser: Browser, tabId: number): Promise<{ title: string; badge: string }> {
  return browser.worker.evaluate(async (id) => ({ title: await chrome.action.getTitle({ tabId: id }), badge: await chrome.action.getBadgeText({ tabId: id }) }), tabId);
}

describe('e2e: the popup and the options page', () => {
  let world: World;
  let browser: Browser;
  let base: string;
  let page: Page;

  beforeAll(async () => {
    world = await startWorld(['--resolve', 'fail.test=127.0.0.1']);
    browser = world.browser;
    base = `https://blocked.test:${world.origin.port}`;
    page = await browser.context.newPage();
  });
  afterAll(() => world?.close());

  /** Waits until the toolbar button of `tabId` shows what `want` accepts (it is repainted within a couple of seconds). */
  async function toolbarUntil(tabId: number, want: (t: { title: string; badge: string }) => boolean): Promise<{ title: string; badge: string }> {
    for (let i = 0; i < 100; i++) {
      const t = await toolbar(browser, tabId);
      if (want(t)) return t;
      await new Promise((r) => setTimeout(r, 100));
    }
    return toolbar(browser, tabId);
  }

  it('the state in force: a rule, every-site mode, an exclusion, Passage off — and off ends the tunneled connections', async () => {
    expect(await browser.visit(page, `${base}/`)).toMatch(/ERR_NAME_NOT_RESOLVED/);
    const popup = await popupFor(browser, `${base}/`);
    expect(await popup.textContent('#site-state')).toBe('direct');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (rule: blocked.test)');
    expect(await browser.visit(page, `${base}/`)).toBeNull();
    expect(await downloadDigest(page, 1024 * 1024)).toBe(sha256(patternBytes(1024 * 1024)));
    const tabId = await browser.tabIdOf(`${base}/`);
    await popup.waitForFunction(() => /Companion linked/.test(document.getElementById('status-companion')!.textContent ?? ''));
    await shot(popup, 'popup-tunneled');
    expect((await toolbarUntil(tabId, (t) => /through the tunnel/.test(t.title))).title).toBe('Passage: blocked.test through the tunnel (blocked.test)');

    // Every-site mode: the rule is not what sends it any more once removed.
    await popup.click('#all-sites');
    await popup.click('#sites button[data-site="blocked.test"]');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (every site)');
    // Switching the site off in every-site mode excludes it.
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'direct: never tunneled (rule: blocked.test)');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (every site)');
    await popup.click('#all-sites');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'direct');
    await popup.click('#site-toggle');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (rule: blocked.test)');

    // Passage off: the popup says so, the site toggle is inert, and no tunneled connection stays open.
    // A download held open by the origin keeps a tunneled connection open.
    void page.goto(`${base}/hold?size=4194304`).catch(() => undefined);
    await popup.waitForFunction(() => !/· 0 open connections/.test(document.getElementById('status-traffic')!.textContent ?? ''));
    await popup.click('#enabled');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'Passage is off');
    await popup.waitForFunction(() => /· 0 open connections/.test(document.getElementById('status-traffic')!.textContent ?? ''));
    expect(await popup.isDisabled('#site-toggle')).toBe(true);
    expect((await toolbarUntil(tabId, (t) => t.title === 'Passage is off')).title).toBe('Passage is off');
    await shot(popup, 'popup-off');
    world.origin.release();
    await popup.click('#enabled');
    await popup.waitForFunction(() => document.getElementById('site-state')!.textContent === 'through Passage (rule: blocked.test)');
    await popup.close();
  });

  it('failed resources: a tunneled page\'s request to a host that failed direct is listed; one click tunnels it and the page then loads it', async () => {
    expect(await browser.visit(page, `${base}/mixed`)).toBeNull();
    expect(await page.evaluate(() => (document.getElementById('other') as HTMLImageElement).naturalWidth)).toBe(0);
    const popup = await popupFor(browser, `${base}/mixed`);
    await popup.waitForSelector('#failed-section:not([hidden])');
    expect(await popup.textContent('#failed')).toMatch(/^fail\.test name not found\s*tunnel$/);
    await shot(popup, 'popup-failed-resources');
    await popup.click('#failed button[data-host="fail.test"]');
    await popup.waitForFunction(() => /fail\.test/.test(document.getElementById('sites')!.textContent ?? ''));
    expect(await browser.visit(page, `${base}/mixed?again`)).toBeNull();
    await page.waitForFunction(() => (document.getElementById('other') as HTMLImageElement).naturalWidth > 0);
    await popup.close();
  });

  it('the edge refusing a site, per reason: the name not found at the edge, the site not answering', async () => {
    const closed = await listen(() => {});
    await closed.close();
    // The name does not resolve at the edge (RESET 0x08).
    const options = await browser.context.newPage();
    await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
    for (const rule of ['nowhere.invalid', 'blocked.test']) {
      await options.fill('#new-site', rule);
      await options.click('#add-site button');
      await options.waitForSelector('#notice:not([hidden])');
    }
    await options.close();
    expect(await browser.visit(page, `https://nowhere.invalid:${world.origin.port}/`)).toMatch(/ERR_/);
    const popup = await popupFor(browser, `https://nowhere.invalid:${world.origin.port}/`);
    expect(await problemIs(popup, /could not find/)).toBe('The edge could not find nowhere.invalid: the name does not resolve. Check the spelling.');
    const tabId = await browser.tabIdOf(`https://nowhere.invalid:${world.origin.port}/`);
    expect(await toolbarUntil(tabId, (t) => t.badge === '!')).toEqual({ title: expect.stringMatching(/^Passage: nowhere\.invalid is to be tunneled, but The edge could not find/), badge: '!' });
    await shot(popup, 'popup-site-name-not-found');
    await popup.close();
    // The site does not answer the edge (a closed port: RESET 0x01).
    expect(await browser.visit(page, `https://blocked.test:${closed.port}/`)).toMatch(/ERR_/);
    const other = await popupFor(browser, `https://blocked.test:${closed.port}/`);
    expect(await problemIs(other, /did not answer/)).toBe('blocked.test did not answer the edge. The site may be down; try again later.');
    // A connection that goes through again clears it.
    expect(await browser.visit(page, `${base}/`)).toBeNull();
    await other.waitForFunction(() => document.getElementById('problem')!.hidden);
    await other.close();
  });

  it('the edge\'s own refusals: a wrong auth token, its policy forbidding the site, the edge unreachable', async () => {
    const strict = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--auth-token', 'strict-edge-token-0123456789', '--resolve', 'blocked.test=127.0.0.1', '--log-level', 'warn']);
    const closed = await listen(() => {});
    await closed.close();
    try {
      await saveOptions(browser, { edgeUrl: `http://127.0.0.1:${strict.port}/`, authToken: 'not-the-token' });
      expect(await browser.visit(page, `${base}/?token`)).toMatch(/ERR_/);
      let popup = await popupFor(browser, `${base}/?token`);
      expect(await problemIs(popup, /auth token/)).toBe('The edge did not accept the auth token. Check the edge auth token in Options (ask whoever runs the edge).');
      expect(await popup.textContent('#status-edge')).toBe('Edge reached, but it did not take the auth token');
      await shot(popup, 'popup-edge-token');
      await popup.close();

      await saveOptions(browser, { authToken: 'strict-edge-token-0123456789' });
      expect(await browser.visit(page, `${base}/?policy`)).toMatch(/ERR_/);
      popup = await popupFor(browser, `${base}/?policy`);
      expect(await problemIs(popup, /refuses to connect/)).toBe('The edge refuses to connect to blocked.test (its policy forbids that address).');
      await popup.close();

      await saveOptions(browser, { edgeUrl: `http://127.0.0.1:${closed.port}/`, authToken: '' });
      // The load waits while meek retries: what matters is what the popup says meanwhile.
      void page.goto(`${base}/?unreachable`).catch(() => undefined);
      popup = await popupFor(browser, `${base}/?unreachable`);
      expect(await problemIs(popup, /cannot be reached/)).toBe('The edge cannot be reached from this network. Check the edge address in Options; if it is right, the network may block it.');
      await shot(popup, 'popup-edge-unreachable');
      await popup.close();
    } finally {
      await saveOptions(browser, { edgeUrl: `http://127.0.0.1:${world.companions.edge.port}/`, authToken: '' });
      await strict.stop();
    }
    expect(await browser.visit(page, `${base}/?back`)).toBeNull();
  });

  it('the companion: not paired, the pairing refused, and back', async () => {
    await saveOptions(browser, { pairingToken: '' });
    let popup = await popupFor(browser, `${base}/?back`);
    expect(await problemIs(popup, /not paired/)).toMatch(/^Passage is not paired with the companion/);
    await saveOptions(browser, { pairingToken: 'a-wrong-pairing-token-0000' });
    await popup.reload();
    expect(await problemIs(popup, /refused this browser/)).toBe('The companion is running but refused this browser: the pairing token in Options is not the one it printed. Copy it again.');
    await shot(popup, 'popup-pairing-refused');
    await saveOptions(browser, { pairingToken: PAIRING_TOKEN });
    await popup.reload();
    await popup.waitForFunction(() => /Companion linked/.test(document.getElementById('status-companion')!.textContent ?? ''));
    expect(await popup.isHidden('#problem')).toBe(true);
    await popup.close();
  });

  it('rules in the options: a wildcard, an exclusion, a Unicode name, a temporary rule kept, a gfwlist file, and the tester', async () => {
    const options = await browser.context.newPage();
    await options.setViewportSize({ width: 900, height: 1400 });
    await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
    const add = async (rule: string, list: string) => {
      await options.evaluate(() => (document.getElementById('notice')!.hidden = document.getElementById('error')!.hidden = true));
      await options.fill('#new-site', rule);
      await options.selectOption('#new-list', list);
      await options.click('#add-site button');
      await options.waitForFunction(() => !document.getElementById('notice')!.hidden || !document.getElementById('error')!.hidden);
    };
    await add('*.example.org', 'sites');
    await add('full:ads.example.org', 'exclusions');
    await add('bücher.test', 'sites');
    await add('temp.test', 'temporary');
    await add('localhost', 'sites');
    expect(await options.textContent('#error')).toBe('"localhost" always goes direct: the browser never sends it through a proxy');
    expect(await options.textContent('#sites')).toContain('bücher.test');
    expect(await options.textContent('#sites')).toContain('example.org');
    expect(await options.textContent('#exclusions')).toContain('full:ads.example.org');
    await options.click('#temporary button[data-keep="temp.test"]');
    await options.waitForFunction(() => /temp\.test/.test(document.getElementById('sites')!.textContent ?? '') && !/temp\.test/.test(document.getElementById('temporary')!.textContent ?? ''));
    const test = async (url: string) => {
      await options.fill('#test-url', url);
      await options.click('#tester button');
      await options.waitForFunction(() => document.getElementById('test-result')!.textContent !== '');
      const text = (await options.textContent('#test-result'))!;
      await options.evaluate(() => (document.getElementById('test-result')!.textContent = ''));
      return text;
    };
    expect(await test('https://www.example.org/page')).toBe('www.example.org → through Passage, by rule example.org');
    expect(await test('https://ads.example.org/')).toBe('ads.example.org → direct, excluded by full:ads.example.org');
    expect(await test('http://xn--bcher-kva.test/')).toBe('bücher.test → through Passage, by rule bücher.test');
    expect(await test('other.test')).toBe('other.test → direct, no rule covers it');
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-rules-'));
    const file = path.join(dir, 'gfwlist.txt');
    writeFileSync(file, Buffer.from(['[AutoProxy 0.2.9]', '||gfw-one.test', '||gfw-two.test', '@@||ok.gfw-one.test', '/regex/'].join('\n')).toString('base64'));
    await options.setInputFiles('#rules-file', file);
    await options.waitForFunction(() => /^Imported/.test(document.getElementById('notice')!.textContent ?? ''));
    expect(await options.textContent('#notice')).toBe('Imported (gfwlist): 2 new rules, 1 new exclusions, 1 lines Passage cannot use.');
    await shot(options, 'options');
    // 10,000 imported rules: Chromium takes the PAC, and a listed site still loads through it.
    const many = path.join(dir, 'many.txt');
    writeFileSync(many, [...Array.from({ length: 10_000 }, (_, i) => `site${i}.example${i % 97}.test`), 'blocked.test'].join('\n'));
    await options.setInputFiles('#rules-file', many);
    await options.waitForFunction(() => /^Imported \(plain\): 10000 new rules/.test(document.getElementById('notice')!.textContent ?? ''));
    const pac = await browser.worker.evaluate(async () => ((await chrome.proxy.settings.get({})).value as { pacScript?: { data: string } }).pacScript?.data.length ?? 0);
    expect(pac).toBeGreaterThan(250_000);
    expect(await browser.visit(page, `${base}/?many-rules`)).toBeNull();
    expect(await page.textContent('#hello')).toBe('hello from blocked.test');
    await options.close();
  });

  it('dark mode follows the system setting; the shortcut command is registered (Alt+Shift+P suggested)', async () => {
    const popup = await browser.context.newPage();
    await popup.setViewportSize({ width: 380, height: 520 });
    await popup.goto(`chrome-extension://${browser.extensionId}/popup.html`);
    await popup.waitForFunction(() => document.getElementById('site')!.textContent !== '…');
    const light = await popup.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await popup.emulateMedia({ colorScheme: 'dark' });
    const dark = await popup.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(light).toBe('rgb(255, 255, 255)');
    expect(dark).toBe('rgb(22, 26, 34)');
    await shot(popup, 'popup-dark');
    await popup.close();
    // Registered with its suggested key (headless Chromium leaves a --load-extension's key unassigned; chrome://extensions/shortcuts sets it).
    const { commands, suggested } = await browser.worker.evaluate(async () => ({
      commands: await chrome.commands.getAll(),
      suggested: (chrome.runtime.getManifest().commands as Record<string, { suggested_key?: { default?: string } }>)['toggle-site']?.suggested_key?.default,
    }));
    expect(commands.find((c) => c.name === 'toggle-site')).toMatchObject({ description: 'Tunnel this site, or stop tunneling it' });
    expect(suggested).toBe('Alt+Shift+P');
  });

  it('sharing: the link never carries the pairing token, the edge token only when ticked; a backup restores what changed; an empty link imports nothing', async () => {
    await saveOptions(browser, { authToken: 'edge-secret-0123456789' });
    const options = await browser.context.newPage();
    await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
    await options.click('#export');
    await options.waitForFunction(() => (document.getElementById('config-link') as HTMLTextAreaElement).value.startsWith('passage://'));
    const plain = decodeConfigLink(await options.inputValue('#config-link'));
    expect(plain).toEqual({ edgeUrl: `http://127.0.0.1:${world.companions.edge.port}/`, transport: 'auto', webtransportHashes: [] });
    await options.check('#share-token');
    await options.fill('#config-link', '');
    await options.click('#export');
    await options.waitForFunction(() => (document.getElementById('config-link') as HTMLTextAreaElement).value.startsWith('passage://'));
    const withToken = decodeConfigLink(await options.inputValue('#config-link'));
    expect(withToken.authToken).toBe('edge-secret-0123456789');
    expect(JSON.stringify(withToken)).not.toContain(PAIRING_TOKEN);
    // Importing a link that changes nothing says so.
    await options.click('#import');
    await options.waitForFunction(() => /^Nothing to import/.test(document.getElementById('notice')!.textContent ?? ''));

    // A backup file: saved, then (after a change) restored, naming what it changed.
    const download = options.waitForEvent('download');
    await options.click('#backup');
    const saved = await (await download).path();
    const backup = readFileSync(saved!, 'utf8');
    expect(JSON.parse(backup)).toMatchObject({ passageBackup: 1, rules: { sites: expect.arrayContaining(['blocked.test', 'xn--bcher-kva.test']) } });
    await saveOptions(browser, { sessions: '5' });
    await options.reload();
    await options.setInputFiles('#restore-file', saved!);
    await options.waitForFunction(() => /^Imported: /.test(document.getElementById('notice')!.textContent ?? ''));
    expect(await options.textContent('#notice')).toBe('Imported: sessions');
    expect(await options.inputValue('#sessions')).toBe('2');
    await saveOptions(browser, { authToken: '' });
    await options.close();
  });

  it('the connection log lists connections with where they went and how they ended, and clears', async () => {
    expect(await browser.visit(page, `${base}/?log`)).toBeNull();
    const options = await browser.context.newPage();
    await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
    await options.waitForFunction(() => /blocked\.test:\d+/.test(document.getElementById('log')!.textContent ?? ''));
    expect(await options.textContent('#log')).toMatch(/nowhere\.invalid:\d+nowhere\.invalidmeek.*failed at the edge \(name not found\)/s);
    await options.click('#log-clear');
    await options.waitForFunction(() => /no connection yet/.test(document.getElementById('log')!.textContent ?? ''));
    await options.close();
  });
});

describe('e2e: the popup in each language', () => {
  for (const lang of ['fa', 'ru', 'zh-CN']) {
    it(`${lang}: the popup and options speak it (${lang === 'fa' ? 'right to left' : 'left to right'})`, async () => {
      const browser = await launchBrowser(1, { lang });
      try {
        const popup = await browser.context.newPage();
        await popup.setViewportSize({ width: 380, height: 520 });
        await popup.goto(`chrome-extension://${browser.extensionId}/popup.html`);
        await popup.waitForFunction(() => document.getElementById('site')!.textContent !== '…');
        const html = await popup.evaluate(() => ({ dir: document.documentElement.dir, lang: document.documentElement.lang, status: document.querySelector('h2[data-i18n="status"]')!.textContent }));
        expect(html.lang.replace('_', '-')).toBe(lang);
        expect(html.dir).toBe(lang === 'fa' ? 'rtl' : 'ltr');
        expect(html.status).toBe({ fa: 'وضعیت', ru: 'Состояние', 'zh-CN': '状态' }[lang]);
        await problemIs(popup, { fa: /جفت نشده/, ru: /не связан/, 'zh-CN': /尚未与伴侣程序配对/ }[lang]!);
        await shot(popup, `popup-${lang}`);
        const options = await browser.context.newPage();
        await options.setViewportSize({ width: 900, height: 1200 });
        await options.goto(`chrome-extension://${browser.extensionId}/options.html`);
        expect(await options.textContent('h1')).toBe({ fa: 'تنظیمات Passage', ru: 'Настройки Passage', 'zh-CN': 'Passage 选项' }[lang]);
        await shot(options, `options-${lang}`);
      } finally {
        await browser.close();
      }
    });
  }
});
