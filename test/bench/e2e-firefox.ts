/**
 * The Firefox part of `npm run bench:e2e`: Debian's firefox-esr with the Firefox build, beside the
 * Chromium figures — the page of 50 subresources and the 50 MiB download, direct vs WebTransport vs
 * meek (streaming, plain HTTP), at each RTT, the delay in a relay between the extension and the
 * edge and, on the direct path, between the page and the origin.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'puppeteer-core';
import { delayRelay } from '../support/tcp-relay.ts';
import { PAIRING_TOKEN, startCompanions, startOrigin, untilTransport } from '../support/e2e.ts';
import { launchFirefox, type Firefox } from '../support/firefox.ts';
import { freeUdpPort, startUdpRelay } from '../support/udp-relay.ts';
import type { E2eRow } from './e2e.ts';

const MIB = 1024 * 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Settings merged in the background's own realm: an object made in a tab dies with the tab. */
async function configure(ff: Firefox, patch: Record<string, unknown>): Promise<void> {
  const json = JSON.stringify(patch);
  await ff.background(`async (g) => { await g.passage.engine.start(); const s = g.JSON.parse(g.JSON.stringify(g.passage.engine.settings)); g.Object.assign(s, g.JSON.parse(${JSON.stringify(json)})); await g.passage.engine.setSettings(s); }`);
}

const waitForTransport = (ff: Firefox, transport: string) => untilTransport(() => ff.background<{ transport: string; transportWhy: string }>('(g) => g.passage.engine.status()'), transport);

async function loadMs(page: Page, url: string): Promise<number> {
  await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  const images = await page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length);
  if (images !== 50) throw new Error(`only ${images} of 50 subresources loaded`);
  return page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    return n.loadEventEnd - n.startTime;
  });
}

function downloadMBs(page: Page, size: number): Promise<number> {
  return page.evaluate(async (n: number) => {
    const t0 = performance.now();
    const buf = await (await fetch(`/bytes?size=${n}&t=${t0}`, { cache: 'no-store' })).arrayBuffer();
    if (buf.byteLength !== n) throw new Error('short download');
    return n / 1e6 / ((performance.now() - t0) / 1000);
  }, size);
}

const PATHS = [
  { how: 'direct' },
  { how: 'webtransport', transport: 'auto' },
  { how: 'meek streaming, plain HTTP', transport: 'meek' },
] as const;

export async function benchFirefox(rtts: number[]): Promise<E2eRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'passage-bench-firefox-'));
  const origin = await startOrigin(dir);
  const ff = await launchFirefox();
  const rows: E2eRow[] = [];
  try {
    await ff.background(`async (g) => { await g.passage.engine.start(); const r = g.JSON.parse(g.JSON.stringify(g.passage.engine.rules)); r.sites = g.JSON.parse('["blocked.test"]'); await g.passage.engine.setRules(r); }`);
    for (const rttMs of rtts) {
      const frontPort = await freeUdpPort();
      const wtRelay = rttMs ? await startUdpRelay({ targetPort: frontPort, delayMs: rttMs / 2 }) : null;
      const advertise = wtRelay ? ['--wt-advertise', `https://127.0.0.1:${wtRelay.port}/m/`] : [];
      const companions = await startCompanions(dir, ['--path', '/m/', '--wt-listen', `127.0.0.1:${frontPort}`, ...advertise, '--config-dir', dir]);
      const edgeRelay = await delayRelay(companions.edge.port, rttMs / 2);
      const pageRelay = await delayRelay(origin.port, rttMs / 2);
      try {
        for (const spec of PATHS) {
          const tunneled = spec.how !== 'direct';
          const base = tunneled ? `https://blocked.test:${origin.port}` : `https://open.test:${pageRelay.port}`;
          if ('transport' in spec) {
            await configure(ff, { edgeUrl: `http://127.0.0.1:${edgeRelay.port}/m/`, bridgePort: companions.bridge.port, pairingToken: PAIRING_TOKEN, transport: spec.transport, meekStreaming: true, padding: true });
            await waitForTransport(ff, spec.transport === 'auto' ? 'webtransport' : spec.transport);
            origin.dropConnections();
          }
          const page = await ff.browser.newPage();
          await loadMs(page, `${base}/many`); // warm-up
          const loads: number[] = [];
          for (let i = 0; i < 5; i++) loads.push(await loadMs(page, `${base}/many`));
          rows.push({ name: `Firefox: page, 50 subresources, ${spec.how}, +${rttMs} ms`, value: median(loads), unit: 'ms', note: '' });
          const rates: number[] = [];
          for (let i = 0; i < 3; i++) rates.push(await downloadMBs(page, 50 * MIB));
          rows.push({ name: `Firefox: 50 MiB download, ${spec.how}, +${rttMs} ms`, value: median(rates), unit: 'MB/s', note: '' });
          await page.close();
        }
      } finally {
        await companions.stop();
        await edgeRelay.close();
        await pageRelay.close();
        await wtRelay?.close();
      }
    }
  } finally {
    await ff.close();
    await origin.close();
  }
  return rows;
}
