/**
 * The edge's routing and check order (PROTOCOL.md §1, §4): the meek endpoint, discovery at
 * `<path>config`, and the operator's /healthz and /metrics. The token is checked here, once per
 * request, before any handler runs.
 */
import type http from 'node:http';
import { presentedToken, type TokenCheck } from '../common/auth.ts';
import { corsHeaders, preflightHeaders, send } from './http-util.ts';

export interface EdgeRoutes {
  path: string;
  tokenCheck: TokenCheck;
  meek(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  /** The discovery answer's body (PROTOCOL.md §4). */
  discovery(): unknown;
  health(): unknown;
  metrics(): Promise<{ contentType: string; text: string }>;
  onError(e: unknown): void;
}

function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export function createRouter(o: EdgeRoutes): http.RequestListener {
  const configPath = `${o.path}config`;
  return (req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    const authorized = o.tokenCheck(presentedToken(req.headers));
    const fail = (e: unknown) => {
      o.onError(e);
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    };
    if (pathname === o.path) {
      if (req.method === 'OPTIONS') return send(res, 204, '', preflightHeaders());
      if (req.method !== 'POST') return send(res, 405, 'method not allowed\n', { allow: 'POST, OPTIONS' });
      if (!authorized) return send(res, 403, 'forbidden\n', corsHeaders());
      return void o.meek(req, res).catch(fail);
    }
    if (pathname === configPath) {
      if (req.method !== 'GET') return send(res, 405, 'method not allowed\n', { allow: 'GET' });
      if (!authorized) return send(res, 403, 'forbidden\n', corsHeaders());
      return send(res, 200, JSON.stringify(o.discovery()), { ...corsHeaders(), 'content-type': 'application/json', 'cache-control': 'no-store' });
    }
    const operator = req.method === 'GET' && (isLoopbackPeer(req.socket.remoteAddress) || (o.tokenCheck.required && authorized));
    if (pathname === '/healthz' && operator) {
      return send(res, 200, JSON.stringify(o.health()), { 'content-type': 'application/json' });
    }
    if (pathname === '/metrics' && operator) {
      return void o.metrics().then((m) => send(res, 200, m.text, { 'content-type': m.contentType }), fail);
    }
    return send(res, 404, 'not found\n');
  };
}
