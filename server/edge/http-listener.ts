/**
 * The edge's HTTP(S) listener: timeouts that cut off slow clients, the ready URL, and a close
 * that lets polls in flight finish (they last at most the hold-off) before cutting the rest.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { proxyProtocolFront } from './proxy-protocol-front.ts';

export interface HttpListener {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** How long open connections may finish after close() before they are cut. */
const CLOSE_GRACE_MS = 2000;

export async function listenHttp(
  handler: http.RequestListener,
  o: { host: string; port: number; tls: { cert: Buffer; key: Buffer } | null; proxyProtocol?: { isTrusted(address: string): boolean; onRefused(why: string): void } },
): Promise<HttpListener> {
  const server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler) : http.createServer(handler);
  // With trusted proxies, a TCP front reads their PROXY v2 headers and hands each connection on.
  const listening: net.Server = o.proxyProtocol ? proxyProtocolFront(server, o.proxyProtocol.isTrusted, o.proxyProtocol.onRefused) : server;
  // Slow clients are cut off (headers, whole request, idle keep-alive); a poll lasts at most the hold-off.
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 30_000;
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    listening.once('error', reject);
    listening.listen(o.port, o.host, () => {
      listening.off('error', reject);
      resolve();
    });
  });
  const address = listening.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `${o.tls ? 'https' : 'http'}://${host}:${address.port}`,
    port: address.port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        if (listening !== server) listening.close();
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      })),
  };
}
