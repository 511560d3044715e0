/**
 * The edge's entry point: a validated EdgeConfig and a logger in, a listening edge out. The one
 * place that joins config, metrics and dialer to the HTTP server (edge-server.ts).
 */
import type { Logger } from 'pino';
import type { EdgeConfig } from './config.ts';
import { createDialer } from './dialer.ts';
import { startEdgeServer, type RunningEdge } from './edge-server.ts';
import { createEdgeMetrics } from './metrics.ts';

export type { RunningEdge };

export function startEdge(config: EdgeConfig, logger: Logger): Promise<RunningEdge> {
  return startEdgeServer({
    ...config,
    dial: createDialer({ allowPrivate: config.allowPrivate, overrides: config.testResolve, timeoutMs: config.dialTimeoutMs }),
    metrics: createEdgeMetrics(),
    logger,
    dropEvery: config.testDropEvery,
  });
}
