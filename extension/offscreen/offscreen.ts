/**
 * The offscreen document (reason WEB_RTC): it holds the WebRTC peers the service worker cannot
 * (lib/peer-host.ts), and greets the worker with their control port through
 * `navigator.serviceWorker`.
 */
import { hostPeers } from '../lib/peer-host.ts';
import { OFFSCREEN_HELLO, OFFSCREEN_RECONNECT } from '../lib/peer-port.ts';

let closeAll: (() => void) | null = null;

async function greet(): Promise<void> {
  // The worker that asked for this document is gone if it greets again: its peers are void.
  closeAll?.();
  const channel = new MessageChannel();
  closeAll = hostPeers(channel.port1);
  const registration = await navigator.serviceWorker.ready;
  registration.active?.postMessage(OFFSCREEN_HELLO, [channel.port2]);
}

chrome.runtime.onMessage.addListener((message) => {
  if (message === OFFSCREEN_RECONNECT) void greet();
});

void greet();
