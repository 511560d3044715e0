/**
 * WebTransport end to end in Debian's Chromium: the extension's `auto` transport prefers the
 * edge's WebTransport, falls back to meek when it cannot reach it, returns when it can, and
 * survives the companion restarting a killed WebTransport front.
 */
import net from 'node:net';
import { listen } from '../support/servers.ts';
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
  type Browser,
  type Companions,
  waitForTransport,
  type Origin,
} from '../support/e2e.ts';
import { freeUdpPort, startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';
import { streamsOpened as edgeStreamsOpened } from '../support/processes.ts';

interface WtWorld {
  origin: Origin;
  companions: Companions;
  browser: Browser;
  relay: UdpRelay | null;
  close(): Promise<void>;
}

/** Origin, companion with WebTransport (behind a UDP relay when `relayed`), Chromium configured through its options. */
async function startWtWorld(relayed: boolean): Promise<WtWorld> {
  const dir = mkdtempSync(path.join(tmpdir(), 'passage-e2e-wt-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const origin = await startOrigin(dir);
    cleanups.push(() => origin.close());
    const frontPort = await freeUdpPort();
    const relay = relayed ? await startUdpRelay({ targetPort: frontPort }) : null;
    if (relay) cleanups.push(() => relay.close());
    const advertise = relay ? ['--wt-advertise', `https://127.0.0.1:${relay.port}/`] : [];
    const companions = await startCompanions(dir, ['--wt-listen', `127.0.0.1:${frontPort}`, ...advertise, '--config-dir', dir]);
    cleanups.push(() => companions.stop());
    const browser = await launchBrowser(origin.port);
    cleanups.push(() => browser.close());
    return { origin, companions, browser, relay, close };
  } catch (e) {
    // Nothing started here outlives a failed setup.
    await close();
    throw e;
  }
}

async function configure(w: WtWorld): Promise<void> {
  await saveOptions(w.browser, {
    edgeUrl: `http://127.0.0.1:${w.companions.edge.port}/`,
    bridgePort: String(w.companions.bridge.port),
    pairingToken: PAIRING_TOKEN,
    webtransportRetrySeconds: '2',
  });
  await addSiteThroughOptions(w.browser, 'blocked.test');
}

/** waitForTransport, and on a timeout what the edge said: whether it still answers, and its log. */
async function transportOf(w: WtWorld, transport: string, why?: RegExp, timeoutMs?: number) {
  try {
    return await waitForTransport(w.browser, transport, why, timeoutMs);
  } catch (e) {
    const health = await fetch(`${w.companions.edge.adminUrl}/healthz`).then((r) => r.text(), (f: Error) => `no answer (${f.message})`);
    throw new Error(`${(e as Error).message}\nedge /healthz: ${health}\nedge log:\n${w.companions.edge.stderr.join('').slice(-3000)}`);
  }
}

const streamsOpened = (c: Companions) => edgeStreamsOpened(c.edge.adminUrl);

async function loadHello(b: Browser, page: Page, url: string): Promise<void> {
  expect(await b.visit(page, url)).toBeNull();
  expect(await page.textContent('#hello')).toBe('hello from blocked.test');
}

describe('e2e: WebTransport preferred, meek as the fallback', () => {
  let w: WtWorld;
  let blocked: string;

  beforeAll(async () => {
    w = await startWtWorld(true);
    blocked = `https://blocked.test:${w.origin.port}`;
    // The WebTransport port starts closed: the extension must find its way over meek.
    await w.relay!.stop();
    await configure(w);
  });
  afterAll(() => w?.close());

  it('with the WebTransport port closed the page loads over meek; once it opens, the engine returns to WebTransport', async () => {
    const fallback = await transportOf(w, 'meek', /WebTransport failed/);
    expect(fallback.transportWhy).toMatch(/^meek: WebTransport failed: .*trying WebTransport again in 2 s/);
    // The popup says it in plain words, as a note rather than an error: the tunnel works.
    const popup = await w.browser.context.newPage();
    await popup.goto(`chrome-extension://${w.browser.extensionId}/popup.html`);
    await popup.waitForFunction(() => !document.getElementById('notice')!.hidden);
    expect(await popup.textContent('#notice')).toMatch(/^WebTransport \(and TURN, where the edge offers it\) is blocked or unavailable here, so meek carries the tunnel/);
    expect(await popup.isHidden('#problem')).toBe(true);
    await popup.close();
    const page = await w.browser.context.newPage();
    const before = await streamsOpened(w.companions);
    await loadHello(w.browser, page, `${blocked}/`);
    const afterMeek = await streamsOpened(w.companions);
    expect(afterMeek.meek).toBeGreaterThan(before.meek);
    expect(afterMeek.webtransport).toBe(before.webtransport);

    await w.relay!.start();
    const back = await transportOf(w, 'webtransport');
    // Kept-alive connections stay on the transport that opened them; new ones take WebTransport.
    w.origin.dropConnections();
    expect(back.transportWhy).toMatch(/^WebTransport: QUIC to 127\.0\.0\.1:/);
    await loadHello(w.browser, page, `${blocked}/?again`);
    const afterWt = await streamsOpened(w.companions);
    expect(afterWt.webtransport).toBeGreaterThan(afterMeek.webtransport);
    expect(afterWt.meek).toBe(afterMeek.meek);
    await page.close();
  });

  it('blocked.test loads over WebTransport and a 20 MiB download through it is byte-exact', async () => {
    await transportOf(w, 'webtransport');
    const page = await w.browser.context.newPage();
    const before = await streamsOpened(w.companions);
    expect(await w.browser.visit(page, `${blocked}/many`)).toBeNull();
    expect(await page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length)).toBe(50);
    const size = 20 * 1024 * 1024;
    expect(await downloadDigest(page, size)).toBe(sha256(patternBytes(size)));
    const after = await streamsOpened(w.companions);
    expect(after.webtransport).toBeGreaterThan(before.webtransport);
    expect(after.meek).toBe(before.meek);
    // The popup says which transport and why.
    const popup = await w.browser.context.newPage();
    await popup.goto(`chrome-extension://${w.browser.extensionId}/popup.html`);
    await popup.waitForFunction(() => /^Carried by WebTransport/.test(document.getElementById('status-transport')!.textContent ?? ''));
    await popup.close();
    await page.close();
  });

  it('a session whose UDP goes silent mid-session is left for meek within seconds, and taken up again when UDP flows', async () => {
    await transportOf(w, 'webtransport');
    w.relay!.blackhole = true;
    // Nothing tells the browser: only the unanswered keep-alive datagrams do (QUIC would wait 30 s).
    const dropped = await transportOf(w, 'meek', /no answer from the edge for 3 s/, 15_000);
    expect(dropped.transportWhy).toMatch(/^meek: WebTransport session ended: no answer from the edge for 3 s; trying WebTransport again in 2 s/);
    w.origin.dropConnections();
    const page = await w.browser.context.newPage();
    const before = await streamsOpened(w.companions);
    await loadHello(w.browser, page, `${blocked}/?silent`);
    expect((await streamsOpened(w.companions)).meek).toBeGreaterThan(before.meek);
    w.relay!.blackhole = false;
    await transportOf(w, 'webtransport');
    await page.close();
  });

  it('"WebTransport only" never falls back: with its port closed the site fails, and the popup says why', async () => {
    await w.relay!.stop();
    await saveOptions(w.browser, { transport: 'webtransport' });
    const down = await transportOf(w, 'none', /WebTransport failed/);
    expect(down.transportWhy).toMatch(/^WebTransport failed: .*trying WebTransport again in 2 s/);
    const popup = await w.browser.context.newPage();
    await popup.goto(`chrome-extension://${w.browser.extensionId}/popup.html`);
    await popup.waitForFunction(() => /WebTransport cannot reach the edge/.test(document.getElementById('problem')!.textContent ?? ''));
    await popup.close();
    w.origin.dropConnections();
    const page = await w.browser.context.newPage();
    const before = await streamsOpened(w.companions);
    expect(await w.browser.visit(page, `${blocked}/?strict`)).toMatch(/ERR_/);
    expect((await streamsOpened(w.companions)).meek).toBe(before.meek);
    await w.relay!.start();
    await transportOf(w, 'webtransport');
    await loadHello(w.browser, page, `${blocked}/?strict-back`);
    await saveOptions(w.browser, { transport: 'auto' });
    await page.close();
  });
});

describe('e2e: the WebTransport front killed mid-session', () => {
  let w: WtWorld;
  let blocked: string;

  beforeAll(async () => {
    w = await startWtWorld(false);
    blocked = `https://blocked.test:${w.origin.port}`;
    await configure(w);
  });
  afterAll(() => w?.close());

  async function front(): Promise<{ pid: number | null; restarts: number }> {
    const health = (await (await fetch(`${w.companions.edge.adminUrl}/healthz`)).json()) as { webtransportFront: { pid: number | null; restarts: number } };
    return health.webtransportFront;
  }

  it('the companion restarts it and browsing recovers, over WebTransport again', async () => {
    await transportOf(w, 'webtransport');
    const page = await w.browser.context.newPage();
    await loadHello(w.browser, page, `${blocked}/`);
    const killed = await front();
    expect(killed.pid).not.toBeNull();
    process.kill(killed.pid!, 'SIGKILL');
    // The engine notices within seconds (keep-alive datagrams unanswered, or QUIC told it) and falls back.
    await transportOf(w, 'meek', /WebTransport session ended/);

    // A connection opened on the dead session is reset once its keep-alive goes unanswered (3 s):
    // the user sees at most one failed load, and the reload goes through (over meek or the new front).
    const first = await w.browser.visit(page, `${blocked}/?during`);
    if (first !== null) expect(first).toMatch(/ERR_/);
    await loadHello(w.browser, page, `${blocked}/?during-retry`);
    const deadline = Date.now() + 30_000;
    let now = await front();
    while (now.restarts < 1 || now.pid === null || now.pid === killed.pid) {
      if (Date.now() > deadline) throw new Error(`front not restarted: ${JSON.stringify(now)}`);
      await new Promise((r) => setTimeout(r, 100));
      now = await front();
    }
    await transportOf(w, 'webtransport');
    w.origin.dropConnections();
    const before = await streamsOpened(w.companions);
    await loadHello(w.browser, page, `${blocked}/?after`);
    expect((await streamsOpened(w.companions)).webtransport).toBeGreaterThan(before.webtransport);
    await page.close();
  });
});

describe('e2e: resets through WebTransport, both ways', () => {
  let w: WtWorld;
  let blocked: string;
  const errors: string[] = [];

  beforeAll(async () => {
    w = await startWtWorld(false);
    blocked = `https://blocked.test:${w.origin.port}`;
    // What the worker throws would show here: a reset must not raise (WebTransportError's constructor once did).
    w.browser.worker.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    await configure(w);
    await transportOf(w, 'webtransport');
  });
  afterAll(() => w?.close());

  const lastEntries = () =>
    w.browser.worker.evaluate(() => (globalThis as unknown as { passage: { engine: { connections(): Array<{ host: string; port: number; outcome: string; code: number | null; by: string | null; transport: string }> } } }).passage.engine.connections().slice(0, 20));

  it('the site resets mid-response: the page sees its request fail (not hang, not truncated quietly), no exception in the worker, the next load works', async () => {
    // The site's connection cut by a TCP RST after 64 KiB of its answer (a relay in front of the origin; TLS stays end to end).
    const rst = await listen((client) => {
      const origin = net.connect(w.origin.port, '127.0.0.1');
      let down = 0;
      client.pipe(origin);
      origin.on('data', (d: Buffer) => {
        down += d.length;
        if (down > 64 * 1024) return void (client.resetAndDestroy(), origin.destroy());
        client.write(d);
      });
      client.on('error', () => origin.destroy());
      origin.on('error', () => client.destroy());
    });
    const page = await w.browser.context.newPage();
    try {
      await loadHello(w.browser, page, `${blocked}/`);
      const outcome = await page.evaluate(async (port) => {
        try {
          const buf = await (await fetch(`https://blocked.test:${port}/bytes?size=1048576`)).arrayBuffer();
          return `read ${buf.byteLength}`;
        } catch (e) {
          return `failed: ${(e as Error).message}`;
        }
      }, rst.port);
      expect(outcome).toMatch(/^failed/);
      // Over WebTransport the edge can only stop the stream (Deno sends no RESET_STREAM, PROTOCOL.md §4): the log shows it ended.
      await expect.poll(async () => (await lastEntries()).some((e) => e.port === rst.port && e.transport === 'webtransport' && e.outcome !== 'open')).toBe(true);
      await loadHello(w.browser, page, `${blocked}/?after-rst`);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      await rst.close();
    }
  });

  it('the page aborts a download: the reset reaches the edge and the site (its response ends early), the next load works', async () => {
    const page = await w.browser.context.newPage();
    await loadHello(w.browser, page, `${blocked}/`);
    const before = w.origin.endlessAborted();
    const got = await page.evaluate(async () => {
      const ac = new AbortController();
      const reader = (await fetch('/endless', { signal: ac.signal })).body!.getReader();
      let n = 0;
      while (n < 256 * 1024) n += (await reader.read()).value?.length ?? 0;
      ac.abort();
      return n;
    });
    expect(got).toBeGreaterThanOrEqual(256 * 1024);
    // The browser keeps an aborted HTTP/1.1 connection only if it can reuse it: it cannot, so it closes it, and the stream is reset toward the edge.
    await expect.poll(() => w.origin.endlessAborted(), { timeout: 15_000 }).toBe(before + 1);
    await loadHello(w.browser, page, `${blocked}/?after-abort`);
    expect(errors).toEqual([]);
    await page.close();
  });
});
