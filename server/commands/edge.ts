/**
 * `passage edge`: a validated EdgeConfig and a logger in, a listening edge out. The one place that
 * joins the meek endpoint, the WebTransport endpoint and the operator's endpoints to one session
 * limit, one token check, one dialer and one set of metrics.
 */
import type { Logger } from 'pino';
import { setTimeout as delay } from 'node:timers/promises';
import { createTokenCheck } from '../common/auth.ts';
import { createDialer } from '../exit/dialer.ts';
import { hostAddresses } from '../exit/policy.ts';
import type { EdgeConfig } from '../edge/config.ts';
import { exitEvents } from '../edge/exit-events.ts';
import { listenHttp } from '../edge/http-listener.ts';
import { createMeekEndpoint } from '../edge/meek-endpoint.ts';
import { createEdgeMetrics } from '../edge/metrics.ts';
import { createAdminRouter } from '../edge/admin.ts';
import { proxyCover, staticCover } from '../edge/cover.ts';
import { createRouter } from '../edge/routes.ts';
import { isLoopbackHost } from '../common/config-values.ts';
import { SessionRegistry } from '../edge/session-registry.ts';
import { createClientAddress, trustedProxies } from '../edge/client-address.ts';
import { MemoryBudget } from '../edge/memory-budget.ts';
import { clientMemory, sessionBudget, sessionFloor } from '../edge/session-budget.ts';
import type { ExitBudget } from '../exit/exit-mux.ts';
import { startWebTransport, type RunningWebTransport } from '../webtransport/webtransport-edge.ts';
import type { RtcEndpoint } from '../webrtc/rtc-endpoint.ts';
import { turnDiscovery } from '../webrtc/turn-credentials.ts';
import { rtcHandler } from '../webrtc/rtc-http.ts';

