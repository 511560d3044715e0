/**
 * The meek-v1 endpoint (PROTOCOL.md §1): one POST is one round trip of a session's byte stream.
 * Only admitted requests get here (the router answers the rest with the cover). Checks run in
 * the documented order — headers 400, body size 413 (before any session exists or anything is dialed), then seq 409/410 — and every 200
 * carries the server's max body.
 */
import type http from 'node:http';
import { MeekError } from '../../shared/errors.ts';
import {
  HEADER_MAX_BODY,
  HEADER_PADDING,
  SMALL_UPLOAD_BYTES,
  parseMeekRequestHeaders,
} from '../../shared/meek/headers.ts';
import { checkNewSession, negotiateResponseLimit } from '../../shared/meek/server-session.ts';
import { readBody, send } from '../common/http-util.ts';
import { acceptV2Upload, serveV2Poll, serveV2Stream, v2Headers, type MeekV2Options } from './meek-v2.ts';
import type { EdgeSession, SessionRegistry } from './session-registry.ts';
import type { Upstream } from './upstream.ts';
import type { ClientAddress } from './client-address.ts';

export interface MeekHandlerOptions {
  maxBody: number;
  holdoffMs: number;
  streamMaxMs: number;
  padding: boolean;
  registry: SessionRegistry;
  /** A new session's upstream (v2: it retains what it sent); rejects when the raw upstream can't be dialed (→ 502). */
  openUpstream(client: ClientAddress, v2: boolean): Promise<Upstream>;
  /** The client a request comes from: its share of the session table, and whom a raw upstream is told of. */
  clientOf(req: http.IncomingMessage): ClientAddress;
  hooks: {
    poll(): void;
    replay(): void;
    rejected(status: number, reason: string): void;
    sessionOpened(): void;
    /** Padding bytes in a request (up) or an answer (down). */
    padding(direction: 'up' | 'down', bytes: number): void;
  };
}

/** How long a gap in arriving downstream bytes ends a held poll's gathering. */
const TURNAROUND_MS = 2;

const STATUS_FOR: Partial<Record<MeekError['code'], number>> = {
  HEADER: 400,
  SEQ: 409,
  GONE: 410,
  WAIT: 503,
};

export function createMeekHandler(o: MeekHandlerOptions) {
  const reject = (res: http.ServerResponse, status: number, reason: string) => {
    o.hooks.rejected(status, reason);
    send(res, status, reason + '\n');
  };

  /** The part of a round trip that a replay must not repeat: upload, hold-off, take the reply. */
  const process = async (session: EdgeSession, body: Uint8Array, limit: number): Promise<Uint8Array> => {
    const up = session.upstream;
    if (up.finished) throw new MeekError('GONE', 'session ended');
    await up.write(body);
    // Psiphon's rule: hold a small poll briefly for downstream bytes; answer a big upload at once.
    if (body.length < SMALL_UPLOAD_BYTES && up.downstream.size === 0 && !up.finished) await up.downstream.hold(o.holdoffMs, limit, TURNAROUND_MS);
    return up.downstream.take(limit);
  };

  const v2Options: MeekV2Options = {
    maxBody: o.maxBody,
    holdoffMs: o.holdoffMs,
    streamMaxMs: o.streamMaxMs,
    padding: o.padding,
    turnaroundMs: TURNAROUND_MS,
    onPadding: (bytes) => o.hooks.padding('down', bytes),
  };

  /** A MeekError as its status (410 also ends the session); anything else is the caller's. */
  const refuse = (res: http.ServerResponse, session: EdgeSession, e: unknown): void => {
    if (e instanceof MeekError && STATUS_FOR[e.code]) {
      if (e.code === 'GONE') o.registry.end(session, 'finished');
      return reject(res, STATUS_FOR[e.code]!, e.message);
    }
    throw e;
  };

  const handleV2 = async (
    padded: number,
    res: http.ServerResponse,
    session: EdgeSession,
    seq: number | null,
    v2: NonNullable<ReturnType<typeof parseMeekRequestHeaders>['v2']>,
    body: Uint8Array,
    limit: number,
  ): Promise<void> => {
    const window = session.v2!.uploads.window;
    if (padded) o.hooks.padding('up', padded);
    try {
      const { replayed } = await acceptV2Upload(session, seq, v2, body);
      o.hooks.poll();
      if (replayed) o.hooks.replay();
      if (v2.down === 'poll') await serveV2Poll(v2Options, session, v2.holdMs, limit, res, window);
      else if (v2.down === 'stream') await serveV2Stream(v2Options, session, res, window, v2.lane, v2.rewind);
      else send(res, 200, new Uint8Array(0), v2Headers(v2Options, session, window));
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      refuse(res, session, e);
    } finally {
      session.lastActive = Date.now();
    }
  };

  return async function handleMeek(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let headers: ReturnType<typeof parseMeekRequestHeaders>;
    try {
      headers = parseMeekRequestHeaders((name) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(',') : v;
      });
    } catch (e) {
      if (e instanceof MeekError) return reject(res, 400, e.message);
      throw e;
    }
    const body = await readBody(req, o.maxBody);
    if (body === null) return reject(res, 413, `request body over ${o.maxBody} bytes`);

    let session = o.registry.get(headers.sessionId);
    if (!session) {
      try {
        checkNewSession(headers.seq);
        // A v2 session's first request is seq 1 or an empty one at offset 0; anything later belongs to one that ended.
        if (headers.v2 && headers.v2.ack > 0) throw new Error('unknown session');
      } catch {
        return reject(res, 410, 'unknown session');
      }
      const from = o.clientOf(req);
      const client = from.key;
      const refused = o.registry.refusal(client);
      if (refused) return reject(res, 503, refused);
      let upstream: Upstream;
      try {
        upstream = await o.openUpstream(from, headers.v2 !== null);
      } catch {
        return reject(res, 502, 'upstream unreachable');
      }
      // Another first request for the same id may have won while this one dialed.
      session = o.registry.get(headers.sessionId);
      if (session) upstream.close();
      else {
        const refusedNow = o.registry.refusal(client);
        if (refusedNow) {
          upstream.close();
          return reject(res, 503, refusedNow);
        }
        session = o.registry.add(headers.sessionId, upstream, client, headers.v2 !== null);
        o.hooks.sessionOpened();
      }
    }

    const limit = negotiateResponseLimit(o.maxBody, headers.clientMaxBody);
    const current = session;
    if ((current.v2 !== null) !== (headers.v2 !== null)) return reject(res, 400, 'X-Meek-Version differs from the session\'s first request');
    current.lastActive = Date.now();
    if (headers.v2) return handleV2(String(req.headers[HEADER_PADDING] ?? '').length, res, current, headers.seq, headers.v2, body, limit);
    let result: { replayed: boolean; response: Uint8Array };
    try {
      result = await current.meek.handle(headers.seq, () => process(current, body, limit));
    } catch (e) {
      return refuse(res, current, e);
    } finally {
      current.lastActive = Date.now();
    }
    o.hooks.poll();
    if (result.replayed) o.hooks.replay();
    send(res, 200, result.response, {
      'content-type': 'application/octet-stream',
      'cache-control': 'no-store',
      [HEADER_MAX_BODY]: String(o.maxBody),
    });
  };
}
