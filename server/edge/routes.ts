/**
 * The edge's public listener (PROTOCOL.md §1, §4). A request is admitted only with the token —
 * and the required header, and on a token-less loopback edge a loopback Host (no DNS-rebinding
 * page gets in). Admitted: POST <path> is meek, GET <path>config is discovery. Everything else,
 * admitted or not, is the cover's to answer, so a prober sees only the cover.
 */
import { isLoopbackHost } from '../common/config-values.ts';
import type http from 'node:http';
import { presentedToken, tokenMatches, type TokenCheck } from '../common/auth.ts';
import { send } from '../common/http-util.ts';

export interface EdgeRoutes {
  path: string;
  tokenCheck: TokenCheck;
  /** `--require-header`: name lower-case. */
  requireHeader: { name: string; value: string } | null;
  /** A token-less edge on loopback: it admits only requests whose Host is a loopback name. */
  loopbackHostOnly: boolean;
  meek(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  /** The discovery answer's body (PROTOCOL.md §4). */
  discovery(): unknown;
  /** POST <path>rtc: a WebRTC offer in, the answer out (PROTOCOL.md §4); null when the edge has no TURN. */
  rtc: ((req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>) | null;
  cover: http.RequestListener;
  onError(e: unknown): void;
}

export function createRouter(o: EdgeRoutes): http.RequestListener {
  const configPath = `${o.path}config`;
  const admitted = (req: http.IncomingMessage): boolean => {
    if (!o.tokenCheck(presentedToken(req.headers))) return false;
    if (o.requireHeader && !tokenMatches(req.headers[o.requireHeader.name], o.requireHeader.value)) return false;
    if (o.loopbackHostOnly && !isLoopbackHost(hostName(req.headers.host ?? ''))) return false;
    return true;
  };
  return (req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    if (admitted(req)) {
      if (pathname === o.path && req.method === 'POST') {
        return void o.meek(req, res).catch((e: unknown) => {
          o.onError(e);
          if (!res.headersSent) send(res, 500, 'internal error\n');
          else res.destroy();
        });
      }
      if (o.rtc && pathname === `${o.path}rtc` && req.method === 'POST') {
        return void o.rtc(req, res).catch((e: unknown) => {
          o.onError(e);
          if (!res.headersSent) send(res, 500, 'internal error\n');
        });
      }
      if (pathname === configPath && req.method === 'GET') {
        return send(res, 200, JSON.stringify(o.discovery()), { 'content-type': 'application/json', 'cache-control': 'no-store' });
      }
    }
    o.cover(req, res);
  };
}

/** The name part of a Host header: `[::1]:8080` → `::1`, `localhost:8080` → `localhost`. */
function hostName(host: string): string {
  const m = /^\[([^\]]*)\](?::\d*)?$/.exec(host);
  return m ? m[1]! : host.replace(/:\d*$/, '');
}
