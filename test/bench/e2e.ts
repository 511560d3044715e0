/**
 * `npm run bench:e2e`: Passage in real Chromium. Page load (50 subresources) and a 50 MiB
 * download, direct vs through WebTransport vs through meek, at 0 and +50 ms RTT — the delay sits
 * in a relay between the extension and the edge (UDP in front of the WebTransport port, TCP in
 * front of meek), and the direct path reaches the origin through the same kind of TCP relay. Then idle meek polls per minute, measured over a minute after 2 minutes without
 * traffic, with one open but silent connection and with none. Also writes docs/popup.png.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { delayRelay } from './edge-throughput.ts';
import { addSiteThroughOptions, configureExtension, freeUdpPort, saveOptions, launchBrowser, startCompanions, startOrigin, waitForTransport } from '../support/e2e.ts';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';
import { ROOT } from '../support/processes.ts';

const MIB = 1024 * 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function loadMs(page: Page, url: string): Promise<number> {
  await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  const images = await page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length);
  if (images !== 50) throw new Error(`only ${images} of 50 subresources loaded`);
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    return nav.loadEventEnd - nav.startTime;
  });
}

async function downloadMBs(page: Page, size: number): Promise<number> {
  return page.evaluate(async (n) => {
    const t0 = performance.now();
    const buf = await (await fetch(`/bytes?size=${n}&t=${t0}`, { cache: 'no-store' })).arrayBuffer();
    if (buf.byteLength !== n) throw new Error('short download');
    return n / 1e6 / ((performance.now() - t0) / 1000);
  }, size);
}


async function polls(edgeUrl: string): Promise<number> {
  const text = await (await fetch(`${edgeUrl}/metrics`)).text();
  return Number(/passage_edge_polls_total (\d+)/.exec(text)?.[1] ?? 0);
}

export interface E2eRow {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/** The comparisons the targets name: WebTransport against meek and against direct, per RTT. */
function ratios(rows: E2eRow[]): E2eRow[] {
  const get = (name: string) => rows.find((r) => r.name === name)?.value ?? NaN;
  const out: E2eRow[] = [];
  for (const rtt of [0, 50]) {
    out.push({
      name: `download, WebTransport ÷ meek, +${rtt} ms`,
      value: get(`50 MiB download, webtransport, +${rtt} ms`) / get(`50 MiB download, meek, +${rtt} ms`),
      unit: '×',
      note: 'target ≥ 2',
    });
    out.push({
      name: `page load, WebTransport ÷ direct, +${rtt} ms`,
      value: get(`page load, 50 subresources, webtransport, +${rtt} ms`) / get(`page load, 50 subresources, direct, +${rtt} ms`),
      unit: '×',
      note: rtt === 50 ? 'target ≤ 1.5' : '',
    });
  }
  return out;
}

