/**
 * The meek endpoint as the edge runs it: the round-trip handler joined to the session registry,
 * a new session's upstream (raw: one fixed TCP upstream; remux: an exit mux) and the metrics.
 */
import { defaultPadding } from '../../shared/remux/padding.ts';
import type { Logger } from 'pino';
import { INITIAL_WINDOW, MAX_PAYLOAD } from '../../shared/remux/frame.ts';
import type { Dial } from '../exit/dialer.ts';
import type { ExitBudget, ExitEvents } from '../exit/exit-mux.ts';
import type { EdgeConfig } from './config.ts';
import { createMeekHandler } from './meek-handler.ts';
import type { EdgeMetrics } from './metrics.ts';
import type { SessionRegistry } from './session-registry.ts';
import { RawUpstream } from './upstream-raw.ts';
import { RemuxUpstream } from './upstream-remux.ts';
import type { Upstream } from './upstream.ts';
import type { ClientAddress } from './client-address.ts';
import { encodeProxyV2 } from '../../shared/proxy-protocol.ts';

export interface MeekEndpointOptions extends Pick<EdgeConfig, 'mode' | 'upstream' | 'upstreamProxyProtocol' | 'maxBody' | 'holdoffMs' | 'streamMaxMs' | 'padding' | 'maxStreams' | 'dialTimeoutMs'> {
  registry: SessionRegistry;
  /** The downstream limit and the exit mux's share of `--session-buffer`. */
  downstreamLimit: number;
  /** A meek-v2 session's downstream limit (it retains what it sent until acknowledged). */
  downstreamLimitV2: number;
  budget: ExitBudget;
  /** The client a request comes from (its address, or what a trusted proxy says). */
  clientOf(req: import('node:http').IncomingMessage): ClientAddress;
  dial: Dial;
  events: ExitEvents;
  metrics: EdgeMetrics;
  logger: Logger;
}

export function createMeekEndpoint(o: MeekEndpointOptions) {
  const { metrics, logger } = o;
  const openUpstream = async (from: ClientAddress, v2: boolean): Promise<Upstream> => {
    const client = from.key;
    const bufferLimit = v2 ? o.downstreamLimitV2 : o.downstreamLimit;
    if (o.mode === 'remux') {
      // A stream also needs room in its client's share of the memory budget.
      const budget: ExitBudget = { ...o.budget, admitStream: () => o.budget.admitStream() && o.registry.clientHasRoom(client, INITIAL_WINDOW + MAX_PAYLOAD) };
      const padding = v2 && o.padding ? defaultPadding(Math.random) : undefined;
      return new RemuxUpstream({
        bufferLimit,
        maxStreams: o.maxStreams,
        budget,
        dial: o.dial,
        events: o.events,
        ...(padding ? { padding } : {}),
        onPadding: (up, down) => {
          if (up) metrics.padding.inc({ direction: 'up' }, up);
          if (down) metrics.padding.inc({ direction: 'down' }, down);
        },
      });
    }
    const target = o.upstream!;
    try {
      // As Tor's meek-server tells its relay the client through the extended ORPort.
      const preamble = o.upstreamProxyProtocol ? encodeProxyV2(from.source, from.destination) : null;
      return await RawUpstream.connect(target.host, target.port, o.dialTimeoutMs, bufferLimit, o.events.onBytes, preamble);
    } catch (e) {
      metrics.dialErrors.inc({ reason: 'raw-upstream' });
      logger.warn({ err: (e as Error).message }, 'raw upstream unreachable');
      throw e;
    }
  };

  return createMeekHandler({
    maxBody: o.maxBody,
    holdoffMs: o.holdoffMs,
    streamMaxMs: o.streamMaxMs,
    padding: o.padding,
    registry: o.registry,
    openUpstream,
    clientOf: o.clientOf,
    hooks: {
      poll: () => metrics.polls.inc(),
      replay: () => metrics.replays.inc(),
      rejected: (status, reason) => {
        metrics.rejected.inc({ status: String(status) });
        // 503 and 502 come only on a session's first request: a session that was not created.
        if (status === 503) metrics.sessionsRejected.inc({ reason });
        if (status === 502) metrics.sessionsRejected.inc({ reason: 'upstream' });
        logger.debug({ status, reason }, 'meek request rejected');
      },
      sessionOpened: () => metrics.sessions.inc(),
      padding: (direction, bytes) => metrics.padding.inc({ direction }, bytes),
    },
  });
}
