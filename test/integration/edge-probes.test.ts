/**
 * Probe resistance: what a censor's scanner sends to a suspected edge, sent to the edge and to
 * the site it covers for. Without the token (or the CDN's required header) the two answers must
 * be the same — status, headers (less those that name the moment or the connection) and body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { staticCover } from '../../server/edge/cover.ts';
import { startCompanion, type Companion } from '../support/processes.ts';

const TOKEN = 'probe-token-0123456789';
const CDN_HEADER = 'X-Cdn-Secret';
const CDN_VALUE = 'from-the-cdn-only-42';

interface Probe {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Headers that differ between any two answers of one site: the time, and the connection's own. */
const VARYING = new Set(['date', 'connection', 'keep-alive']);

function ask(port: number, p: Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: p.method, path: p.path, headers: p.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1').on('data', (d: string) => (body += d));
      res.on('end', () => {
        const headers = Object.fromEntries(Object.entries(res.headers).filter(([k]) => !VARYING.has(k)));
        resolve({ status: res.statusCode ?? 0, headers, body });
      });
    });
    req.on('error', reject);
    req.end(p.body);
  });
}

const meekHeaders = (extra: Record<string, string> = {}) => ({ 'content-type': 'application/octet-stream', 'x-session-id': 'probe-session-0001', 'x-meek-seq': '1', 'x-meek-max-body': '65536', ...extra });

const PROBES: Probe[] = [
  { method: 'GET', path: '/' },
  { method: 'HEAD', path: '/' },
  { method: 'OPTIONS', path: '/', headers: { origin: 'https://scanner.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-session-id' } },
  { method: 'POST', path: '/', body: 'hello' },
  { method: 'POST', path: '/', headers: meekHeaders(), body: '\u0000\u0001\u0000\u0000' },
  { method: 'POST', path: '/', headers: meekHeaders({ 'x-meek-auth': 'guess-0123456789' }), body: '' },
  { method: 'POST', path: '/', headers: meekHeaders({ authorization: 'Bearer guess-0123456789' }), body: '' },
  { method: 'GET', path: '/config' },
  { method: 'GET', path: '/config', headers: { 'x-meek-auth': 'wrong-token-000' } },
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/metrics' },
  { method: 'PUT', path: '/', body: 'x' },
  { method: 'DELETE', path: '/' },
  { method: 'GET', path: '/wp-login.php' },
  { method: 'GET', path: '/..%2f..%2fetc/passwd' },
  { method: 'GET', path: '/robots.txt' },
  { method: 'GET', path: '/?x=1' },
  { method: 'GET', path: '/notes/herons.html', headers: { 'if-modified-since': 'Mon, 02 Jun 2025 07:14:00 GMT' } },
];

/** A site to stand in front of: a few pages, an ETag, its own 404 and 405. */
function realSite(): http.RequestListener {
  return (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.length));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/html', server: 'nginx' });
        return void res.end('<html><body><h1>405 Not Allowed</h1></body></html>');
      }
      if (path === '/' || path === '/about') {
        const page = `<!doctype html><title>A real site</title><p>${path}</p>`;
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', etag: '"abc123"', server: 'nginx', 'content-length': String(page.length) });
        return void res.end(req.method === 'HEAD' ? undefined : page);
      }
      res.writeHead(404, { 'content-type': 'text/html', server: 'nginx' });
      res.end('<html><body><h1>404 Not Found</h1></body></html>');
    });
  };
}

function serve(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
      }),
    ),
  );
}

async function expectSameAnswers(edgePort: number, coverPort: number, probes: Probe[]): Promise<void> {
  for (const p of probes) {
    const [fromEdge, fromCover] = [await ask(edgePort, p), await ask(coverPort, p)];
    expect(fromEdge, `${p.method} ${p.path} ${JSON.stringify(p.headers ?? {})}`).toEqual(fromCover);
  }
}

describe('a prober without the token sees only the cover', () => {
  let site: Awaited<ReturnType<typeof serve>>;
  let builtIn: Awaited<ReturnType<typeof serve>>;
  let behindSite: Companion;
  let onItsOwn: Companion;
  beforeAll(async () => {
    site = await serve(realSite());
    builtIn = await serve(staticCover());
    [behindSite, onItsOwn] = await Promise.all([
      startCompanion(['edge', '--listen', '127.0.0.1:0', '--auth-token', TOKEN, '--cover', `http://127.0.0.1:${site.port}/`, '--log-level', 'warn']),
      startCompanion(['edge', '--listen', '127.0.0.1:0', '--auth-token', TOKEN, '--require-header', `${CDN_HEADER}:${CDN_VALUE}`, '--log-level', 'warn']),
    ]);
  });
  afterAll(async () => {
    await Promise.all([behindSite?.stop(), onItsOwn?.stop()]);
    await Promise.all([site?.close(), builtIn?.close()]);
  });

  it('--cover URL: every probe is answered as the real site answers it', async () => {
    await expectSameAnswers(behindSite.port, site.port, PROBES);
  });

  it('the built-in static site: every probe is answered as the static site answers it', async () => {
    await expectSameAnswers(onItsOwn.port, builtIn.port, PROBES);
  });

  it('--require-header: the right token without the CDN header is still the cover; with both, meek answers', async () => {
    const withToken = (extra: Record<string, string> = {}): Probe => ({ method: 'POST', path: '/', headers: meekHeaders({ 'x-meek-auth': TOKEN, ...extra }), body: '' });
    await expectSameAnswers(onItsOwn.port, builtIn.port, [withToken(), withToken({ [CDN_HEADER]: 'not-the-value-0000' }), { method: 'GET', path: '/config', headers: { 'x-meek-auth': TOKEN } }]);
    const admitted = await ask(onItsOwn.port, withToken({ [CDN_HEADER]: CDN_VALUE }));
    expect(admitted.status).toBe(200);
    expect(admitted.headers['x-meek-max-body']).toBe('262144');
    expect(admitted.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('the operator endpoints live on the admin listener only', async () => {
    const health = await fetch(`${behindSite.adminUrl}/healthz`);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
    expect((await fetch(`${behindSite.adminUrl}/`)).status).toBe(404);
  });
});

describe('a token-less demo edge on loopback', () => {
  it('answers only loopback Host names: a DNS-rebinding page gets the cover', async () => {
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--log-level', 'warn']);
    const builtIn = await serve(staticCover());
    try {
      const poll = (host: string): Probe => ({ method: 'POST', path: '/', headers: { ...meekHeaders(), host }, body: '' });
      const rebound = poll(`rebind.attacker.example:${edge.port}`);
      await expectSameAnswers(edge.port, builtIn.port, [rebound, { method: 'GET', path: '/config', headers: { host: 'attacker.example' } }]);
      for (const host of [`127.0.0.1:${edge.port}`, `localhost:${edge.port}`, `[::1]:${edge.port}`, '127.0.0.1:1234']) {
        const r = await ask(edge.port, { ...poll(host), headers: { ...poll(host).headers, 'x-session-id': `loopback-${host.length}-abcdef` } });
        expect(r.status, host).toBe(200);
        expect(r.headers['x-meek-max-body'], host).toBe('262144');
      }
    } finally {
      await edge.stop();
      await builtIn.close();
    }
  });
});