export interface RunningEdge {
  url: string;
  port: number;
  /** The operator's listener (/healthz, /metrics). */
  adminUrl: string;
  registry: SessionRegistry;
  /** The WebTransport endpoint, when --wt-listen asked for one. */
  webtransport: RunningWebTransport | null;
  /**
   * Graceful stop (SIGTERM): /ready answers 404 at once; after --drain-notice (when anything has
   * asked /ready: a balancer to notify) sessions are told to
   * move (GOAWAY) and new WebTransport sessions are refused; once every session has gone, or at
   * --drain-timeout, the edge closes.
   */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Draining: a stream whose last bytes went to the client and that has been quiet this long is ended. */
export const DRAIN_QUIET_MS = 200;

export async function startEdge(config: EdgeConfig, logger: Logger): Promise<RunningEdge> {
  const started = Date.now();
  const metrics = createEdgeMetrics();
  const dial = createDialer({ allowPrivate: config.allowPrivate, overrides: config.resolve, timeoutMs: config.dialTimeoutMs, own: hostAddresses() });
  const tokenCheck = createTokenCheck(config.authToken);
  let webtransportSessions = 0;
  let rtcSessions = 0;
  const memory = new MemoryBudget(config.maxMemory);
  const split = sessionBudget(config.sessionBuffer, config.maxBody);
  const floor = sessionFloor(config.sessionBuffer, config.maxBody);
  const budget: ExitBudget = { ...split, admitStream: () => memory.admitStream(), underPressure: () => memory.underPressure(), track: (a) => memory.add(a) };
  const clientOf = createClientAddress(config.trustedProxies);
  const registry = new SessionRegistry({
    maxSessions: config.maxSessions,
    maxSessionsPerClient: config.maxSessionsPerClient,
    idleTimeoutMs: config.idleTimeoutMs,
    onEnd: (session, reason) => {
      metrics.sessions.dec();
      logger.debug({ session: session.id.slice(0, 6), reason }, 'session ended');
    },
    others: () => webtransportSessions + rtcSessions,
    othersOf: (client) => rtc?.sessionsOf(client) ?? 0,
    memory,
    sessionFloor: floor,
    clientMemory: clientMemory(config.maxMemory, config.maxSessions, config.maxSessionsPerClient, config.sessionBuffer),
  });
  let webtransport: RunningWebTransport | null = null;
  // Loaded only when asked for: the WebRTC stack is a native library an edge without --turn never needs.
  const rtc: RtcEndpoint | null = config.turn
    ? (await import('../webrtc/rtc-endpoint.ts')).createRtcEndpoint({
        maxStreams: config.maxStreams,
        budget,
        downstreamLimit: split.downstream,
        dial,
        bindAddress: config.turn.address,
        events: exitEvents(metrics, logger, 'webrtc'),
        // A client's WebRTC peers and meek sessions share its --max-sessions-per-client (othersOf above).
        admit: (client) => !registry.full && !registry.clientAtShare(client) && memory.admitSession(floor) && draining === null,
        shimBytes: (direction, n) => metrics.iceShimBytes.inc({ direction }, n),
        onSessionOpen: () => rtcSessions++,
        onSessionClose: () => rtcSessions--,
      })
    : null;
  /** null: serving; 'notice': /ready says 404, sessions not yet told; 'moving': sessions told to move. */
  let draining: null | 'notice' | 'moving' = null;
  /** Whether a balancer has asked /ready: without one there is nobody to give notice to. */
  let readyAsked = false;

  const meek = createMeekEndpoint({
    ...config,
    registry,
    dial,
    downstreamLimit: split.downstream,
    downstreamLimitV2: split.downstreamV2,
    budget,
    clientOf,
    events: exitEvents(metrics, logger, 'meek'),
    metrics,
    logger,
  });
  const onError = (e: unknown) => logger.error({ err: (e as Error).message }, 'request failed');
  const router = createRouter({
    path: config.path,
    tokenCheck,
    requireHeader: config.requireHeader,
    // A token-less edge is only ever a loopback demo: it answers only loopback Host names.
    loopbackHostOnly: !tokenCheck.required && isLoopbackHost(config.host),
    meek,
    discovery: () => ({ webtransport: webtransport?.discovery() ?? null, ...(config.turn ? { turn: turnDiscovery(config.turn, Date.now()) } : {}) }),
    rtc: rtc ? rtcHandler(rtc, (req) => clientOf(req).key) : null,
    cover: config.cover ? proxyCover(config.cover) : staticCover(),
    onError,
  });
  const admin = createAdminRouter({
    tokenRequired: !isLoopbackHost(config.admin.host),
    tokenCheck,
    ready: () => {
      readyAsked = true;
      return draining === null;
    },
    health: () => ({
      status: draining === null ? 'ok' : 'draining',
      mode: config.mode,
      sessions: registry.size,
      webtransportSessions,
      webtransportFront: webtransport ? { pid: webtransport.front.pid, restarts: webtransport.front.restarts } : null,
      streams: registry.streamCount,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
    }),
    metrics: async () => {
      metrics.sessions.set(registry.size);
      metrics.memory.set(memory.used(true));
      return { contentType: metrics.contentType, text: await metrics.text() };
    },
    onError,
  });
  const listener = await listenHttp(router, {
    ...config,
    proxyProtocol: config.trustedProxies.length
      ? { isTrusted: trustedProxies(config.trustedProxies), onRefused: (why) => logger.debug({ why }, 'PROXY header refused') }
      : undefined,
  });
  let adminListener: Awaited<ReturnType<typeof listenHttp>>;
  try {
    adminListener = await listenHttp(admin, { ...config.admin, tls: null });
  } catch (e) {
    await listener.close();
    throw e;
  }

  if (config.webtransport) {
    try {
      webtransport = await startWebTransport({
        ...config.webtransport,
        path: config.path,
        tls: config.tls,
        configDir: config.configDir,
        logger,
        maxSessions: config.maxSessions,
        maxStreams: config.maxStreams,
        budget,
        downstreamLimit: split.downstream,
        dial,
        events: exitEvents(metrics, logger, 'webtransport'),
        // The same path, token and session limit as a meek session's first request.
        decide: (request) => {
          if (request.path !== config.path) return 404;
          // A wrong token is answered like a wrong path: a prober learns nothing from the difference.
          if (!tokenCheck(request.token ?? undefined)) return 404;
          if (registry.full || !memory.admitSession(floor) || draining === 'moving') return 503;
          return 200;
        },
        onSessionOpen: () => {
          webtransportSessions++;
          metrics.webtransportSessions.inc();
        },
        onSessionClose: () => {
          webtransportSessions--;
          metrics.webtransportSessions.dec();
        },
      });
    } catch (e) {
      await Promise.all([listener.close(), adminListener.close()]);
      throw e;
    }
  }
  registry.startReaper();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= Promise.all([listener.close(), adminListener.close()])
      .then(() => rtc?.close())
      .then(() => webtransport?.close())
      .then(() => registry.closeAll())
      .then(() => memory.close()));
  let drained: Promise<void> | null = null;
  const drain = () =>
    (drained ??= (async () => {
      draining = 'notice';
      logger.info({ noticeMs: config.drainNoticeMs, timeoutMs: config.drainTimeoutMs }, 'draining: /ready answers 404');
      if (readyAsked) await delay(config.drainNoticeMs);
      draining = 'moving';
      registry.drain();
      const deadline = Date.now() + config.drainTimeoutMs;
      while ((registry.size > 0 || webtransportSessions > 0 || rtcSessions > 0) && Date.now() < deadline && !closing) {
        await delay(100);
        // A browser reuses a keep-alive connection for as long as it lives: end each at a quiet moment.
        registry.closeQuiet(DRAIN_QUIET_MS);
        webtransport?.closeQuiet(DRAIN_QUIET_MS);
        rtc?.closeQuiet(DRAIN_QUIET_MS);
        registry.reap(Date.now());
      }
      logger.info({ sessions: registry.size, streams: registry.streamCount, webtransportSessions, rtcSessions }, registry.size + webtransportSessions + rtcSessions > 0 ? 'drain deadline: cutting what is left' : 'drained');
      await close();
    })());
  return { url: listener.url, port: listener.port, adminUrl: adminListener.url, registry, webtransport, drain, close };
}
