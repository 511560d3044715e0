/** Starts an edge from a validated config: the one place that joins config, logger, metrics and dialer. */
import type { Logger } from 'pino';
import type { EdgeConfig } from './config.ts';
import { createDialer } from './dialer.ts';
import { startEdge, type RunningEdge } from './edge-server.ts';
import { createEdgeMetrics } from './metrics.ts';

export function runEdge(config: EdgeConfig, logger: Logger): Promise<RunningEdge> {
  return startEdge({
    ...config,
    dial: createDialer({ allowPrivate: config.allowPrivate, overrides: config.testResolve, timeoutMs: config.dialTimeoutMs }),
    metrics: createEdgeMetrics(),
    logger,
    dropEvery: config.testDropEvery,
  });
}
