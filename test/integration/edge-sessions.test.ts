/**
 * The session table under attack (real process, real sockets): a stranger with the token who
 * fills it with one-shot sessions from one address holds only that address's share, and empty
 * sessions are ended within seconds — while a legitimate client keeps opening sessions and moving
 * data and never sees a 503. X-Forwarded-For is believed only from --trusted-proxy peers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { encodeProxyV2 } from '../../shared/proxy-protocol.ts';
import { createHash, randomBytes } from 'node:crypto';
import { EMPTY_SESSION_MS } from '../../shared/meek/server-session.ts';
import { meekMux } from '../support/node-meek.ts';
import { startCompanion, type Companion } from '../support/processes.ts';
import { echoServer } from '../support/servers.ts';

const TOKEN = 'table-token-0123456789';

let cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** One empty first POST of a fresh session, from `localAddress`, with optional extra headers. */
function oneShot(edge: Companion, localAddress: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: edge.port,
        method: 'POST',
        path: '/',
        localAddress,
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'x-session-id': randomBytes(12).toString('base64url'), 'x-meek-seq': '1', 'x-meek-auth': TOKEN, ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function health(edge: Companion): Promise<{ sessions: number }> {
  return (await (await fetch(`${edge.adminUrl}/healthz`)).json()) as { sessions: number };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('the session table under attack', () => {
  it('1,000 one-shot sessions from one address fill only its share; a legitimate client never sees 503; empty sessions go within seconds', async () => {
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--auth-token', TOKEN, '--max-sessions', '100', '--max-sessions-per-client', '20', '--log-level', 'warn']);
    const echo = await echoServer();
    cleanup.push(() => edge.stop(), () => echo.close());
    const attackerStatuses = new Map<number, number>();
    let sent = 0;
    // Eight at a time, 1,000 in all, while the legitimate client works.
    const attacker = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < 1000) {
          sent++;
          const status = await oneShot(edge, '127.0.0.2');
          attackerStatuses.set(status, (attackerStatuses.get(status) ?? 0) + 1);
        }
      }),
    );
    // The legitimate client: new sessions one after another, each carrying 64 KiB each way.
    const legit: number[] = [];
    for (let round = 0; round < 12; round++) {
      let closedWith: unknown = null;
      const client = meekMux({ url: `${edge.url}/`, authToken: TOKEN }, (e) => (closedWith = e ?? null));
      const stream = client.mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port });
      const data = randomBytes(64 * 1024);
      const back: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.attach({ data: (p) => (back.push(Buffer.from(p)), stream.consume(p.length)), end: () => resolve(), reset: (code) => reject(new Error(`reset 0x0${code}: ${String(closedWith)}`)) });
        stream.write(data);
        stream.end();
      });
      expect(sha(Buffer.concat(back))).toBe(sha(data));
      legit.push(round);
      client.session.close();
    }
    await attacker;
    expect(legit).toHaveLength(12);
    expect(attackerStatuses.get(200)).toBe(20); // its share
    expect(attackerStatuses.get(503)).toBeGreaterThan(0);
    const text = await (await fetch(`${edge.adminUrl}/metrics`)).text();
    expect(text).toMatch(/passage_edge_sessions_rejected_total\{reason="client"\} [1-9]/);
    expect(text).not.toMatch(/passage_edge_sessions_rejected_total\{reason="limit"\} [1-9]/);
    // The attacker's sessions carry no stream: they are ended within seconds, not at the idle timeout (120 s).
    const started = Date.now();
    for (let i = 0; i < 200 && (await health(edge)).sessions > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await health(edge)).sessions).toBe(0);
    expect(Date.now() - started).toBeLessThan(EMPTY_SESSION_MS + 5000);
  });

  it('X-Forwarded-For counts only from a --trusted-proxy peer, right-most untrusted entry first', async () => {
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--auth-token', TOKEN, '--max-sessions-per-client', '2', '--trusted-proxy', '127.0.0.1', '--trusted-proxy', '10.0.0.0/8', '--log-level', 'warn']);
    cleanup.push(() => edge.stop());
    // Through the trusted proxy: each client forwarded for is its own share, whatever it wrote to the left.
    const viaProxy = (chain: string) => oneShot(edge, '127.0.0.1', { 'x-forwarded-for': chain });
    expect([await viaProxy('198.51.7.1'), await viaProxy('6.6.6.6, 198.51.7.1'), await viaProxy('7.7.7.7, 198.51.7.1, 10.1.2.3')]).toEqual([200, 200, 503]);
    expect(await viaProxy('198.51.7.2')).toBe(200);
    // IPv6 clients share by /64.
    expect([await viaProxy('2001:4860:1:2::a'), await viaProxy('2001:4860:1:2::b'), await viaProxy('2001:4860:1:2:ffff::c')]).toEqual([200, 200, 503]);
    // From an untrusted peer the header is the client's own words: ignored.
    expect([await oneShot(edge, '127.0.0.3', { 'x-forwarded-for': '1.1.1.1' }), await oneShot(edge, '127.0.0.3', { 'x-forwarded-for': '2.2.2.2' }), await oneShot(edge, '127.0.0.3', { 'x-forwarded-for': '3.3.3.3' })]).toEqual([200, 200, 503]);
  });
});

