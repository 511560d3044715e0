/**
 * A ReMux opener carried by one meek session: the pairing every meek client of Passage uses (the
 * extension over fetch, Node tools and tests over node:http). The session polls only while some
 * stream can still receive; when the session ends, its streams are reset as PROTOCOL.md §1 says —
 * 0x03 once retries are exhausted, 0x05 for an ended session (410) or a final status.
 */
import type { MeekError } from '../errors.ts';
import { ResetCode } from '../remux/frame.ts';
import { Mux, type AutotunePolicy } from '../remux/mux.ts';
import { defaultPadding } from '../remux/padding.ts';
import { systemClock } from '../clock.ts';
import { MeekClientSession, type MeekClientOptions } from './client-session.ts';
import { PipelinedMeekSession, type MeekMode } from './pipelined-session.ts';
import { REUSE_EMPTY_SESSION_MS } from './server-session.ts';

export interface MeekMuxOptions extends Omit<MeekClientOptions, 'onData' | 'onDrain' | 'onClose'> {
  maxStreams?: number;
  onClose?(error: MeekError): void;
  /** meek v2 (§1.1): pipelined uploads and a streaming or held download. Default 1. */
  version?: 1 | 2;
  /** v2: try a streaming download first. */
  streaming?: boolean;
  /** v2 streaming: streams that may carry the downstream at once (PipelinedOptions.lanes); MEEK_LANES unless given. */
  lanes?: number;
  /** v2: random padding on requests and on the first frames of each stream. */
  padding?: boolean;
  /** v2 with padding: the cover round trip for streams whose first bytes are not TLS (padding.ts); on unless false. */
  cover?: boolean;
  onMode?(mode: MeekMode): void;
}

/** What the mux needs of a meek session, v1 or v2. */
export type MeekSession = Pick<MeekClientSession, 'id' | 'isClosed' | 'write' | 'setActive' | 'close' | 'uploadLimit'> & {
  readonly stats: { polls: number; retries: number; bytesUp: number; bytesDown: number; lastRttMs: number | null };
  /** v2: how downstream bytes come; v1 sessions poll. */
  readonly mode?: MeekMode;
};

/** How far a stream's receive window may grow on a meek session (per stream the extension may hold this much for a stalled reader). */
export const AUTOTUNE_MAX_WINDOW = 16 * 1024 * 1024;
/** What all of a connection's streams may hold past INITIAL_WINDOW each, together: four streams grown to the maximum. */
export const AUTOTUNE_CONNECTION_EXTRA = 64 * 1024 * 1024;
/** Lanes a streaming v2 session asks for: each HTTP/2 stream carries one receive window per round trip (PLATFORM.md); four carry what one HTTP/2 connection does. */
export const MEEK_LANES = 4;

/** The extension's receive windows on a tunnel of its ReMux: grown for fast readers up to AUTOTUNE_MAX_WINDOW, within AUTOTUNE_CONNECTION_EXTRA for the connection. */
export function extensionAutotune(rttMs: () => number | null): AutotunePolicy {
  return { maxWindow: AUTOTUNE_MAX_WINDOW, connectionExtra: AUTOTUNE_CONNECTION_EXTRA, rttMs };
}

export interface MeekMux {
  session: MeekSession;
  mux: Mux;
  /**
   * It has carried no stream for REUSE_EMPTY_SESSION_MS: the edge may end it soon (EMPTY_SESSION_MS),
   * so a new stream should go to a new session, not race the edge's reaper.
   */
  readonly stale: boolean;
}

export function createMeekMux(options: MeekMuxOptions): MeekMux {
  const { maxStreams, onClose, version, streaming, lanes, padding, cover, onMode, ...sessionOptions } = options;
  const clock = options.clock ?? systemClock;
  let emptySince: number | null = clock.now();
  let mux!: Mux;
  const callbacks = {
    onData: (bytes: Uint8Array) => mux.receive(bytes),
    onDrain: () => mux.resume(),
    onClose: (error: MeekError) => {
      mux.destroy(error, error.code === 'RETRIES' ? ResetCode.TIMEOUT : ResetCode.CANCELLED);
      onClose?.(error);
    },
  };
  const session: MeekSession =
    version === 2
      ? new PipelinedMeekSession({ ...sessionOptions, ...callbacks, streaming, lanes: lanes ?? MEEK_LANES, padding, onMode })
      : new MeekClientSession({ ...sessionOptions, ...callbacks });
  mux = new Mux({
    role: 'opener',
    maxStreams: maxStreams ?? 1024,
    ...(version === 2 && padding !== false ? { padding: { ...defaultPadding(() => clock.random()), ...(cover === false ? { coverHoldMs: 0 } : {}) } } : {}),
    // Downloads over a long path need more than 256 KiB in flight per stream.
    autotune: extensionAutotune(() => session.stats.lastRttMs),
    sink: {
      write(chunks) {
        let ok = true;
        for (const c of chunks) ok = session.write(c) && ok;
        return ok;
      },
    },
    onReceivingCount: (n) => session.setActive(n > 0),
    onStreamCount: (n) => (emptySince = n > 0 ? null : clock.now()),
  });
  return {
    session,
    mux,
    get stale() {
      return emptySince !== null && clock.now() - emptySince >= REUSE_EMPTY_SESSION_MS;
    },
  };
}
