/// <reference types="chrome" />
/**
 * The end-to-end world: a local HTTPS origin with fake names, the real companion (edge and bridge
 * as CLI processes), and Debian's Chromium with the built extension loaded unpacked.
 * `blocked.test` is unresolvable for the browser (~NOTFOUND) but the edge resolves it to the
 * origin; `open.test` resolves for the browser directly.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page, type Worker } from 'playwright-core';
import { droppingProxy, type DroppingProxy } from './dropping-proxy.ts';
import { ROOT, startCompanion, type Companion } from './processes.ts';

export const PAIRING_TOKEN = 'e2e-pairing-token-0123456789';

/** Deterministic bytes for downloads, so the test knows the sha256 without storing the file. */
export function patternBytes(size: number, seed = 7): Buffer {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + seed) & 0xff;
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += block.length) block.copy(out, at, 0, Math.min(block.length, size - at));
  return out;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface Origin {
  port: number;
  /** Requests seen, by Host header. */
  hits: Map<string, number>;
  /** Streaming responses can be held: /hold?size=N waits after the first MiB until release(). */
  release(): void;
  /** Closes every open connection, so the browser's next request needs a new one (a new tunnel). */
  dropConnections(): void;
  /** /endless responses whose client went away before the end (the reset reached the origin). */
  endlessAborted(): number;
  close(): Promise<void>;
}

export async function startOrigin(dir: string): Promise<Origin> {
  const cert = path.join(dir, 'origin-cert.pem');
  const key = path.join(dir, 'origin-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=blocked.test', '-addext', 'subjectAltName=DNS:blocked.test,DNS:open.test', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const hits = new Map<string, number>();
  let aborted = 0;
  let releaseHeld: (() => void) | null = null;
  let held: Promise<void> = new Promise((r) => (releaseHeld = r));
  const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    const host = (req.headers.host ?? '').split(':')[0]!;
    hits.set(host, (hits.get(host) ?? 0) + 1);
    const url = new URL(req.url ?? '/', 'https://x');
    res.setHeader('cache-control', 'no-store');
    if (url.pathname === '/') {
      res.setHeader('content-type', 'text/html');
      return void res.end(`<!doctype html><title>hello from ${host}</title><h1 id="hello">hello from ${host}</h1>`);
    }
    if (url.pathname === '/many') {
      const imgs = Array.from({ length: 50 }, (_, i) => `<img src="/px/${i}.svg" width="4" height="4">`).join('');
      res.setHeader('content-type', 'text/html');
      return void res.end(`<!doctype html><title>many</title>${imgs}`);
    }
    if (url.pathname === '/endless') {
      // Bytes until the client goes away (a page that aborts its download).
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*' });
      const chunk = patternBytes(16 * 1024);
      const timer = setInterval(() => res.write(chunk), 5);
      res.on('close', () => {
        clearInterval(timer);
        if (!res.writableFinished) aborted++;
      });
      return;
    }
    if (url.pathname === '/mixed') {
      // One image from a host the browser cannot reach directly: a "failed resource" of this page.
      const port = (req.headers.host ?? '').split(':')[1] ?? '';
      res.setHeader('content-type', 'text/html');
      return void res.end(`<!doctype html><title>mixed</title><h1 id="hello">hello from ${host}</h1><img id="other" src="https://fail.test:${port}/px/abc.svg" width="4" height="4">`);
    }
    if (url.pathname.startsWith('/px/')) {
      res.setHeader('content-type', 'image/svg+xml');
      res.setHeader('cache-control', 'no-store');
      return void res.end(`<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="#${url.pathname.slice(4, 7).padEnd(3, '0')}"/></svg>`);
    }
    if (url.pathname === '/bytes' || url.pathname === '/hold') {
      const size = Number(url.searchParams.get('size'));
      const body = patternBytes(size);
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('content-length', String(size));
      res.setHeader('access-control-allow-origin', '*');
      if (url.pathname === '/bytes') return void res.end(body);
      const first = 1024 * 1024;
      res.write(body.subarray(0, first));
      void held.then(() => res.end(body.subarray(first)));
      return;
    }
    res.statusCode = 404;
    res.end('not found');
  });
  // Idle keep-alive connections close soon, so "no open connection" really means none.
  server.keepAliveTimeout = 2000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    hits,
    release() {
      releaseHeld?.();
      held = new Promise((r) => (releaseHeld = r));
    },
    dropConnections: () => server.closeAllConnections(),
    endlessAborted: () => aborted,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

