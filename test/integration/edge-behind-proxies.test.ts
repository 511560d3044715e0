/**
 * The edge behind real reverse proxies, configured from deploy/: Debian's nginx (with
 * proxy_buffering on, as shipped) and HAProxy stream meek v2's downloads; behind a proxy that
 * buffers whole responses the client notices and falls back to polling by itself. Every case
 * moves data both ways byte-exact; a v1 client works through each too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCompanion, type Companion } from '../support/processes.ts';
import { echoServer, type TestServer } from '../support/servers.ts';
import { meekMux } from '../support/node-meek.ts';
import { exchange } from '../support/stream-exchange.ts';
import { edgePorts, selfSigned, startBufferingProxy, startHaproxy, startNginx, type Proxy } from '../support/reverse-proxies.ts';
import type { MeekMode } from '../../shared/meek/pipelined-session.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');


describe('the edge behind reverse proxies', () => {
  let echo: TestServer;
  let edge: Companion;
  let dir: string;
  let tls: ReturnType<typeof selfSigned>;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'passage-proxies-'));
    tls = selfSigned(dir);
    echo = await echoServer();
    edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--path', '/m/', '--allow-private', '--trusted-proxy', '127.0.0.1', '--log-level', 'warn']);
  });
  afterAll(async () => {
    await edge?.stop();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function carry(url: string, version: 1 | 2): Promise<{ mode: MeekMode | undefined; modes: MeekMode[] }> {
    const modes: MeekMode[] = [];
    const c = meekMux({ url, version, ca: tls.ca, onMode: (m) => modes.push(m) });
    try {
      const data = randomBytes(4 * 1024 * 1024);
      const back = await exchange(c.mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port }), data);
      expect(sha(back)).toBe(sha(data));
      return { mode: c.session.mode, modes };
    } finally {
      c.session.close();
    }
  }

  for (const [name, start] of [
    ['nginx (proxy_buffering on, as shipped)', () => startNginx({ edges: [edgePorts(edge)], tls })],
    ['HAProxy', async () => {
      const h = await startHaproxy({ edges: [edgePorts(edge)], tls });
      await h.untilReady(1);
      return h;
    }],
  ] as const) {
    describe(name, () => {
      let proxy: Proxy;
      beforeAll(async () => {
        proxy = await start();
      });
      afterAll(async () => proxy?.close());

      it('meek v2 streams its downloads through it, 4 MiB each way byte-exact', async () => {
        const r = await carry(`https://127.0.0.1:${proxy.port}/m/`, 2);
        expect(r.modes).toEqual([]);
        expect(r.mode).toBe('stream');
      });

      it('a meek v1 client works through it unchanged', async () => {
        const r = await carry(`https://127.0.0.1:${proxy.port}/m/`, 1);
        expect(r.mode).toBeUndefined();
      });
    });
  }

  describe('a proxy that buffers whole responses', () => {
    let proxy: Proxy;
    beforeAll(async () => {
      proxy = await startBufferingProxy(edge.port);
    });
    afterAll(async () => proxy?.close());

    it('the client notices within seconds and polls instead; 4 MiB each way byte-exact', async () => {
      const r = await carry(`http://127.0.0.1:${proxy.port}/m/`, 2);
      expect(r.modes).toEqual(['poll']);
      expect(r.mode).toBe('poll');
    }, 60_000);
  });
});
