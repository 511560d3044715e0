/**
 * The exit path's events bound to the edge's metrics and log, once per transport: meek's remux
 * mode and WebTransport count and log their streams through the same function.
 */
import type { Logger } from 'pino';
import type { ExitEvents } from '../exit/exit-mux.ts';
import { DialError } from '../exit/dial-error.ts';
import { codeLabel, type EdgeMetrics } from './metrics.ts';

export function exitEvents(metrics: EdgeMetrics, logger: Logger, transport: 'meek' | 'webtransport' | 'webrtc'): ExitEvents {
  return {
    onBytes: (up, down) => {
      if (up) metrics.bytesUp.inc(up);
      if (down) metrics.bytesDown.inc(down);
    },
    onStreamOpen: () => {
      metrics.streams.inc();
      metrics.streamsOpened.inc({ transport });
    },
    onStreamClose: () => metrics.streams.dec(),
    onDialError: (code, err) => {
      const reason = err instanceof DialError ? err.reason : 'unreachable';
      metrics.dialErrors.inc({ reason });
      metrics.resets.inc({ code: codeLabel(code) });
      // Never the destination: an edge's logs must not become a record of where users went.
      logger.debug({ code: codeLabel(code), reason }, 'dial failed');
    },
    onReset: (code) => metrics.resets.inc({ code: codeLabel(code) }),
    onProtocolError: (e) => logger.info({ code: e.code, transport }, 'remux protocol error: GOAWAY sent'),
  };
}
