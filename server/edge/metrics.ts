/** The edge's Prometheus metrics, in a registry of its own (never the process-global one). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export function createEdgeMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'passage_edge_process_' });
  const m = {
    sessions: new Gauge({ name: 'passage_edge_sessions', help: 'open meek sessions', registers: [registry] }),
    streams: new Gauge({ name: 'passage_edge_streams', help: 'open tunneled streams', registers: [registry] }),
    bytesUp: new Counter({ name: 'passage_edge_bytes_up_total', help: 'bytes from clients toward destinations', registers: [registry] }),
    bytesDown: new Counter({ name: 'passage_edge_bytes_down_total', help: 'bytes from destinations toward clients', registers: [registry] }),
    polls: new Counter({ name: 'passage_edge_polls_total', help: 'meek requests answered 200', registers: [registry] }),
    replays: new Counter({ name: 'passage_edge_replays_total', help: 'meek responses replayed for a repeated seq', registers: [registry] }),
    resets: new Counter({ name: 'passage_edge_resets_total', help: 'streams reset, by RESET code', labelNames: ['code'], registers: [registry] }),
    dialErrors: new Counter({ name: 'passage_edge_dial_errors_total', help: 'failed dials, by reason', labelNames: ['reason'], registers: [registry] }),
    rejected: new Counter({ name: 'passage_edge_rejected_total', help: 'meek requests refused, by HTTP status', labelNames: ['status'], registers: [registry] }),
    contentType: registry.contentType,
    text: () => registry.metrics(),
  };
  return m;
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
