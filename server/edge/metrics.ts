/**
 * The edge's Prometheus metrics, in a registry of its own: never prom-client's global one, so two
 * edges in one process (tests) do not share or clash over counters.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface EdgeMetrics {
  /** Open meek sessions. */
  sessions: Gauge;
  /** Bytes every session holds by the memory budget's count (what --max-memory bounds). */
  memory: Gauge;
  /** Open tunneled streams (remux mode). */
  streams: Gauge;
  /** Tunneled streams opened, label `transport` (meek, webtransport). */
  streamsOpened: Counter<'transport'>;
  /** Open WebTransport sessions. */
  webtransportSessions: Gauge;
  /** Payload bytes from clients toward destinations. */
  bytesUp: Counter;
  /** Payload bytes from destinations toward clients. */
  bytesDown: Counter;
  /** meek requests answered 200 (replays included). */
  polls: Counter;
  /** meek responses replayed for a repeated seq. */
  replays: Counter;
  /** Streams reset, label `code` ("0x01" … "0x07"). */
  resets: Counter<'code'>;
  /** Failed dials, label `reason` (resolve, policy, unreachable, timeout, raw-upstream). */
  dialErrors: Counter<'reason'>;
  /** meek requests refused, label `status` (HTTP status). */
  rejected: Counter<'status'>;
  /** First requests that did not become a session, label `reason` (limit, upstream). */
  sessionsRejected: Counter<'reason'>;
  /** meek v2 padding: header values, stream leads and ReMux PADDING frames, by direction. */
  padding: Counter<'direction'>;
  /** Bytes the ICE shims forwarded (webrtc/ice-shim.ts), `in` from browsers to the edge's peer and `out` back. */
  iceShimBytes: Counter<'direction'>;
  /** The Content-Type of `text()`. */
  contentType: string;
  /** Everything in Prometheus text format. */
  text(): Promise<string>;
}

/** A RESET code as a label: 0x02 → "0x02". */
export const codeLabel = (code: number): string => `0x${code.toString(16).padStart(2, '0')}`;

export function createEdgeMetrics(): EdgeMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: 'passage_edge_process_' });
  return {
    sessions: new Gauge({ name: 'passage_edge_sessions', help: 'open meek sessions', registers }),
    memory: new Gauge({ name: 'passage_edge_memory_bytes', help: 'bytes all sessions hold, as --max-memory counts them', registers }),
    streams: new Gauge({ name: 'passage_edge_streams', help: 'open tunneled streams', registers }),
    streamsOpened: new Counter({ name: 'passage_edge_streams_opened_total', help: 'tunneled streams opened, by transport', labelNames: ['transport'], registers }),
    webtransportSessions: new Gauge({ name: 'passage_edge_webtransport_sessions', help: 'open WebTransport sessions', registers }),
    bytesUp: new Counter({ name: 'passage_edge_bytes_up_total', help: 'bytes from clients toward destinations', registers }),
    bytesDown: new Counter({ name: 'passage_edge_bytes_down_total', help: 'bytes from destinations toward clients', registers }),
    polls: new Counter({ name: 'passage_edge_polls_total', help: 'meek requests answered 200', registers }),
    replays: new Counter({ name: 'passage_edge_replays_total', help: 'meek responses replayed for a repeated seq', registers }),
    resets: new Counter({ name: 'passage_edge_resets_total', help: 'streams reset, by RESET code', labelNames: ['code'], registers }),
    dialErrors: new Counter({ name: 'passage_edge_dial_errors_total', help: 'failed dials, by reason', labelNames: ['reason'], registers }),
    rejected: new Counter({ name: 'passage_edge_rejected_total', help: 'meek requests refused, by HTTP status', labelNames: ['status'], registers }),
    padding: new Counter({ name: 'passage_edge_padding_bytes_total', help: 'meek v2 padding bytes (headers, leads, PADDING frames), up from clients and down to them', labelNames: ['direction'], registers }),
    iceShimBytes: new Counter({ name: 'passage_edge_ice_shim_bytes_total', help: 'bytes the ICE shims carried (TURN over TCP/TLS), in toward the edge\'s WebRTC peer and out from it', labelNames: ['direction'], registers }),
    sessionsRejected: new Counter({ name: 'passage_edge_sessions_rejected_total', help: 'new sessions refused, by reason', labelNames: ['reason'], registers }),
    contentType: registry.contentType,
    text: () => registry.metrics(),
  };
}
