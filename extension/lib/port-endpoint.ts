/**
 * A comlink endpoint over a `runtime.Port`: how the pages reach the background in Firefox, whose
 * MV3 background is an event page (no `navigator.serviceWorker` to post a MessageChannel to).
 * Ports carry plain data only, which is all the api's calls and answers are (lib/api.ts).
 */
import type { Endpoint } from 'comlink';

/** The part of a `runtime.Port` this needs (Chromium and Firefox both have it). */
export interface RuntimePort {
  postMessage(message: unknown): void;
  onMessage: { addListener(l: (message: unknown) => void): void; removeListener(l: (message: unknown) => void): void };
  onDisconnect: { addListener(l: () => void): void };
}

export function portEndpoint(port: RuntimePort): Endpoint {
  const wrapped = new Map<EventListenerOrEventListenerObject, (message: unknown) => void>();
  return {
    postMessage: (message: unknown) => port.postMessage(message),
    addEventListener(_type: string, listener: EventListenerOrEventListenerObject) {
      const l = (data: unknown) => {
        const event = { data } as MessageEvent;
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      wrapped.set(listener, l);
      port.onMessage.addListener(l);
    },
    removeEventListener(_type: string, listener: EventListenerOrEventListenerObject) {
      const l = wrapped.get(listener);
      if (l) port.onMessage.removeListener(l);
      wrapped.delete(listener);
    },
  };
}