export interface Companions {
  edge: Companion;
  bridge: Companion;
  edgeArgs: string[];
  restartEdge(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCompanions(dir: string, edgeExtra: string[] = [], edgeEnv: Record<string, string> = {}): Promise<Companions> {
  const edgeArgs = ['edge', '--listen', '127.0.0.1:0', '--allow-private', '--resolve', 'blocked.test=127.0.0.1', '--log-level', 'warn', ...edgeExtra];
  let edge = await startCompanion(edgeArgs, edgeEnv);
  const bridge = await startCompanion(['bridge', '--listen', '127.0.0.1:0', '--token', PAIRING_TOKEN, '--config-dir', dir, '--log-level', 'warn']);
  const self: Companions = {
    edge,
    bridge,
    edgeArgs,
    async restartEdge() {
      const port = self.edge.port;
      await self.edge.stop('SIGKILL');
      edge = await startCompanion(edgeArgs.map((a) => (a === '127.0.0.1:0' ? `127.0.0.1:${port}` : a)), edgeEnv);
      self.edge = edge;
    },
    async stop() {
      await Promise.all([self.edge.stop(), bridge.stop()]);
    },
  };
  return self;
}

export interface Browser {
  context: BrowserContext;
  worker: Worker;
  extensionId: string;
  /** A page on `url`; never throws for a failed navigation (returns the error text). */
  visit(page: Page, url: string): Promise<string | null>;
  tabIdOf(url: string): Promise<number>;
  close(): Promise<void>;
}

/** How the tests and benchmarks start Chromium (docs/PLATFORM.md): the extension loaded, test names mapped. */
export function chromiumFlags(dist: string): string[] {
  return [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--ignore-certificate-errors',
    `--host-resolver-rules=MAP blocked.test ~NOTFOUND, MAP fail.test ~NOTFOUND, MAP policy.test ~NOTFOUND, MAP nowhere.invalid ~NOTFOUND, MAP open.test 127.0.0.1`,
    `--disable-extensions-except=${dist}`,
    `--load-extension=${dist}`,
  ];
}

/** What downloadDigest needs of a page: Playwright's (Chromium) and puppeteer's (Firefox) both evaluate expressions. */
export interface EvaluatingPage {
  evaluate(expression: string): Promise<unknown>;
}

/** SHA-256 (hex) of `/bytes?size=N` (or `/hold?size=N`) fetched by the page: a download checked byte for byte. */
export async function downloadDigest(page: EvaluatingPage, size: number, path: '/bytes' | '/hold' = '/bytes'): Promise<string> {
  return (await page.evaluate(`(async () => {
    const buf = await (await fetch(${JSON.stringify(path)} + '?size=' + ${size})).arrayBuffer();
    const d = await crypto.subtle.digest('SHA-256', buf);
    return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
  })()`)) as string;
}

/** Chromium with the built extension; `lang` sets its interface language (on Linux from LANGUAGE). */
export async function launchBrowser(originPort: number, o: { lang?: string } = {}): Promise<Browser> {
  const dist = path.join(ROOT, 'dist');
  if (!existsSync(path.join(dist, 'manifest.json'))) throw new Error('dist/ is missing: npm test builds it first (npm run build)');
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'passage-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [...chromiumFlags(dist), ...(o.lang ? [`--lang=${o.lang}`] : [])],
    ...(o.lang ? { env: { ...process.env, LANGUAGE: o.lang.replace('-', '_'), LANG: `${o.lang.replace('-', '_')}.UTF-8` } } : {}),
  });
  const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker', { timeout: 15_000 }));
  const extensionId = new URL(worker.url()).host;
  return {
    context,
    worker,
    extensionId,
    visit: (page, url) => navigationError(() => page.goto(url, { waitUntil: 'load', timeout: 20_000 })),
    async tabIdOf(url) {
      // The tab's URL is updated a moment after a failed navigation settles.
      let id = -1;
      for (let i = 0; i < 500 && id < 0; i++) {
        id = await worker.evaluate(async (u) => {
          const tabs = await chrome.tabs.query({});
          return tabs.find((t) => [t.url, t.pendingUrl].some((x) => (x ?? '').startsWith(u)))?.id ?? -1;
        }, url);
        if (id < 0) await new Promise((r) => setTimeout(r, 20));
      }
      if (id < 0) throw new Error(`no tab shows ${url}: ${JSON.stringify(await worker.evaluate(async () => (await chrome.tabs.query({})).map((t) => [t.url, t.pendingUrl, t.title])))}`);
      return id;
    },
    close: () => context.close(),
  };
}

/** Fills fields of the options page (by element id) and saves, as a user would. */
export async function saveOptions(browser: Browser, fields: Record<string, string>): Promise<void> {
  const page = await browser.context.newPage();
  await page.goto(`chrome-extension://${browser.extensionId}/options.html`);
  for (const [id, value] of Object.entries(fields)) {
    if ((await page.$eval(`#${id}`, (el) => el.tagName)) === 'SELECT') await page.selectOption(`#${id}`, value);
    else await page.fill(`#${id}`, value);
  }
  await page.click('#save');
  await page.waitForSelector('#notice:not([hidden])');
  await page.close();
}

