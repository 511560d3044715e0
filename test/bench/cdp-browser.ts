/**
 * Chromium with the built extension, driven over bare CDP for the browser benchmark. Playwright
 * instruments every page and service worker (an event per network chunk and WebSocket frame,
 * serialised to JSON in the browser process): measured here, that halved every download through
 * the tunnel. The benchmark measures Passage, so it talks to Chromium directly and enables no
 * CDP domain it does not need.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { ROOT } from '../support/processes.ts';
import { chromiumFlags } from '../support/e2e.ts';

interface CdpReply {
  id?: number;
  result?: Record<string, unknown>;
  error?: { message: string };
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
}

export interface CdpTarget {
  /** Evaluates an expression (awaiting a promise) and returns its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
}

export interface CdpPage extends CdpTarget {
  /** Navigates and resolves after the load event. */
  goto(url: string): Promise<void>;
  screenshot(file: string): Promise<void>;
  close(): Promise<void>;
}

export interface CdpBrowser {
  worker: CdpTarget;
  newPage(url: string, viewport?: { width: number; height: number }): Promise<CdpPage>;
  extensionId: string;
  close(): Promise<void>;
}

/** `extraFlags` go after the usual ones (the benchmark trusts its TLS front's key with them). */
export async function launchCdpBrowser(extraFlags: string[] = []): Promise<CdpBrowser> {
  const dist = path.join(ROOT, 'dist');
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'passage-bench-chromium-'));
  const chrome: ChildProcess = spawn(
    '/usr/bin/chromium',
    ['--headless=new', ...chromiumFlags(dist), ...extraFlags, '--remote-debugging-port=0', `--user-data-dir=${userDataDir}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let text = '';
    chrome.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /ws:\/\/\S+/.exec(text);
      if (m) resolve(m[0]);
    });
    chrome.once('exit', (code) => reject(new Error(`chromium exited (${code}): ${text}`)));
  });
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  await new Promise((r) => ws.once('open', r));
  let nextId = 0;
  const pending = new Map<number, (m: CdpReply) => void>();
  const events: Array<(m: CdpReply) => void> = [];
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString()) as CdpReply;
    if (m.id !== undefined) pending.get(m.id)?.(m);
    else for (const e of events) e(m);
  });
  const send = (method: string, params: object = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, (m) => {
        pending.delete(id);
        if (m.error) reject(new Error(`${method}: ${m.error.message}`));
        else resolve(m.result ?? {});
      });
      ws.send(JSON.stringify({ id, method, params, sessionId }));
    });
  const target = (sessionId: string): CdpTarget => ({
    async evaluate<T>(expression: string) {
      const r = (await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId)) as {
        result: { value: T };
        exceptionDetails?: { exception?: { description?: string } };
      };
      if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? 'evaluation failed');
      return r.result.value;
    },
  });

  type Info = { targetId: string; type: string; url: string };
  let sw: Info | undefined;
  for (let i = 0; i < 200 && !sw; i++) {
    const { targetInfos } = (await send('Target.getTargets')) as { targetInfos: Info[] };
    sw = targetInfos.find((t) => t.type === 'service_worker' && t.url.startsWith('chrome-extension://'));
    if (!sw) await new Promise((r) => setTimeout(r, 50));
  }
  if (!sw) throw new Error('the extension service worker did not start');
  const { sessionId: swSession } = (await send('Target.attachToTarget', { targetId: sw.targetId, flatten: true })) as { sessionId: string };
  const worker = target(swSession);
  // The worker's globals exist once its script ran.
  for (let i = 0; i < 200 && (await worker.evaluate<string>('typeof passage')) === 'undefined'; i++) await new Promise((r) => setTimeout(r, 50));

  return {
    worker,
    extensionId: new URL(sw.url).host,
    async newPage(url, viewport) {
      const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
      await send('Page.enable', {}, sessionId);
      if (viewport) await send('Emulation.setDeviceMetricsOverride', { ...viewport, deviceScaleFactor: 1, mobile: false }, sessionId);
      const page: CdpPage = {
        ...target(sessionId),
        async goto(to) {
          const loaded = new Promise<void>((resolve) => {
            const on = (m: CdpReply) => {
              if (m.sessionId === sessionId && m.method === 'Page.loadEventFired') {
                events.splice(events.indexOf(on), 1);
                resolve();
              }
            };
            events.push(on);
          });
          const r = (await send('Page.navigate', { url: to }, sessionId)) as { errorText?: string };
          if (r.errorText) throw new Error(`${to}: ${r.errorText}`);
          await loaded;
        },
        async screenshot(file) {
          const { data } = (await send('Page.captureScreenshot', { format: 'png' }, sessionId)) as { data: string };
          writeFileSync(file, Buffer.from(data, 'base64'));
        },
        close: () => send('Target.closeTarget', { targetId }).then(() => undefined),
      };
      if (url !== 'about:blank') await page.goto(url);
      return page;
    },
    async close() {
      const exited = new Promise((r) => chrome.once('exit', r));
      await send('Browser.close').catch(() => chrome.kill('SIGKILL'));
      await exited;
      ws.close();
      // Chromium's helpers may still be writing for a moment after the main process is gone.
      rmSync(userDataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}