/** One first POST over a fresh connection that starts with `prefix` (a PROXY v2 header, or garbage); resolves with the status, or 0 when the edge closed it. */
function overRawConnection(edge: Companion, prefix: Uint8Array, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: edge.port, localAddress }, () => {
      const id = randomBytes(12).toString('base64url');
      socket.write(Buffer.concat([prefix, Buffer.from(`POST / HTTP/1.1\r\nHost: edge\r\nX-Session-Id: ${id}\r\nX-Meek-Seq: 1\r\nX-Meek-Auth: ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)]));
    });
    let text = '';
    socket.setEncoding('latin1').on('data', (d: string) => (text += d));
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('error', () => undefined);
  });
}

describe('PROXY protocol v2 from a trusted balancer', () => {
  it('names the client for its share; an untrusted peer’s header, a malformed or a truncated one is closed, the edge stays up', async () => {
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--auth-token', TOKEN, '--max-sessions-per-client', '1', '--trusted-proxy', '127.0.0.1', '--log-level', 'warn']);
    cleanup.push(() => edge.stop());
    const from = (address: string) => encodeProxyV2({ address, port: 40_000 }, { address: address.includes(':') ? '2001:db8::443' : '198.51.100.1', port: 443 });
    expect(await overRawConnection(edge, from('203.0.113.9'))).toBe(200);
    expect(await overRawConnection(edge, from('203.0.113.9'))).toBe(503); // its one session
    expect(await overRawConnection(edge, from('203.0.113.10'))).toBe(200); // someone else behind the balancer
    expect(await overRawConnection(edge, from('2001:db8:5:6::1'))).toBe(200);
    // A trusted peer may also connect plainly (its own requests count as its own).
    expect(await overRawConnection(edge, new Uint8Array(0))).toBe(200);
    // An untrusted peer may not claim to be a balancer.
    expect(await overRawConnection(edge, from('203.0.113.11'), '127.0.0.9')).toBe(0);
    const header = from('203.0.113.12');
    const badVersion = Uint8Array.from(header);
    badVersion[12] = 0x11;
    expect(await overRawConnection(edge, badVersion)).toBe(0);
    const oversize = Uint8Array.from(header);
    oversize[14] = 0xff;
    expect(await overRawConnection(edge, oversize)).toBe(0);
    // Truncated: half a header, then the connection ends; nothing answers, nothing breaks.
    await new Promise<void>((resolve) => {
      const s = net.connect(edge.port, '127.0.0.1', () => s.end(Buffer.from(header.subarray(0, 20))));
      s.on('close', () => resolve());
      s.on('error', () => undefined);
    });
    expect(await overRawConnection(edge, from('203.0.113.13'))).toBe(200);
    expect((await health(edge)).sessions).toBe(5);
  });
});
