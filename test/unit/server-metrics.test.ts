import { describe, expect, it } from 'vitest';
import { codeLabel, createEdgeMetrics } from '../../server/edge/metrics.ts';

describe('edge metrics', () => {
  it('exposes every documented metric in Prometheus text', async () => {
    const m = createEdgeMetrics();
    m.sessions.set(3);
    m.streams.inc();
    m.bytesUp.inc(10);
    m.bytesDown.inc(20);
    m.polls.inc();
    m.replays.inc();
    m.resets.inc({ code: codeLabel(2) });
    m.dialErrors.inc({ reason: 'policy' });
    m.rejected.inc({ status: '503' });
    m.sessionsRejected.inc({ reason: 'limit' });
    const text = await m.text();
    for (const line of [
      'passage_edge_sessions 3',
      'passage_edge_streams 1',
      'passage_edge_bytes_up_total 10',
      'passage_edge_bytes_down_total 20',
      'passage_edge_polls_total 1',
      'passage_edge_replays_total 1',
      'passage_edge_resets_total{code="0x02"} 1',
      'passage_edge_dial_errors_total{reason="policy"} 1',
      'passage_edge_rejected_total{status="503"} 1',
      'passage_edge_sessions_rejected_total{reason="limit"} 1',
    ]) {
      expect(text).toContain(line);
    }
    expect(m.contentType).toMatch(/^text\/plain/);
  });

  it('keeps each edge in a registry of its own', async () => {
    const a = createEdgeMetrics();
    const b = createEdgeMetrics();
    a.polls.inc(5);
    expect(await b.text()).toContain('passage_edge_polls_total 0');
    expect(codeLabel(7)).toBe('0x07');
  });
});
