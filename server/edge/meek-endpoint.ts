/**
 * The meek endpoint as the edge runs it: the round-trip handler joined to the session registry,
 * a new session's upstream (raw: one fixed TCP upstream; remux: an exit mux) and the metrics.
 */
import type { Logger } from 'pino';
import type { Dial } from '../exit/dialer.ts';
import type { ExitEvents } from '../exit/exit-mux.ts';
import type { EdgeConfig } from './config.ts';
import { createMeekHandler } from './meek-handler.ts';
import type { EdgeMetrics } from './metrics.ts';
import type { SessionRegistry } from './session-registry.ts';
import { RawUpstream } from './upstream-raw.ts';
import { RemuxUpstream } from './upstream-remux.ts';
import type { Upstream } from './upstream.ts';

export interface MeekEndpointOptions extends Pick<EdgeConfig, 'mode' | 'upstream' | 'maxBody' | 'holdoffMs' | 'maxStreams' | 'dialTimeoutMs'> {
  registry: SessionRegistry;
  dial: Dial;
  events: ExitEvents;
  metrics: EdgeMetrics;
  logger: Logger;
}

/** What a meek session's downstream may hold for the next poll: 4 × the largest body. */
export const downstreamLimit = (maxBody: number) => 4 * maxBody;

export function createMeekEndpoint(o: MeekEndpointOptions) {
  const { metrics, logger } = o;
  const bufferLimit = downstreamLimit(o.maxBody);

  const openUpstream = async (): Promise<Upstream> => {
    if (o.mode === 'remux') return new RemuxUpstream({ bufferLimit, maxStreams: o.maxStreams, dial: o.dial, events: o.events });
    const target = o.upstream!;
    try {
      return await RawUpstream.connect(target.host, target.port, o.dialTimeoutMs, bufferLimit, o.events.onBytes);
    } catch (e) {
      metrics.dialErrors.inc({ reason: 'raw-upstream' });
      logger.warn({ err: (e as Error).message }, 'raw upstream unreachable');
      throw e;
    }
  };

  return createMeekHandler({
    maxBody: o.maxBody,
    holdoffMs: o.holdoffMs,
    registry: o.registry,
    openUpstream,
    hooks: {
      poll: () => metrics.polls.inc(),
      replay: () => metrics.replays.inc(),
      rejected: (status, reason) => {
        metrics.rejected.inc({ status: String(status) });
        // 503 and 502 come only on a session's first request: a session that was not created.
        if (status === 503) metrics.sessionsRejected.inc({ reason: 'limit' });
        if (status === 502) metrics.sessionsRejected.inc({ reason: 'upstream' });
        logger.debug({ status, reason }, 'meek request rejected');
      },
      sessionOpened: () => metrics.sessions.inc(),
    },
  });
}