export async function benchE2e(options: { idle: boolean } = { idle: true }): Promise<E2eRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'passage-bench-'));
  const origin = await startOrigin(dir);
  // The edge advertises the UDP relay's port; the relay is remade with each run's delay.
  const frontPort = await freeUdpPort();
  let wtRelay: UdpRelay = await startUdpRelay({ targetPort: frontPort });
  const companions = await startCompanions(dir, ['--wt-listen', `127.0.0.1:${frontPort}`, '--wt-advertise', `https://127.0.0.1:${wtRelay.port}/`, '--config-dir', dir]);
  const browser = await launchBrowser(origin.port);
  const rows: E2eRow[] = [];
  try {
    await configureExtension(browser, companions.edge.port, companions.bridge.port);
    await addSiteThroughOptions(browser, 'blocked.test');

    for (const rttMs of [0, 50]) {
      const edgeRelay = rttMs ? await delayRelay(companions.edge.port, rttMs / 2) : null;
      const originRelay = rttMs ? await delayRelay(origin.port, rttMs / 2) : null;
      const relayPort = wtRelay.port;
      await wtRelay.close();
      wtRelay = await startUdpRelay({ targetPort: frontPort, port: relayPort, delayMs: rttMs / 2 });
      const edgeUrl = `http://127.0.0.1:${edgeRelay?.port ?? companions.edge.port}/`;
      const paths = {
        direct: `https://open.test:${originRelay?.port ?? origin.port}`,
        webtransport: `https://blocked.test:${origin.port}`,
        meek: `https://blocked.test:${origin.port}`,
      };
      for (const [how, base] of Object.entries(paths)) {
        if (how !== 'direct') {
          // A new edge URL or transport starts a new tunnel; connections of the old one close.
          await saveOptions(browser, { edgeUrl, transport: how === 'meek' ? 'meek' : 'auto' });
          await waitForTransport(browser, how);
          origin.dropConnections();
        }
        const page = await browser.context.newPage();
        await loadMs(page, `${base}/many`); // warm-up: connections, TLS
        const loads = [await loadMs(page, `${base}/many`), await loadMs(page, `${base}/many`), await loadMs(page, `${base}/many`)];
        const mbs = [await downloadMBs(page, 50 * MIB), await downloadMBs(page, 50 * MIB)];
        rows.push({ name: `page load, 50 subresources, ${how}, +${rttMs} ms`, value: median(loads), unit: 'ms' });
        const target = how === 'meek' && rttMs === 0 ? 'target ≥ 10 MB/s' : how === 'webtransport' && rttMs === 0 ? 'target ≥ 20 MB/s and ≥ 2× meek' : '';
        rows.push({ name: `50 MiB download, ${how}, +${rttMs} ms`, value: Math.max(...mbs), unit: 'MB/s', note: target });
        await page.close();
      }
      edgeRelay?.close();
      originRelay?.close();
    }
    await saveOptions(browser, { edgeUrl: `http://127.0.0.1:${companions.edge.port}/`, transport: 'meek' });
    await waitForTransport(browser, 'meek');
    rows.push(...ratios(rows));

    // The popup, for the docs.
    const page = await browser.context.newPage();
    await page.goto(`https://blocked.test:${origin.port}/`);
    const tabId = await browser.tabIdOf(`https://blocked.test:${origin.port}/`);
    const popup = await browser.context.newPage();
    await popup.setViewportSize({ width: 380, height: 420 });
    await popup.goto(`chrome-extension://${browser.extensionId}/popup.html?tab=${tabId}`);
    await popup.waitForFunction(() => /Edge reachable/.test(document.getElementById('status-edge')!.textContent ?? ''));
    await popup.screenshot({ path: path.join(ROOT, 'docs', 'popup.png') });
    await popup.close();

    if (options.idle) {
      // One open but silent connection: the origin holds a response after its first MiB.
      await page.evaluate(() => void fetch('/hold?size=2097152').then((r) => r.body!.getReader().read()));
      await sleep(120_000);
      let before = await polls(companions.edge.url);
      await sleep(60_000);
      rows.push({ name: 'idle meek polls per minute, one silent connection', value: (await polls(companions.edge.url)) - before, unit: '/min', note: 'target ≤ 12 per session; Tor meek 12, Lantern 600' });
      origin.release();
      await page.close();
      await browser.context.pages()[0]?.goto('about:blank');
      // No connection: the origin's keep-alive timeout closes idle connections, then nothing may poll.
      await sleep(120_000);
      before = await polls(companions.edge.url);
      await sleep(60_000);
      rows.push({ name: 'idle meek polls per minute, no connection', value: (await polls(companions.edge.url)) - before, unit: '/min', note: 'target 0' });
    }
  } finally {
    await browser.close();
    await companions.stop();
    await wtRelay.close();
    await origin.close();
  }
  return rows;
}

if (process.argv[1] && /bench[\\/]e2e\.js$/.test(process.argv[1])) {
  const rows = await benchE2e({ idle: !process.argv.includes('--no-idle') });
  for (const r of rows) console.log(`${r.name.padEnd(58)} ${r.value.toFixed(r.unit === 'ms' ? 0 : 2).padStart(9)} ${r.unit.padEnd(5)} ${r.note ?? ''}`);
  console.log(JSON.stringify({ results: rows }, null, 2));
  process.exit(0);
}