/** Sets the extension up through its options page, as a user would. */
export function configureExtension(browser: Browser, edgePort: number, bridgePort: number): Promise<void> {
  return saveOptions(browser, { edgeUrl: `http://127.0.0.1:${edgePort}/`, bridgePort: String(bridgePort), pairingToken: PAIRING_TOKEN });
}

/**
 * The extension service worker's used JS heap, through CDP (`performance.memory` does not exist
 * in workers): attach to the worker's target from a page session, collect garbage (so only what
 * is really retained counts), then ask Runtime.getHeapUsage.
 */
export async function workerHeapUsed(browser: Browser, page: Page): Promise<number> {
  const cdp = await browser.context.newCDPSession(page);
  try {
    const { targetInfos } = await cdp.send('Target.getTargets');
    const target = targetInfos.find((t) => t.type === 'service_worker' && t.url.includes(browser.extensionId));
    if (!target) throw new Error('the extension service worker has no CDP target');
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: target.targetId, flatten: false });
    const answer = new Promise<number>((resolve, reject) => {
      cdp.on('Target.receivedMessageFromTarget', (event) => {
        if (event.sessionId !== sessionId) return;
        const msg = JSON.parse(event.message) as { id?: number; result?: { usedSize: number }; error?: unknown };
        if (msg.id !== 2) return;
        if (msg.result) resolve(msg.result.usedSize);
        else reject(new Error(JSON.stringify(msg.error)));
      });
    });
    await cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }) });
    await cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: 2, method: 'Runtime.getHeapUsage' }) });
    const used = await answer;
    await cdp.send('Target.detachFromTarget', { sessionId });
    return used;
  } finally {
    await cdp.detach();
  }
}

/** Adds a site through the options page's add-site field, as a user would. */
export async function addSiteThroughOptions(browser: Browser, site: string): Promise<void> {
  const page = await browser.context.newPage();
  await page.goto(`chrome-extension://${browser.extensionId}/options.html`);
  await page.fill('#new-site', site);
  await page.click('#add-site button');
  await page.waitForSelector('#notice:not([hidden])');
  await page.close();
}

export interface EngineStatus {
  transport: string;
  transportWhy: string;
  transportDetail: string | null;
}

export function engineStatus(b: Browser): Promise<EngineStatus> {
  return b.worker.evaluate(() => (globalThis as unknown as { passage: { engine: { status(): EngineStatus } } }).passage.engine.status());
}

/** Waits (polling the worker) until the engine reports `transport` (and a reason matching `why`); returns that status. */
export function waitForTransport(b: Browser, transport: string, why = /./, timeoutMs = 30_000): Promise<EngineStatus> {
  return untilTransport(() => engineStatus(b), transport, why, timeoutMs);
}

/** Polls `read` (an engine's status, in either browser) until it reports `transport` with a reason matching `why`. */
export async function untilTransport<S extends Pick<EngineStatus, 'transport' | 'transportWhy'>>(read: () => Promise<S>, transport: string, why = /./, timeoutMs = 30_000): Promise<S> {
  const deadline = Date.now() + timeoutMs;
  // Every state passed through, with when: a failure then shows whether the engine kept trying.
  const seen: string[] = [];
  const started = Date.now();
  let s = await read();
  while (s.transport !== transport || !why.test(s.transportWhy)) {
    const line = `${s.transport}: ${s.transportWhy}`;
    if (!seen.at(-1)?.endsWith(line)) seen.push(`+${((Date.now() - started) / 1000).toFixed(1)} s ${line}`);
    if (Date.now() > deadline) throw new Error(`engine stayed on ${line}; states seen:\n${seen.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
    s = await read();
  }
  return s;
}

/** A navigation's error text, or null when it loaded: tests compare what failed, never throw for it. */
export async function navigationError(go: () => Promise<unknown>): Promise<string | null> {
  try {
    await go();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}


export interface World {
  origin: Origin;
  companions: Companions;
  browser: Browser;
  /** The answer-losing proxy between extension and edge, when asked for. */
  proxy: DroppingProxy | null;
  close(): Promise<void>;
}

/**
 * Origin, companion and Chromium, the extension configured through its options page.
 * `dropEvery`: the extension reaches the edge through a proxy that loses every Nth answer. */
export async function startWorld(edgeExtra: string[] = [], o: { dropEvery?: number } = {}): Promise<World> {
  const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-'));
  const origin = await startOrigin(dir);
  const companions = await startCompanions(dir, edgeExtra);
  const proxy = o.dropEvery ? await droppingProxy(companions.edge.port, o.dropEvery) : null;
  const browser = await launchBrowser(origin.port);
  await configureExtension(browser, proxy?.port ?? companions.edge.port, companions.bridge.port);
  return {
    origin,
    companions,
    browser,
    proxy,
    async close() {
      await browser.close();
      await proxy?.close();
      await companions.stop();
      await origin.close();
    },
  };
}
