/**
 * One meek-v2 request at the edge (PROTOCOL.md §1.1), after the checks every meek request gets:
 * the acknowledgement first (the edge forgets what the client holds), then the upload in seq
 * order (several may be in flight), then — on the session's down request — the downstream bytes
 * from the acknowledged offset: a poll held until bytes arrive, or a response that streams them —
 * plain, or one of several lanes that share the downstream in segments (segments.ts).
 * A newer down request ends the one before it, except that lanes run side by side.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { MeekError } from '../../shared/errors.ts';
import {
  HEADER_LANE,
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
import { LANE_END, segmentHeader } from '../../shared/meek/segments.ts';
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

/**
 * Makes `end` the session's down request in `key`'s slot ('poll', 'stream', or 'lane N'): it ends
 * the requests there before it — every one, except that a lane leaves the other lanes running.
 */
function claimDown(state: MeekV2State, key: string, end: () => void): () => void {
  const lane = key.startsWith('lane');
  for (const [k, d] of [...state.downs]) if (k === key || !lane || !k.startsWith('lane')) d.end();
  const slot = { end };
  state.downs.set(key, slot);
  return () => {
    if (state.downs.get(key) === slot) state.downs.delete(key);
  };
}

/** A down poll: bytes from the acknowledged offset, held up to `holdMs` while there are none. */
export async function serveV2Poll(o: MeekV2Options, session: EdgeSession, holdMs: number | null, limit: number, res: http.ServerResponse, window: number): Promise<void> {
  const up = session.upstream;
  const dn = up.downstream;
  let superseded = false;
  const release = claimDown(session.v2!, 'poll', () => {
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
 * then the downstream bytes as they come, for at most `streamMaxMs`. Plain, it carries them in
 * order from the acknowledged offset. As lane `lane`, it takes the next bytes no lane has been
 * given (the session's cursor, back at the acknowledged offset on `rewind`) as segments, so
 * lanes share the work as fast as each one's path takes it, and ends with the end marker.
 */
export async function serveV2Stream(o: MeekV2Options, session: EdgeSession, res: http.ServerResponse, window: number, lane: number | null = null, rewind = false): Promise<void> {
  const state = session.v2!;
  const up = session.upstream;
  const dn = up.downstream;
  let stop = false;
  const wakeAll = () => {
    stop = true;
    dn.wake();
    drained?.();
  };
  let drained: (() => void) | null = null;
  const release = claimDown(state, lane === null ? 'stream' : `lane ${lane}`, wakeAll);
  res.once('close', wakeAll);
  try {
    if (up.finished) throw new MeekError('GONE', 'session ended');
    // Where the next bytes start: this response's own place, or the cursor the lanes share.
    const track = lane === null ? { cursor: dn.start } : state;
    if (rewind) track.cursor = dn.start;
    const lead = o.padding ? PADDING_MIN + Math.floor(Math.random() * (PADDING_MAX - PADDING_MIN + 1)) : 1;
    res.writeHead(200, {
      ...v2Headers(o, session, window),
      ...(lane === null ? { [HEADER_OFFSET]: String(track.cursor) } : { [HEADER_LANE]: String(lane) }),
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
      // The client acknowledged past anything before dn.start (it got them from an older response).
      const at = (track.cursor = Math.max(track.cursor, dn.start));
      const pieces = at < dn.end ? dn.read(at, STREAM_WRITE_BYTES) : [];
      if (pieces.length === 0) {
        if (up.ended) break; // everything sent: the next request learns the end (410)
        await dn.nextPush(left);
        continue;
      }
      let n = 0;
      for (const p of pieces) n += p.length;
      track.cursor = at + n;
      let ok = lane === null || res.write(segmentHeader(at, n));
      for (const p of pieces) ok = res.write(p) && ok;
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
    if (lane !== null && !res.destroyed) res.write(LANE_END);
    res.end();
  } finally {
    res.off('close', wakeAll);
    release();
  }
}
