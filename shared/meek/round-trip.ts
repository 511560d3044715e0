/**
 * One meek round trip as both clients see it (PROTOCOL.md §1): the request and response shapes,
 * the headers they become, and the retry rule — network errors, timeouts and 5xx are retried
 * with the same seq and body (Psiphon's backoff, 50 ms doubling to 1 s) for up to 15 s after the
 * first failure; 410 ends the session; any other non-200 is final. The transport itself (`fetch`
 * in the extension, node:http in tests) is injected.
 */
import type { Clock } from '../clock.ts';
import { MeekError } from '../errors.ts';
import {
  HEADER_ACK,
  HEADER_AUTH,
  HEADER_DOWN,
  HEADER_HOLD,
  HEADER_MAX_BODY,
  HEADER_PADDING,
  HEADER_SEQ,
  HEADER_SESSION_ID,
  HEADER_VERSION,
  HEADER_LANE,
  HEADER_REWIND,
  type DownKind,
} from './headers.ts';

export interface MeekRequest {
  sessionId: string;
  /** null when the request carries no seq (plain meek, or a meek-v2 request without upload). */
  seq: number | null;
  body: Uint8Array;
  /** Sent as X-Meek-Max-Body. */
  acceptMaxBody: number;
  /** Aborted on timeout and on close(); the session does not rely on the transport honouring it. */
  signal: AbortSignal;
  /** meek v2 (§1.1); absent on v1 requests. */
  v2?: { ack: number; down: DownKind | null; holdMs: number | null; padding: string | null; lane?: number | null; rewind?: boolean };
}

export interface MeekResponse {
  status: number;
  /** The whole body; empty when `stream` carries it. */
  body: Uint8Array;
  /** The response's X-Meek-Max-Body, when it had one. */
  serverMaxBody: number | null;
  /** Any response header by lower-case name (meek v2 reads its own). */
  header?(name: string): string | null;
  /** A streaming down response's body as it arrives (the transport returns at the headers). */
  stream?: AsyncIterable<Uint8Array>;
}

/** Rejects on network errors (and on abort). */
export type MeekRoundTrip = (req: MeekRequest) => Promise<MeekResponse>;

export const RETRY_INITIAL_MS = 50;
export const RETRY_MAX_DELAY_MS = 1000;
/** Retries go on for this long after the first failure, however many it takes (a path that cuts every connection within a second still gets through). */
export const RETRY_WINDOW_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 20_000;

/** The HTTP headers of a request, the same for every transport. */
export function meekRequestHeaders(req: MeekRequest, authToken?: string): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/octet-stream',
    [HEADER_SESSION_ID]: req.sessionId,
    [HEADER_MAX_BODY]: String(req.acceptMaxBody),
  };
  if (req.seq !== null) h[HEADER_SEQ] = String(req.seq);
  if (authToken) h[HEADER_AUTH] = authToken;
  if (req.v2) {
    h[HEADER_VERSION] = '2';
    h[HEADER_ACK] = String(req.v2.ack);
    if (req.v2.down) h[HEADER_DOWN] = req.v2.down;
    if (req.v2.holdMs !== null) h[HEADER_HOLD] = String(req.v2.holdMs);
    if (req.v2.padding) h[HEADER_PADDING] = req.v2.padding;
    if (req.v2.lane !== undefined && req.v2.lane !== null) h[HEADER_LANE] = String(req.v2.lane);
    if (req.v2.rewind) h[HEADER_REWIND] = '1';
  }
  return h;
}

export interface ExchangeContext {
  roundTrip: MeekRoundTrip;
  clock: Clock;
  timeoutMs: number;
  /** Aborted when the session closes: the exchange ends at once with `closed`. */
  closed: AbortSignal;
  onRetry?(): void;
}

export type Exchanged = { kind: 'ok'; res: MeekResponse; rttMs: number } | { kind: 'failed'; error: MeekError } | { kind: 'closed' };

type Attempt = { kind: 'response'; res: MeekResponse; rttMs: number } | { kind: 'failed'; problem: string } | { kind: 'closed' };

/**
 * One request with its retries (same seq, same body). Bounded by time, not count: the window
 * counts from the first failure, so a request that timed out (20 s) still gets its retries.
 */
export async function exchange(ctx: ExchangeContext, req: Omit<MeekRequest, 'signal'>): Promise<Exchanged> {
  let delay = RETRY_INITIAL_MS;
  let retries = 0;
  let firstFailure: number | null = null;
  for (;;) {
    const a = await attempt(ctx, req);
    if (a.kind === 'closed' || ctx.closed.aborted) return { kind: 'closed' };
    let problem: string;
    if (a.kind === 'response') {
      const { res } = a;
      if (res.status === 200) return { kind: 'ok', res, rttMs: a.rttMs };
      if (res.status === 410) return { kind: 'failed', error: new MeekError('GONE', 'the edge ended the session (410)') };
      // 5xx is the CDN's or the edge's trouble (the 502/503 a first request may get among them): retry. Every other status is final.
      if (res.status < 500 || res.status > 599) return { kind: 'failed', error: new MeekError('HTTP', `the edge answered ${res.status}`) };
      problem = `the edge answered ${res.status}`;
    } else {
      problem = a.problem;
    }
    const now = ctx.clock.now();
    firstFailure ??= now;
    if (now - firstFailure + delay > RETRY_WINDOW_MS) {
      return { kind: 'failed', error: new MeekError('RETRIES', `gave up after ${retries} retries: ${problem}`) };
    }
    retries++;
    ctx.onRetry?.();
    if (!(await pause(ctx, delay))) return { kind: 'closed' };
    delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
  }
}

/** Waits `ms`; false when the session closed meanwhile. */
function pause(ctx: ExchangeContext, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (open: boolean) => {
      ctx.clock.clearTimeout(timer);
      ctx.closed.removeEventListener('abort', onClose);
      resolve(open);
    };
    const onClose = () => done(false);
    const timer = ctx.clock.setTimeout(() => done(true), ms);
    ctx.closed.addEventListener('abort', onClose);
  });
}

/**
 * One request. The timeout settles it here even if the transport ignores the abort signal, and a
 * response arriving after that is dropped: the retry carries the same bytes. A streaming
 * response settles at its headers; its body is the caller's to read (and time).
 */
function attempt(ctx: ExchangeContext, req: Omit<MeekRequest, 'signal'>): Promise<Attempt> {
  return new Promise<Attempt>((resolve) => {
    if (ctx.closed.aborted) return resolve({ kind: 'closed' });
    const abort = new AbortController();
    const started = ctx.clock.now();
    let settled = false;
    const finish = (a: Attempt) => {
      if (settled) return;
      settled = true;
      ctx.clock.clearTimeout(timer);
      ctx.closed.removeEventListener('abort', onClose);
      resolve(a);
    };
    const onClose = () => {
      abort.abort();
      finish({ kind: 'closed' });
    };
    const timer = ctx.clock.setTimeout(() => {
      abort.abort();
      finish({ kind: 'failed', problem: `request timed out after ${ctx.timeoutMs} ms` });
    }, ctx.timeoutMs);
    ctx.closed.addEventListener('abort', onClose);
    let pending: Promise<MeekResponse>;
    try {
      pending = ctx.roundTrip({ ...req, signal: abort.signal });
    } catch (e) {
      pending = Promise.reject(e);
    }
    pending.then(
      (res) => finish({ kind: 'response', res, rttMs: ctx.clock.now() - started }),
      (e: unknown) => finish({ kind: 'failed', problem: `network error: ${e instanceof Error ? e.message : String(e)}` }),
    );
  });
}
