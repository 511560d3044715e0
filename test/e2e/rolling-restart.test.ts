/**
 * A rolling restart of every edge behind the real HAProxy (deploy/haproxy.cfg), under load from
 * real Chromium with the built extension: each edge in turn gets SIGTERM (systemd's stop), drains
 * and exits, and starts again on its ports, while pages with 50 subresources and downloads keep
 * loading through the tunnel. Not one of them may fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { addSiteThroughOptions, downloadDigest, launchBrowser, PAIRING_TOKEN, patternBytes, saveOptions, sha256, startOrigin, type Browser, type Origin } from '../support/e2e.ts';
import { startCompanion, type Companion } from '../support/processes.ts';
import { edgePorts, selfSigned, startHaproxy, type Haproxy } from '../support/reverse-proxies.ts';

const EDGE_ARGS = ['edge', '--allow-private', '--resolve', 'blocked.test=127.0.0.1', '--trusted-proxy', '127.0.0.1', '--drain-notice', '1', '--log-level', 'warn'];

describe('e2e: a rolling restart of three edges behind HAProxy', () => {
  let dir: string;
  let origin: Origin;
  let edges: Companion[];
  let bridge: Companion;
  let haproxy: Haproxy;
  let browser: Browser;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'passage-rolling-'));
    const tls = selfSigned(dir);
    origin = await startOrigin(dir);
    edges = await Promise.all([0, 1, 2].map(() => startCompanion([...EDGE_ARGS, '--listen', '127.0.0.1:0'])));
    bridge = await startCompanion(['bridge', '--listen', '127.0.0.1:0', '--token', PAIRING_TOKEN, '--config-dir', dir, '--log-level', 'warn']);
    haproxy = await startHaproxy({ edges: edges.map(edgePorts), tls });
    await haproxy.untilReady(3);
    browser = await launchBrowser(origin.port);
    await saveOptions(browser, { edgeUrl: `https://127.0.0.1:${haproxy.port}/`, bridgePort: String(bridge.port), pairingToken: PAIRING_TOKEN });
    await addSiteThroughOptions(browser, 'blocked.test');
  });
  afterAll(async () => {
    await browser?.close();
    await haproxy?.close();
    await Promise.all([...(edges ?? []), bridge].filter(Boolean).map((c) => c.stop()));
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Loads the 50-subresource page and a 2 MiB download until `stop` says so; returns each load's failure, or null. */
  async function keepLoading(page: Page, stop: () => boolean): Promise<Array<string | null>> {
    const base = `https://blocked.test:${origin.port}`;
    const want = sha256(patternBytes(2 * 1024 * 1024));
    const results: Array<string | null> = [];
    for (let i = 0; !stop() || i < 2; i++) {
      const error = await browser.visit(page, `${base}/many?load=${i}`);
      if (error) results.push(error);
      else {
        const broken = await page.evaluate(() => [...document.images].filter((img) => !img.complete || img.naturalWidth === 0).length);
        const got = await downloadDigest(page, 2 * 1024 * 1024).catch((e: Error) => e.message);
        results.push(broken > 0 ? `${broken} images did not load` : got !== want ? `download: ${got}` : null);
      }
    }
    return results;
  }

  it('SIGTERM, drain, start again, edge by edge: every page load and download succeeds', async () => {
    let done = false;
    const pages = await Promise.all([0, 1].map(() => browser.context.newPage()));
    const loads = Promise.all(pages.map((p) => keepLoading(p, () => done)));
    const drained: number[] = [];
    try {
      for (let i = 0; i < edges.length; i++) {
        const { port, adminPort } = edgePorts(edges[i]!);
        const started = Date.now();
        expect(await edges[i]!.stop('SIGTERM')).toBe(0);
        drained.push(Date.now() - started);
        edges[i] = await startCompanion([...EDGE_ARGS, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`]);
        await haproxy.untilReady(3);
      }
    } finally {
      done = true;
    }
    const results = (await loads).flat();
    console.log(`rolling restart: ${results.length} loads (page of 50 + 2 MiB), drains took ${drained.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}`);
    expect(results.filter((r) => r !== null)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(6);
  });
});
