// shared/ is type-checked without Node or DOM libraries (tsconfig.shared.json) so that it cannot
// reach for either by accident. These are the few host globals it may use: each exists in an
// extension service worker, in Node 20 and in Deno.
declare function queueMicrotask(callback: () => void): void;
declare function setTimeout(callback: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare const crypto: { getRandomValues<T extends Uint8Array>(array: T): T };
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
interface AbortSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
/** `any` is in Chromium 116+, Node 20.3+ and Deno. */
declare const AbortSignal: { any(signals: AbortSignal[]): AbortSignal };
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
declare function btoa(data: string): string;
declare function atob(data: string): string;
/** WHATWG URL (the settings' edge URL rule): the subset shared/ reads. */
declare class URL {
  constructor(url: string, base?: string);
  readonly protocol: string;
  readonly hostname: string;
  readonly username: string;
  readonly password: string;
}
