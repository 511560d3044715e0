/**
 * A ReMux opener carried by one meek session: the pairing every meek client of Passage uses (the
 * extension over fetch, Node tools and tests over node:http). The session polls only while some
 * stream can still receive; when the session ends, its streams are reset as PROTOCOL.md §1 says —
 * 0x03 once retries are exhausted, 0x05 for an ended session (410) or a final status.
 */
import type { MeekError } from '../errors.ts';
import { ResetCode } from '../remux/frame.ts';
import { Mux } from '../remux/mux.ts';
import { systemClock } from '../clock.ts';
import { MeekClientSession, type MeekClientOptions } from './client-session.ts';
import { REUSE_EMPTY_SESSION_MS } from './server-session.ts';

export interface MeekMuxOptions extends Omit<MeekClientOptions, 'onData' | 'onDrain' | 'onClose'> {
  maxStreams?: number;
  onClose?(error: MeekError): void;
}

export interface MeekMux {
  session: MeekClientSession;
  mux: Mux;
  /**
   * It has carried no stream for REUSE_EMPTY_SESSION_MS: the edge may end it soon (EMPTY_SESSION_MS),
   * so a new stream should go to a new session, not race the edge's reaper.
   */
  readonly stale: boolean;
}

export function createMeekMux(options: MeekMuxOptions): MeekMux {
  const { maxStreams, onClose, ...sessionOptions } = options;
  const clock = options.clock ?? systemClock;
  let emptySince: number | null = clock.now();
  let mux!: Mux;
  const session = new MeekClientSession({
    ...sessionOptions,
    onData: (bytes) => mux.receive(bytes),
    onDrain: () => mux.resume(),
    onClose: (error) => {
      mux.destroy(error, error.code === 'RETRIES' ? ResetCode.TIMEOUT : ResetCode.CANCELLED);
      onClose?.(error);
    },
  });
  mux = new Mux({
    role: 'opener',
    maxStreams: maxStreams ?? 1024,
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
