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
  /** The mux's next bytes, in order: one flush's frames (headers and payloads), for the carrier to pack as it sends best. */
  send(chunks: Uint8Array[]): void;
  /** Bytes sent and still queued in the carrier. */
  readonly backlog: number;
  /** Ends the carrier (the mux ended: a protocol error or its close). */
  close(): void;
  /**
   * For a carrier whose backlog falls without telling (a WebRTC data channel: its low-water event
   * can pass unseen when the buffered amount is updated off the event loop), the backlog is looked
   * at this often while the mux is paused. Absent: `drained()` alone resumes it.
   */
  readonly drainCheckMs?: number;
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
  let ended = false;
  let checkTimer: ReturnType<typeof setTimeout> | null = null;
  const block = () => {
    blocked = true;
    if (carrier.drainCheckMs === undefined || checkTimer) return;
    const check = () => {
      checkTimer = null;
      if (!blocked || ended) return;
      if (carrier.backlog < o.downstreamLimit / 2) return drained();
      checkTimer = setTimeout(check, carrier.drainCheckMs);
    };
    checkTimer = setTimeout(check, carrier.drainCheckMs);
  };
  const drained = () => {
    if (!blocked) return;
    blocked = false;
    exit.mux.resume();
  };
  const exit = createExitMux({
    maxStreams: o.maxStreams,
    budget: o.budget,
    dial: o.dial,
    events: o.events,
    sink: {
      write(chunks) {
        if (!carrier.writable) return true;
        carrier.send(chunks);
        if (carrier.backlog >= o.downstreamLimit) block();
        return !blocked;
      },
      room: () => {
        const room = Math.max(0, o.downstreamLimit - carrier.backlog);
        // The mux waits for resume() when there is no room: the backlog can have grown since the last write said yes.
        if (room === 0) block();
        return room;
      },
    },
    onClose: () => carrier.close(),
  });
  const unaccount = o.budget.track({ memoryUsed: () => carrier.backlog + exit.mux.memoryUsed, relieve: () => exit.mux.relieve() });
  return {
    receive: (bytes) => exit.mux.receive(bytes),
    drained,
    closeQuiet(quietMs) {
      exit.closeQuiet(quietMs);
      if (exit.streamCount === 0) carrier.close();
    },
    end() {
      if (ended) return;
      ended = true;
      if (checkTimer) clearTimeout(checkTimer);
      unaccount();
      exit.mux.destroy(undefined, ResetCode.CANCELLED);
    },
  };
}
