/**
 * An exit mux over a carrier of messages or bytes with a send backlog of its own — the
 * WebTransport front's link socket, a WebRTC data channel: the mux pauses stream data while the
 * backlog is at the session's downstream limit and goes on when the carrier drains, and the
 * session counts in the process's memory budget (backlog and mux) until it ends.
 */
import { ResetCode } from '../../shared/remux/frame.ts';
import { createExitMux, type ExitBudget, type ExitEvents } from './exit-mux.ts';
import type { Dial } from './dialer.ts';

export interface Carrier {
  /** False once nothing more can be sent (closed or closing). */
  readonly writable: boolean;
  send(chunk: Uint8Array): void;
  /** Bytes sent and still queued in the carrier. */
  readonly backlog: number;
  /** Ends the carrier (the mux ended: a protocol error or its close). */
  close(): void;
}

export interface CarriedSessionOptions {
  maxStreams: number;
  budget: ExitBudget;
  /** The backlog at which the mux pauses (the session's downstream share). */
  downstreamLimit: number;
  dial: Dial;
  events: ExitEvents;
}

export interface CarriedSession {
  /** Bytes from the client. */
  receive(bytes: Uint8Array): void;
  /** The carrier's backlog fell: paused stream data may go on. */
  drained(): void;
  /**
   * Draining: ends the streams that sit at a quiet moment, and the carrier once no stream is left
   * (the client then falls back and finds another edge).
   */
  closeQuiet(quietMs: number): void;
  /** The carrier is gone: streams reset, memory no longer counted. Idempotent. */
  end(): void;
}

export function carrySession(carrier: Carrier, o: CarriedSessionOptions): CarriedSession {
  let blocked = false;
  const exit = createExitMux({
    maxStreams: o.maxStreams,
    budget: o.budget,
    dial: o.dial,
    events: o.events,
    sink: {
      write(chunks) {
        if (!carrier.writable) return true;
        for (const c of chunks) carrier.send(c);
        if (carrier.backlog >= o.downstreamLimit) blocked = true;
        return !blocked;
      },
      room: () => Math.max(0, o.downstreamLimit - carrier.backlog),
    },
    onClose: () => carrier.close(),
  });
  const unaccount = o.budget.track({ memoryUsed: () => carrier.backlog + exit.mux.memoryUsed, relieve: () => exit.mux.relieve() });
  let ended = false;
  return {
    receive: (bytes) => exit.mux.receive(bytes),
    drained() {
      if (!blocked) return;
      blocked = false;
      exit.mux.resume();
    },
    closeQuiet(quietMs) {
      exit.closeQuiet(quietMs);
      if (exit.streamCount === 0) carrier.close();
    },
    end() {
      if (ended) return;
      ended = true;
      unaccount();
      exit.mux.destroy(undefined, ResetCode.CANCELLED);
    },
  };
}
