/**
 * The edge: an HTTP(S) server that terminates meek, routes as PROTOCOL.md §1 says, and owns the
 * sessions, the reaper, health and metrics. Everything protocol-shaped lives in shared/ and the
 * handlers beside this file; this module only wires them to a listening socket.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createMeekHandler } from './meek-handler.ts';
import { SessionRegistry } from './session-registry.ts';
import { RawUpstream } from './upstream-raw.ts';
import { RemuxUpstream } from './upstream-remux.ts';
import type { Upstream } from './upstream.ts';
import type { Dial } from './stream-relay.ts';
import { presentedToken, tokenMatches } from './auth.ts';
import { corsHeaders, preflightHeaders, send } from './http-util.ts';
import { codeLabel, type EdgeMetrics } from './metrics.ts';
import { DialError } from './dialer.ts';
import type { EdgeConfig } from './config.ts';
import type { RemuxStreamEvents } from './upstream-remux.ts';
import { startWebTransport, type RunningWebTransport } from '../webtransport/webtransport-edge.ts';

/** The server's view of a validated EdgeConfig, plus what the entry point (edge.ts) wires in. */
export type EdgeServerOptions = Pick<
  EdgeConfig,
  'host' | 'port' | 'mode' | 'upstream' | 'path' | 'maxBody' | 'holdoffMs' | 'idleTimeoutMs' | 'authToken' | 'maxSessions' | 'maxStreams' | 'dialTimeoutMs' | 'tls' | 'webtransport' | 'configDir'
> & {
  dial: Dial;
  metrics: EdgeMetrics;
  logger: Logger;
  /** Test-only: drop every Nth meek response after processing it. */
  dropEvery: number;
};

export interface RunningEdge {
  url: string;
  port: number;
  registry: SessionRegistry;
  /** The WebTransport endpoint, when --wt-listen asked for one. */
  webtransport: RunningWebTransport | null;
  close(): Promise<void>;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export async function startEdgeServer(o: EdgeServerOptions): Promise<RunningEdge> {
  const { metrics, logger } = o;
  const started = Date.now();
  let webtransportSessions = 0;
  const registry = new SessionRegistry(o.maxSessions, o.idleTimeoutMs, (session, reason) => {
    metrics.sessions.dec();
    logger.debug({ session: session.id.slice(0, 6), reason }, 'session ended');
  }, () => webtransportSessions);
  const bufferLimit = 4 * o.maxBody;

  const onBytes = (up: number, down: number) => {
    if (up) metrics.bytesUp.inc(up);
    if (down) metrics.bytesDown.inc(down);
  };
  /** One set of stream bookkeeping for meek's remux mode and WebTransport alike. */
  const streamEvents = (transport: 'meek' | 'webtransport'): RemuxStreamEvents => ({
    onBytes,
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
  });
  let webtransport: RunningWebTransport | null = null;

  const openUpstream = async (): Promise<Upstream> => {
    if (o.mode === 'raw') {
      const target = o.upstream!;
      try {
        return await RawUpstream.connect(target.host, target.port, o.dialTimeoutMs, bufferLimit, onBytes);
      } catch (e) {
        metrics.dialErrors.inc({ reason: 'raw-upstream' });
        logger.warn({ err: (e as Error).message }, 'raw upstream unreachable');
        throw e;
      }
    }
    return new RemuxUpstream({
      bufferLimit,
      maxStreams: o.maxStreams,
      dial: o.dial,
      events: streamEvents('meek'),
    });
  };

  const handleMeek = createMeekHandler({
    maxBody: o.maxBody,
    holdoffMs: o.holdoffMs,
    authToken: o.authToken,
    registry,
    openUpstream,
    dropEvery: o.dropEvery,
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

  const configPath = `${o.path}config`;
  const operatorAllowed = (req: http.IncomingMessage) =>
    isLoopback(req.socket.remoteAddress) || (o.authToken !== null && tokenMatches(presentedToken(req.headers), o.authToken));

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const pathname = (req.url ?? '/').split('?')[0];
    const notFound = () => send(res, 404, 'not found\n');
    const fail = (e: unknown) => {
      logger.error({ err: (e as Error).message }, 'request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    };
    if (pathname === o.path) {
      if (req.method === 'OPTIONS') return send(res, 204, '', preflightHeaders());
      if (req.method !== 'POST') return send(res, 405, 'method not allowed\n', { allow: 'POST, OPTIONS' });
      return void handleMeek(req, res).catch(fail);
    }
    if (pathname === configPath) {
      if (req.method !== 'GET') return send(res, 405, 'method not allowed\n', { allow: 'GET' });
      if (o.authToken !== null && !tokenMatches(presentedToken(req.headers), o.authToken)) return send(res, 403, 'forbidden\n', corsHeaders());
      const body = { webtransport: webtransport?.discovery() ?? null };
      return send(res, 200, JSON.stringify(body), { ...corsHeaders(), 'content-type': 'application/json', 'cache-control': 'no-store' });
    }
    if (pathname === '/healthz' && req.method === 'GET' && operatorAllowed(req)) {
      const body = {
        status: 'ok',
        mode: o.mode,
        sessions: registry.size,
        webtransportSessions,
        webtransportFront: webtransport ? { pid: webtransport.front.pid, restarts: webtransport.front.restarts } : null,
        streams: registry.streamCount,
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
      };
      return send(res, 200, JSON.stringify(body), { 'content-type': 'application/json' });
    }
    if (pathname === '/metrics' && req.method === 'GET' && operatorAllowed(req)) {
      metrics.sessions.set(registry.size);
      return void metrics.text().then((text) => send(res, 200, text, { 'content-type': metrics.contentType }), fail);
    }
    return notFound();
  };

  const server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler) : http.createServer(handler);
  // Slow clients are cut off (headers, whole request, idle keep-alive); a poll lasts at most the hold-off.
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 30_000;
  server.maxHeadersCount = 64;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (o.webtransport) {
    try {
      webtransport = await startWebTransport({
        ...o.webtransport,
        path: o.path,
        tls: o.tls,
        configDir: o.configDir,
        logger,
        maxSessions: o.maxSessions,
        maxStreams: o.maxStreams,
        dial: o.dial,
        events: streamEvents('webtransport'),
        // The same path, token and session limit as a meek session's first request.
        decide: (request) => {
          if (request.path !== o.path) return 404;
          if (o.authToken !== null && !tokenMatches(request.token ?? undefined, o.authToken)) return 403;
          if (registry.full) return 503;
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
      server.close();
      throw e;
    }
  }
  registry.startReaper();
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${o.tls ? 'https' : 'http'}://${host}:${address.port}`;

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      // Stop accepting; polls in flight finish (they last at most the hold-off), idle sockets go now.
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    })
      .then(() => webtransport?.close())
      .then(() => registry.closeAll()));

  return { url, port: address.port, registry, webtransport, close };
}
