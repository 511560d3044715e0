/**
 * The acceptor side of one tunnel session, whatever carries it (a meek session in remux mode, a
 * WebTransport session's link): a ReMux acceptor whose every stream is dialed under the policy
 * and joined to its socket. One implementation, so both transports count, limit and log alike.
 */
import type { PaddingPolicy } from '../../shared/remux/padding.ts';
import type { PassageError } from '../../shared/errors.ts';
import { Mux, type MuxSink } from '../../shared/remux/mux.ts';
import type { Dial } from './dialer.ts';
import { relayStream, type Relay, type RelayEvents } from './stream-relay.ts';

/** What the edge counts and logs about tunneled streams, whichever transport carried them. */
export type ExitEvents = Omit<RelayEvents, 'onClose'> & {
  onStreamOpen(): void;
  onStreamClose(): void;
  onProtocolError(e: PassageError): void;
};

/** One session as the process-wide memory budget sees it. */
export interface MemoryAccount {
  /** Bytes this session holds now. */
  memoryUsed(): number;
  /** Writers held by pressure may go on. */
  relieve(): void;
}

/** What a session may hold (edge/session-budget.ts) and the process-wide budget it draws on. */
export interface ExitBudget {
  send: number;
  receive: number;
  control: number;
  admitStream(): boolean;
  underPressure(): boolean;
  /** Counts a session in the process budget; the returned function stops counting it. */
  track(account: MemoryAccount): () => void;
}

export interface ExitMuxOptions {
  maxStreams: number;
  budget: ExitBudget;
  dial: Dial;
  events: ExitEvents;
  /** Where the mux's output goes; false pauses stream data until `mux.resume()`. */
  sink: MuxSink;
  /** The session ended: a protocol error (GOAWAY 0x04 already sent) or a local close. */
  onClose(error: PassageError | undefined): void;
  /** Pad the first frames of every stream (meek v2 with --padding on). */
  padding?: PaddingPolicy;
}

export interface ExitMux {
  readonly mux: Mux;
  /** Streams of this session still open. */
  readonly streamCount: number;
  /** Ends (FIN to the client) every stream at a quiet moment (socket-stream.ts). */
  closeQuiet(quietMs: number): void;
}

export function createExitMux(o: ExitMuxOptions): ExitMux {
  let streams = 0;
  const relays = new Set<Relay>();
  const mux = new Mux({
    role: 'acceptor',
    maxStreams: o.maxStreams,
    sink: o.sink,
    ...(o.padding ? { padding: o.padding } : {}),
    sendBudget: o.budget.send,
    receiveBudget: o.budget.receive,
    controlBudget: o.budget.control,
    admitStream: () => o.budget.admitStream(),
    underPressure: () => o.budget.underPressure(),
    onStream: (stream) => {
      streams++;
      o.events.onStreamOpen();
      const relay = relayStream(stream, o.dial, {
        ...o.events,
        onClose: () => {
          streams--;
          relays.delete(relay);
          o.events.onStreamClose();
        },
      });
      relays.add(relay);
    },
    onClose: (error) => {
      if (error) o.events.onProtocolError(error);
      o.onClose(error);
    },
  });
  return {
    mux,
    get streamCount() {
      return streams;
    },
    closeQuiet(quietMs) {
      const now = Date.now();
      for (const r of relays) r.closeIfQuiet(quietMs, now);
    },
  };
}
