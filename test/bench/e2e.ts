/**
 * `npm run bench:e2e`: Passage in real Chromium, driven over bare CDP (cdp-browser.ts says why).
 * Page load (50 subresources) and a 50 MiB download, direct vs through WebTransport vs through
 * meek, at 0 and +50 ms RTT. The delay sits in a relay between the extension and the edge (UDP
 * in front of the WebTransport port, TCP in front of meek) and between the page and the origin on
 * the direct path. meek is measured twice: on plain HTTP as the client benchmark did, and through
 * a TLS front as a deployed edge runs behind its reverse proxy or CDN (WebTransport always pays
 * for QUIC's TLS). Then idle meek polls per minute, measured over a minute
 * after 2 minutes without traffic, with one open but silent connection and with none. Also
 * writes docs/popup.png.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { delayRelay } from './edge-throughput.ts';
import { launchCdpBrowser, type CdpBrowser, type CdpPage } from './cdp-browser.ts';
import { PAIRING_TOKEN, freeUdpPort, startCompanions, startOrigin, type Companions } from '../support/e2e.ts';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';
import { ROOT } from '../support/processes.ts';

const MIB = 1024 * 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function loadMs(page: CdpPage, url: string): Promise<number> {
  await page.goto(url);
  const images = await page.evaluate<number>('[...document.images].filter((i) => i.complete && i.naturalWidth > 0).length');
  if (images !== 50) throw new Error(`only ${images} of 50 subresources loaded`);
  return page.evaluate<number>("(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()");
}

function downloadMBs(page: CdpPage, size: number): Promise<number> {
  return page.evaluate<number>(`(async (n) => {
    const t0 = performance.now();
    const buf = await (await fetch('/bytes?size=' + n + '&t=' + t0, { cache: 'no-store' })).arrayBuffer();
    if (buf.byteLength !== n) throw new Error('short download');
    return n / 1e6 / ((performance.now() - t0) / 1000);
  })(${size})`);
}

async function polls(edgeUrl: string): Promise<number> {
  const text = await (await fetch(`${edgeUrl}/metrics`)).text();
  return Number(/passage_edge_polls_total (\d+)/.exec(text)?.[1] ?? 0);
}

/** base64 sha-256 of a certificate's public key: what --ignore-certificate-errors-spki-list wants. */
function spkiHash(certPem: Buffer): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** TLS in front of a plain TCP port: what a reverse proxy or CDN adds to a deployed meek edge. */
function tlsFront(targetPort: number, cert: Buffer, key: Buffer): Promise<{ port: number; close(): void }> {
  const server = tls.createServer({ cert, key }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    // As reverse proxies do: no Nagle delay on a reply's last, short segment.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })));
}

async function configure(browser: CdpBrowser, settings: Record<string, unknown>): Promise<void> {
  await browser.worker.evaluate(`passage.engine.start().then(() => passage.engine.setSettings({ ...passage.engine.settings, ...${JSON.stringify(settings)} }))`);
}

async function waitForTransport(browser: CdpBrowser, transport: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await browser.worker.evaluate<{ transport: string; transportWhy: string }>('passage.engine.status()');
    if (s.transport === transport) return;
    if (Date.now() > deadline) throw new Error(`engine stayed on ${s.transport}: ${s.transportWhy}`);
    await sleep(100);
  }
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
    for (const meek of ['meek', 'meek over TLS']) {
      out.push({
        name: `download, WebTransport ÷ ${meek}, +${rtt} ms`,
        value: get(`50 MiB download, webtransport, +${rtt} ms`) / get(`50 MiB download, ${meek}, +${rtt} ms`),
        unit: '×',
        note: 'target ≥ 2',
      });
    }
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
  const cert = readFileSync(path.join(dir, 'origin-cert.pem'));
  const key = readFileSync(path.join(dir, 'origin-key.pem'));
  // Trusted by its key, the TLS front's certificate raises no error: Chromium reuses no connection
  // that had one, which would cost meek a handshake per poll that a deployed edge does not pay.
  const browser = await launchCdpBrowser([`--ignore-certificate-errors-spki-list=${spkiHash(cert)}`]);
  const rows: E2eRow[] = [];
  let companions: Companions | null = null;
  const closers: Array<() => unknown> = [];
  try {
    await browser.worker.evaluate(`passage.engine.start().then(() => passage.engine.setRules({ ...passage.engine.rules, sites: ['blocked.test'] }))`);
    for (const rttMs of [0, 50]) {
      // The edge advertises the UDP relay when there is a delay to add, else its own port.
      const frontPort = await freeUdpPort();
      const wtRelay: UdpRelay | null = rttMs ? await startUdpRelay({ targetPort: frontPort, delayMs: rttMs / 2 }) : null;
      const advertise = wtRelay ? ['--wt-advertise', `https://127.0.0.1:${wtRelay.port}/`] : [];
      companions = await startCompanions(dir, ['--wt-listen', `127.0.0.1:${frontPort}`, ...advertise, '--config-dir', dir]);
      const edgeRelay = rttMs ? await delayRelay(companions.edge.port, rttMs / 2) : null;
      const meekTls = await tlsFront(edgeRelay?.port ?? companions.edge.port, cert, key);
      const originRelay = rttMs ? await delayRelay(origin.port, rttMs / 2) : null;
      closers.push(() => wtRelay?.close(), () => edgeRelay?.close(), () => meekTls.close(), () => originRelay?.close());
      const blocked = `https://blocked.test:${origin.port}`;
      const plainEdge = `http://127.0.0.1:${edgeRelay?.port ?? companions.edge.port}/`;
      const tlsEdge = `https://127.0.0.1:${meekTls.port}/`;
      // meek as the client benchmark measured it (plain HTTP on loopback), and behind TLS as deployed.
      const paths: Array<{ how: string; base: string; transport?: 'auto' | 'meek'; edgeUrl?: string }> = [
        { how: 'direct', base: `https://open.test:${originRelay?.port ?? origin.port}` },
        { how: 'webtransport', base: blocked, transport: 'auto', edgeUrl: tlsEdge },
        { how: 'meek', base: blocked, transport: 'meek', edgeUrl: plainEdge },
        { how: 'meek over TLS', base: blocked, transport: 'meek', edgeUrl: tlsEdge },
      ];
      for (const { how, base, transport, edgeUrl } of paths) {
        if (transport) {
          // A new transport setting starts a new tunnel; the old one's connections close.
          await configure(browser, { edgeUrl, bridgePort: companions.bridge.port, pairingToken: PAIRING_TOKEN, transport });
          await waitForTransport(browser, transport === 'auto' ? 'webtransport' : 'meek').catch((e: Error) => {
            throw new Error(`${e.message}\nedge log:\n${companions!.edge.stderr.join('').slice(-3000)}`);
          });
          origin.dropConnections();
        }
        const page = await browser.newPage('about:blank');
        await loadMs(page, `${base}/many`); // warm-up: connections, TLS, the transport's windows
        const loads = [await loadMs(page, `${base}/many`), await loadMs(page, `${base}/many`), await loadMs(page, `${base}/many`)];
        const mbs = [await downloadMBs(page, 50 * MIB), await downloadMBs(page, 50 * MIB), await downloadMBs(page, 50 * MIB)];
        rows.push({ name: `page load, 50 subresources, ${how}, +${rttMs} ms`, value: median(loads), unit: 'ms' });
        const target = rttMs === 0 ? ({ meek: 'target ≥ 10 MB/s', webtransport: 'target ≥ 20 MB/s' } as Record<string, string>)[how] : '';
        rows.push({ name: `50 MiB download, ${how}, +${rttMs} ms`, value: median(mbs), unit: 'MB/s', note: target });
        await page.close();
      }
      // The last run's relays stay up for the popup and the idle measurement.
      if (rttMs === 0) {
        for (const c of closers.splice(0)) c();
        await companions.stop();
      }
    }
    rows.push(...ratios(rows));
    const c = companions!;
    await configure(browser, { edgeUrl: `http://127.0.0.1:${c.edge.port}/`, bridgePort: c.bridge.port, pairingToken: PAIRING_TOKEN, transport: 'auto' });
    await waitForTransport(browser, 'webtransport');

    // The popup, for the docs.
    const page = await browser.newPage(`https://blocked.test:${origin.port}/`);
    const tabId = await browser.worker.evaluate<number>(`chrome.tabs.query({}).then((ts) => ts.find((t) => (t.url ?? '').includes('blocked.test')).id)`);
    const popup = await browser.newPage(`chrome-extension://${browser.extensionId}/popup.html?tab=${tabId}`, { width: 380, height: 420 });
    for (let i = 0; i < 100 && !(await popup.evaluate<boolean>(`/Edge reachable/.test(document.getElementById('status-edge').textContent)`)); i++) await sleep(100);
    await popup.screenshot(path.join(ROOT, 'docs', 'popup.png'));
    await popup.close();

    if (options.idle) {
      await configure(browser, { transport: 'meek' });
      await waitForTransport(browser, 'meek');
      origin.dropConnections();
      // One open but silent connection: the origin holds a response after its first MiB.
      await page.evaluate(`void fetch('/hold?size=2097152').then((r) => r.body.getReader().read())`);
      await sleep(120_000);
      let before = await polls(c.edge.adminUrl);
      await sleep(60_000);
      rows.push({ name: 'idle meek polls per minute, one silent connection', value: (await polls(c.edge.adminUrl)) - before, unit: '/min', note: 'target ≤ 12 per session; Tor meek 12, Lantern 600' });
      origin.release();
      await page.goto('about:blank');
      // No connection: the origin's keep-alive timeout closes idle connections, then nothing may poll.
      await sleep(120_000);
      before = await polls(c.edge.adminUrl);
      await sleep(60_000);
      rows.push({ name: 'idle meek polls per minute, no connection', value: (await polls(c.edge.adminUrl)) - before, unit: '/min', note: 'target 0' });
    }
    await page.close();
  } finally {
    for (const c of closers) c();
    await browser.close();
    await companions?.stop();
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
