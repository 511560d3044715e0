/**
 * The edge in raw mode, as the real CLI process, driven over real HTTP the way Tor's meek-client
 * and Lantern's meek-v1 client drive it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { startCompanion, type Companion } from '../support/processes.ts';
import { echoServer, listen, type TestServer } from '../support/servers.ts';
import { concat } from '../support/bytes.ts';

interface Post {
  id: string;
  seq?: number | string;
  body?: Uint8Array;
  auth?: string;
  maxBody?: number;
  method?: string;
  path?: string;
}

async function post(edge: Companion, p: Post): Promise<{ status: number; body: Uint8Array; maxBody: string | null }> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (p.id) headers['x-session-id'] = p.id;
  if (p.seq !== undefined) headers['x-meek-seq'] = String(p.seq);
  if (p.auth !== undefined) headers['x-meek-auth'] = p.auth;
  if (p.maxBody !== undefined) headers['x-meek-max-body'] = String(p.maxBody);
  const res = await fetch(edge.url + (p.path ?? '/'), { method: p.method ?? 'POST', headers, body: p.method && p.method !== 'POST' ? null : new Uint8Array(p.body ?? new Uint8Array(0)) });
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()), maxBody: res.headers.get('x-meek-max-body') };
}

async function health(edge: Companion): Promise<{ sessions: number; streams: number; status: string }> {
  return (await fetch(`${edge.adminUrl}/healthz`)).json() as Promise<{ sessions: number; streams: number; status: string }>;
}

/** Polls (with seq) until `want` bytes came back or the edge says the session ended. */
async function pollUntil(edge: Companion, id: string, seq: { n: number }, want: number, first?: Uint8Array) {
  const got: Uint8Array[] = [];
  let total = 0;
  let body = first ?? new Uint8Array(0);
  for (let i = 0; i < 2000 && total < want; i++) {
    const r = await post(edge, { id, seq: seq.n++, body });
    expect(r.status).toBe(200);
    body = new Uint8Array(0);
    got.push(r.body);
    total += r.body.length;
  }
  return concat(got);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const newId = () => randomBytes(16).toString('base64url');

describe('edge, raw mode', () => {
  let echo: TestServer;
  let edge: Companion;
  beforeAll(async () => {
    echo = await echoServer();
    edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${echo.port}`, '--log-level', 'warn']);
  });
  afterAll(async () => {
    await edge?.stop();
    await echo?.close();
  });

  it('prints its ready lines and answers health on the admin listener', async () => {
    expect(edge.stdout.join('')).toMatch(/^passage edge listening on http:\/\/127\.0\.0\.1:\d+\npassage admin listening on http:\/\/127\.0\.0\.1:\d+\n$/);
    expect((await health(edge)).status).toBe('ok');
  });

  it('echoes bytes through the upstream, 36 KB both ways', async () => {
    const id = newId();
    const data = randomBytes(36 * 1024);
    const back = await pollUntil(edge, id, { n: 1 }, data.length, data);
    expect(sha(back)).toBe(sha(data));
  });

  it('every 200 carries the server max body; responses respect the client max', async () => {
    const id = newId();
    const data = randomBytes(200_000);
    const seq = { n: 1 };
    // Upload in 64 KiB requests (as before learning the server's max), then read with a 4 KiB cap.
    for (let at = 0; at < data.length; at += 65536) {
      const r = await post(edge, { id, seq: seq.n++, body: data.subarray(at, at + 65536), maxBody: 4096 });
      expect(r.status).toBe(200);
      expect(r.maxBody).toBe('262144');
      expect(r.body.length).toBeLessThanOrEqual(4096);
    }
  });

  it('serves Tor meek-client habits: 11-char ids with + and /, no seq, 64 KiB cap by default', async () => {
    const id = 'ab+/cdEF12g';
    const data = randomBytes(65536);
    const first = await post(edge, { id, body: data });
    expect(first.status).toBe(200);
    const parts = [first.body];
    let total = first.body.length;
    for (let i = 0; i < 200 && total < data.length; i++) {
      const r = await post(edge, { id });
      expect(r.body.length).toBeLessThanOrEqual(65536);
      parts.push(r.body);
      total += r.body.length;
    }
    expect(sha(concat(parts))).toBe(sha(data));
  });

  it('replays a repeated seq without touching the upstream, also while the original is in flight', async () => {
    const id = newId();
    const before = echo.connections.length;
    const body = new TextEncoder().encode('once');
    const [a, b] = await Promise.all([post(edge, { id, seq: 1, body }), post(edge, { id, seq: 1, body })]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(Buffer.from(a.body).equals(Buffer.from(b.body))).toBe(true);
    const c = await post(edge, { id, seq: 1, body });
    expect(Buffer.from(c.body).equals(Buffer.from(a.body))).toBe(true);
    // Exactly one upstream connection, and the upstream saw the bytes exactly once.
    expect(echo.connections.length).toBe(before + 1);
    const rest = await pollUntil(edge, id, { n: 2 }, 4 - a.body.length);
    expect(new TextDecoder().decode(concat([a.body, rest]))).toBe('once');
  });

  it('answers seq jumps 409, seq 0 or junk 400, unknown sessions above 1 with 410', async () => {
    const id = newId();
    expect((await post(edge, { id, seq: 1 })).status).toBe(200);
    expect((await post(edge, { id, seq: 3 })).status).toBe(409);
    expect((await post(edge, { id, seq: 0 })).status).toBe(400);
    expect((await post(edge, { id, seq: '2x' })).status).toBe(400);
    expect((await post(edge, { id })).status).toBe(400); // seq dropped on a session that used it
    expect((await post(edge, { id, seq: 2 })).status).toBe(200);
    expect((await post(edge, { id: newId(), seq: 5 })).status).toBe(410);
  });

  it('rejects missing or short ids; other methods, paths and preflights get the cover, with no CORS', async () => {
    expect((await post(edge, { id: '' })).status).toBe(400);
    expect((await post(edge, { id: 'short' })).status).toBe(400);
    expect((await post(edge, { id: 'bad id with spaces' })).status).toBe(400);
    const cover = new TextDecoder().decode((await post(edge, { id: newId(), method: 'GET' })).body);
    expect(cover).toContain('<title>Field notes</title>');
    for (const p of [{ method: 'PUT' }, { path: '/elsewhere' }, { method: 'OPTIONS' }] as Array<Partial<Post>>) {
      const r = await post(edge, { id: newId(), ...p });
      expect(r.status, JSON.stringify(p)).toBe(p.path ? 404 : 200);
    }
    const pre = await fetch(edge.url + '/', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect([...pre.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
    const cfg = await fetch(edge.url + '/config');
    expect(await cfg.json()).toEqual({ webtransport: null });
  });

  it('refuses an oversized body with 413 before creating a session', async () => {
    const before = (await health(edge)).sessions;
    const r = await post(edge, { id: newId(), seq: 1, body: new Uint8Array(262145) });
    expect(r.status).toBe(413);
    expect((await health(edge)).sessions).toBe(before);
  });

  it('exposes Prometheus metrics on loopback', async () => {
    const text = await (await fetch(`${edge.adminUrl}/metrics`)).text();
    expect(text).toMatch(/passage_edge_sessions/);
    expect(text).toMatch(/passage_edge_polls_total \d+/);
    expect(text).toMatch(/passage_edge_replays_total [1-9]/);
  });
});

describe('edge, raw mode: session ends', () => {
  it('gives 410 once the upstream closed and everything was delivered', async () => {
    const bye = await listen((s) => s.end('bye'));
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${bye.port}`]);
    try {
      const id = newId();
      const seq = { n: 1 };
      const got = await pollUntil(edge, id, seq, 3);
      expect(new TextDecoder().decode(got)).toBe('bye');
      let last = 200;
      for (let i = 0; i < 50 && last === 200; i++) last = (await post(edge, { id, seq: seq.n++ })).status;
      expect(last).toBe(410);
      // A replay of the last 200 is still a 200? The last processed seq was a 200 before the 410.
      expect((await health(edge)).sessions).toBe(0);
    } finally {
      await edge.stop();
      await bye.close();
    }
  });

  it('answers 502 when the raw upstream cannot be dialed, creating no session', async () => {
    const closed = await listen(() => {});
    const port = closed.port;
    await closed.close();
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${port}`]);
    try {
      expect((await post(edge, { id: newId(), seq: 1 })).status).toBe(502);
      expect((await health(edge)).sessions).toBe(0);
    } finally {
      await edge.stop();
    }
  });

  it('reaps idle sessions and closes their upstream sockets', async () => {
    const echo = await echoServer();
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${echo.port}`, '--idle-timeout', '1']);
    try {
      expect((await post(edge, { id: newId(), seq: 1 })).status).toBe(200);
      expect((await health(edge)).sessions).toBe(1);
      const upstream = echo.connections[0]!;
      await new Promise<void>((resolve) => upstream.once('close', () => resolve()));
      expect((await health(edge)).sessions).toBe(0);
    } finally {
      await edge.stop();
      await echo.close();
    }
  });

  it('answers 503 at the session limit without creating a session', async () => {
    const echo = await echoServer();
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${echo.port}`, '--max-sessions', '2']);
    try {
      expect((await post(edge, { id: newId(), seq: 1 })).status).toBe(200);
      expect((await post(edge, { id: newId(), seq: 1 })).status).toBe(200);
      expect((await post(edge, { id: newId(), seq: 1 })).status).toBe(503);
      expect((await health(edge)).sessions).toBe(2);
      expect(echo.connections.length).toBe(2); // nothing dialed for the refused one
    } finally {
      await edge.stop();
      await echo.close();
    }
  });

  it('requires the auth token when one is set, compared exactly', async () => {
    const echo = await echoServer();
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${echo.port}`, '--auth-token', 'sesame-1234567890']);
    try {
      const cover = (r: { status: number; body: Uint8Array; maxBody: string | null }) => r.maxBody === null && new TextDecoder().decode(r.body).includes('Field notes');
      expect(cover(await post(edge, { id: newId(), seq: 1 }))).toBe(true);
      expect(cover(await post(edge, { id: newId(), seq: 1, auth: 'sesame-123456789' }))).toBe(true);
      const ok = await post(edge, { id: newId(), seq: 1, auth: 'sesame-1234567890' });
      expect(ok.status).toBe(200);
      expect(ok.maxBody).toBe('262144');
      expect((await health(edge)).sessions).toBe(1); // the stranger's requests opened none
      expect(edge.stderr.join('')).not.toContain('sesame-1234567890');
    } finally {
      await edge.stop();
      await echo.close();
    }
  });

  it('SIGTERM drains: a raw session (no GOAWAY in meek v1) is cut at --drain-timeout, its upstream closed, exit 0', async () => {
    const echo = await echoServer();
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--mode', 'raw', '--upstream', `127.0.0.1:${echo.port}`, '--drain-timeout', '1']);
    await post(edge, { id: newId(), seq: 1 });
    const upstreamClosed = new Promise<void>((r) => echo.connections[0]!.once('close', () => r()));
    expect(await edge.stop('SIGTERM')).toBe(0);
    await upstreamClosed;
    await echo.close();
  });
});
