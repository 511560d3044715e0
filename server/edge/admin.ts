/**
 * The operator's listener (`--admin-listen`): /healthz, /ready and /metrics, apart from the public one so
 * that no reverse proxy in front of the edge can hand them to strangers. On loopback it answers
 * whoever reaches it; anywhere else only requests carrying the auth token (config refuses an
 * admin listener off loopback without one).
 */
import type http from 'node:http';
import { presentedToken, type TokenCheck } from '../common/auth.ts';
import { send } from '../common/http-util.ts';

export interface AdminRoutes {
  /** Whether requests must carry the token (the admin listener is off loopback). */
  tokenRequired: boolean;
  tokenCheck: TokenCheck;
  health(): unknown;
  /** Whether the edge takes new sessions: /ready answers 200, else 404 (HAProxy's `http-check disable-on-404`). */
  ready(): boolean;
  metrics(): Promise<{ contentType: string; text: string }>;
  onError(e: unknown): void;
}

export function createAdminRouter(o: AdminRoutes): http.RequestListener {
  return (req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    const allowed = req.method === 'GET' && (!o.tokenRequired || o.tokenCheck(presentedToken(req.headers)));
    if (allowed && pathname === '/healthz') return send(res, 200, JSON.stringify(o.health()), { 'content-type': 'application/json', 'cache-control': 'no-store' });
    // 404, not 503, while draining: a balancer then sends it no new sessions but keeps the ones it has there.
    if (allowed && pathname === '/ready') return o.ready() ? send(res, 200, 'ready\n') : send(res, 404, 'draining\n');
    if (allowed && pathname === '/metrics') {
      return void o.metrics().then(
        (m) => send(res, 200, m.text, { 'content-type': m.contentType }),
        (e: unknown) => {
          o.onError(e);
          send(res, 500, 'internal error\n');
        },
      );
    }
    send(res, 404, 'not found\n');
  };
}
