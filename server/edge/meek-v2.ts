/**
 * One meek-v2 request at the edge (PROTOCOL.md §1.1), after the checks every meek request gets:
 * the acknowledgement first (the edge forgets what the client holds), then the upload in seq
 * order (several may be in flight), then — on the session's down request — the downstream bytes
 * from the acknowledged offset: a poll held until bytes arrive, or a response that streams them.
 * A newer down request ends the one before it, so a session has at most one.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { MeekError } from '../../shared/errors.ts';
import {
  HEADER_LEAD,
  HEADER_MAX_BODY,
  HEADER_OFFSET,
  HEADER_PADDING,
  HEADER_RETAIN,
  HEADER_STREAM_MAX,
  HEADER_VERSION,
  HEADER_WINDOW,
  PADDING_MAX,
  PADDING_MIN,
  paddingValue,
  type MeekV2RequestHeaders,
} from '../../shared/meek/headers.ts';
import type { EdgeSession, MeekV2State } from './session-registry.ts';

export interface MeekV2Options {
  maxBody: number;
  holdoffMs: number;
  streamMaxMs: number;
  padding: boolean;
  /** How long a gap in arriving bytes ends a held poll's gathering. */
  turnaroundMs: number;
  /** Padding the edge put in an answer (header value, stream lead). */
  onPadding(bytes: number): void;
}

export interface V2Outcome {
  replayed: boolean;
}

/** Bytes a stream writes per response write: big enough to keep a fast path busy, small enough to interleave sessions. */
const STREAM_WRITE_BYTES = 256 * 1024;

export function v2Headers(o: MeekV2Options, session: EdgeSession, window: number): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'cache-control': 'no-store',
    [HEADER_MAX_BODY]: String(o.maxBody),
    [HEADER_VERSION]: '2',
    [HEADER_WINDOW]: String(window),
    [HEADER_RETAIN]: String(session.upstream.downstream.limit),
    // nginx buffers proxied responses (to disk past a few KiB) unless told otherwise; no meek answer gains from that.
    'x-accel-buffering': 'no',
  };
  if (o.padding) {
    h[HEADER_PADDING] = paddingValue();
    o.onPadding(h[HEADER_PADDING].length);
  }
  return h;
}

/**
 * Acknowledgement and upload. Throws MeekError HEADER (400), SEQ (409), GONE (410) or WAIT (503);
 * resolves with whether the upload was a replay.
 */
export async function acceptV2Upload(session: EdgeSession, seq: number | null, v2: MeekV2RequestHeaders, body: Uint8Array): Promise<V2Outcome> {
  const state = session.v2!;
  const up = session.upstream;
  if (v2.ack > up.downstream.end) throw new MeekError('HEADER', `X-Meek-Ack ${v2.ack} is past the ${up.downstream.end} bytes sent`);
  up.downstream.ack(v2.ack);
  if (seq === null) {
    if (body.length > 0) throw new MeekError('HEADER', 'a meek-v2 upload needs X-Meek-Seq');
    if (up.finished) throw new MeekError('GONE', 'session ended');
    return { replayed: false };
  }
  const outcome = await state.uploads.upload(seq, body.length, async () => {
    if (up.finished) throw new MeekError('GONE', 'session ended');
    if (body.length > 0) await up.write(body);
  });
  return outcome;
}

/** Ends the session's current down request and makes `end` the new one's. */
function claimDown(state: MeekV2State, end: () => void): () => void {
  state.down?.end();
  const slot = { end };
  state.down = slot;
  return () => {
    if (state.down === slot) state.down = null;
  };
}

/** A down poll: bytes from the acknowledged offset, held up to `holdMs` while there are none. */
export async function serveV2Poll(o: MeekV2Options, session: EdgeSession, holdMs: number | null, limit: number, res: http.ServerResponse, window: number): Promise<void> {
  const up = session.upstream;
  const dn = up.downstream;
  let superseded = false;
  const release = claimDown(session.v2!, () => {
    superseded = true;
    dn.wake();
  });
  try {
    const from = dn.start;
    const hold = holdMs ?? o.holdoffMs;
    if (dn.end === from && hold > 0 && !up.ended) await dn.hold(hold, limit, o.turnaroundMs, from, () => superseded);
    if (up.finished) throw new MeekError('GONE', 'session ended');
    const start = dn.start; // an upload's ack may have moved it meanwhile
    const pieces = dn.read(start, limit);
    let n = 0;
    for (const p of pieces) n += p.length;
    if (res.destroyed) return;
    res.writeHead(200, { ...v2Headers(o, session, window), [HEADER_OFFSET]: String(start), 'content-length': String(n) });
    for (const p of pieces) res.write(p);
    res.end();
  } finally {
    release();
  }
}

/**
 * A streaming down response: headers at once (MV3 ends a fetch whose response has not started
 * within 30 s), a random lead of padding — whose arrival tells the client that the path streams —
 * then the downstream bytes as they come, for at most `streamMaxMs`.
 */
export async function serveV2Stream(o: MeekV2Options, session: EdgeSession, res: http.ServerResponse, window: number): Promise<void> {
  const up = session.upstream;
  const dn = up.downstream;
  let stop = false;
  const wakeAll = () => {
    stop = true;
    dn.wake();
    drained?.();
  };
  let drained: (() => void) | null = null;
  const release = claimDown(session.v2!, wakeAll);
  res.once('close', wakeAll);
  try {
    if (up.finished) throw new MeekError('GONE', 'session ended');
    let cursor = dn.start;
    const lead = o.padding ? PADDING_MIN + Math.floor(Math.random() * (PADDING_MAX - PADDING_MIN + 1)) : 1;
    res.writeHead(200, {
      ...v2Headers(o, session, window),
      [HEADER_OFFSET]: String(cursor),
      [HEADER_LEAD]: String(lead),
      [HEADER_STREAM_MAX]: String(o.streamMaxMs),
    });
    res.flushHeaders();
    res.write(randomBytes(lead));
    o.onPadding(lead);
    const deadline = Date.now() + o.streamMaxMs;
    while (!stop && !res.destroyed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      // The client acknowledged past what this stream wrote (it got them from an older stream).
      if (cursor < dn.start) cursor = dn.start;
      const pieces = dn.read(cursor, STREAM_WRITE_BYTES);
      if (pieces.length === 0) {
        if (up.ended) break; // everything sent: the next request learns the end (410)
        await dn.nextPush(left);
        continue;
      }
      let ok = true;
      for (const p of pieces) {
        ok = res.write(p) && ok;
        cursor += p.length;
      }
      session.lastActive = Date.now();
      if (!ok && !stop) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            drained = null;
            resolve();
          };
          drained = done;
          res.once('drain', done);
        });
      }
    }
    res.end();
  } finally {
    res.off('close', wakeAll);
    release();
  }
}
