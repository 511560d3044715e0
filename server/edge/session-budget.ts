/**
 * How `--session-buffer` S is split inside one session, and the bound that follows (DEPLOY.md
 * states it; test/integration/edge-memory.test.ts holds the real process to it):
 *
 *   downstream (frames waiting for a poll)   min(4 × max body, S/8); meek v2, which keeps what it
 *     sent until the client acknowledges it (a bandwidth × round trip: its streaming lanes are
 *     bound by it), S/4; plus one frame past it
 *   meek v2 uploads waiting for an earlier seq   (PIPELINE_WINDOW − 1) × max body
 *   send queues (destination bytes not yet framed)   S/8, plus one socket read (64 KiB) per stream
 *   receive windows (client bytes the edge may have to hold)   256 KiB per stream, streams ≤ S/2 ÷ 256 KiB
 *   control frames waiting while the client does not poll   16 KiB, past it GOAWAY 0x06
 *
 * Summed: at most S + 7 × max body + 2 × 64 KiB + 16 KiB (+ 7-byte frame headers).
 */
import { HEADER_LENGTH, INITIAL_WINDOW, MAX_PAYLOAD } from '../../shared/remux/frame.ts';
import { DEFAULT_CONTROL_BUDGET } from '../../shared/remux/mux.ts';
import { PIPELINE_WINDOW } from '../../shared/meek/headers.ts';

/** What one read from a destination socket can add past a spent send budget. */
export const SOCKET_READ_BYTES = 64 * 1024;

export interface SessionBudget {
  downstream: number;
  /** A meek-v2 session's downstream: it retains what it sent until acknowledged, so it needs a bandwidth × RTT. */
  downstreamV2: number;
  send: number;
  receive: number;
  control: number;
  /** Streams the receive budget allows. */
  streams: number;
}

export function sessionBudget(sessionBuffer: number, maxBody: number): SessionBudget {
  const receive = Math.floor(sessionBuffer / 2);
  return {
    downstream: Math.min(4 * maxBody, Math.floor(sessionBuffer / 8)),
    downstreamV2: Math.floor(sessionBuffer / 4),
    send: Math.floor(sessionBuffer / 8),
    receive,
    control: DEFAULT_CONTROL_BUDGET,
    streams: Math.floor(receive / INITIAL_WINDOW),
  };
}

/** The most bytes one session can hold, as a formula of the options (the number DEPLOY.md gives). */
export function sessionBound(sessionBuffer: number, maxBody: number): number {
  const b = sessionBudget(sessionBuffer, maxBody);
  const frame = MAX_PAYLOAD + HEADER_LENGTH;
  const pipelined = (PIPELINE_WINDOW - 1) * maxBody;
  return Math.max(b.downstream, b.downstreamV2) + frame + pipelined + b.send + b.streams * SOCKET_READ_BYTES + b.streams * INITIAL_WINDOW + b.control + frame;
}

/**
 * One client's share of `--max-memory` M: as large a part of M as its part of the session table
 * (`--max-sessions-per-client` ÷ `--max-sessions`), and never less than one session's S.
 */
export function clientMemory(maxMemory: number, maxSessions: number, perClient: number, sessionBuffer: number): number {
  return Math.max(sessionBuffer, Math.floor((maxMemory * Math.min(perClient, maxSessions)) / maxSessions));
}

/** What a new session holds at least once it carries anything: the floor a new session must fit. */
export function sessionFloor(sessionBuffer: number, maxBody: number): number {
  return sessionBudget(sessionBuffer, maxBody).downstream + INITIAL_WINDOW;
}
