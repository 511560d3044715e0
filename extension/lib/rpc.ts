/**
 * The page side of comlink, to the background: in Chromium one MessageChannel posted to the
 * service worker, in Firefox a runtime.Port to the event page (lib/platform.ts). A stopped worker
 * leaves calls on the old channel hanging forever (docs/PLATFORM.md), so every call has a
 * deadline and a timed-out call reconnects and tries once more.
 */
import { wrap, type Remote } from 'comlink';
import type { PassageApi } from './api.ts';
import { API_PORT, browserKind } from './platform.ts';
import { portEndpoint } from './port-endpoint.ts';

const CALL_TIMEOUT_MS = 4000;
let remote: Remote<PassageApi> | null = null;

async function connect(): Promise<Remote<PassageApi>> {
  if (browserKind() === 'firefox') {
    const port = chrome.runtime.connect({ name: API_PORT });
    port.onDisconnect.addListener(() => (remote = null));
    return wrap<PassageApi>(portEndpoint(port));
  }
  const registration = await navigator.serviceWorker.ready;
  const worker = navigator.serviceWorker.controller ?? registration.active;
  if (!worker) throw new Error('the Passage service worker is not running');
  const channel = new MessageChannel();
  worker.postMessage('passage-api', [channel.port2]);
  return wrap<PassageApi>(channel.port1);
}

function deadline<T>(p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('the Passage service worker did not answer')), CALL_TIMEOUT_MS))]);
}

export async function call<K extends keyof PassageApi>(name: K, ...args: Parameters<PassageApi[K]>): Promise<Awaited<ReturnType<PassageApi[K]>>> {
  for (let attempt = 0; ; attempt++) {
    try {
      remote ??= await connect();
      const fn = remote[name] as unknown as (...a: unknown[]) => Promise<Awaited<ReturnType<PassageApi[K]>>>;
      return await deadline(fn(...args));
    } catch (e) {
      remote = null;
      if (attempt >= 1 || !(e instanceof Error) || !/did not answer/.test(e.message)) throw e;
    }
  }
}
