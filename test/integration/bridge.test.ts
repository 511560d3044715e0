/**
 * The bridge as the real CLI process, with curl as the browser and a Node stand-in for the
 * extension on the link (a ReMux acceptor that dials destinations itself, mapping test names to
 * loopback) — so these tests exercise the bridge alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { Mux } from '../../shared/remux/mux.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import { joinSocketStream } from '../../server/exit/socket-stream.ts';
import { shippedExtensionId } from '../../server/common/paths.ts';
import { startCompanion, type Companion } from '../support/processes.ts';

const TOKEN = 'test-pairing-token-0123456789';

/** curl through the bridge with its credential (`user` overrides it; null sends none). */
function curl(args: string[], user: string | null = `passage:${TOKEN}`): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...(user === null ? [] : ['--proxy-user', user]), ...args], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A Firefox install's internal UUID, as `moz-extension://` origins carry it. */
const FIREFOX_INSTALL = '0b7e3a52-6c1d-4f8e-9a27-5d3c1e8b4f60';

/** A stand-in for the extension: links with the given origin and token, dials what it is asked. */
function fakeExtension(bridgePort: number, opts: { origin?: string; token?: string; targets: Record<string, number> }) {
  const ws = new WebSocket(`ws://127.0.0.1:${bridgePort}/link?token=${opts.token ?? TOKEN}`, { origin: opts.origin ?? `chrome-extension://${shippedExtensionId()}` });
  const seen: string[] = [];
  const mux = new Mux({
    role: 'acceptor',
    sink: { write: (chunks) => (ws.send(Buffer.concat(chunks)), true) },
    onStream: (stream) => {
      seen.push(`${stream.destination.host}:${stream.destination.port}`);
      const port = opts.targets[stream.destination.host];
      if (!port) return stream.reset(ResetCode.UNREACHABLE);
      const socket = net.connect({ host: '127.0.0.1', port: port === -1 ? stream.destination.port : port, allowHalfOpen: true });
      socket.once('connect', () => joinSocketStream(socket, stream, { abortCode: ResetCode.CONNECTION_RESET }));
      socket.once('error', () => stream.reset(ResetCode.UNREACHABLE));
    },
  });
  ws.on('message', (d: Buffer) => mux.receive(d));
  const opened = new Promise<number>((resolve) => {
    ws.once('open', () => resolve(101));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  return { ws, mux, seen, opened, closed };
}

async function waitLinked(bridge: Companion, linked: boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const s = (await (await fetch(`${bridge.url}/status`)).json()) as { linked: boolean };
    if (s.linked === linked) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`bridge never became linked=${linked}`);
}

describe('bridge', () => {
  let bridge: Companion;
  let site: http.Server;
  let sitePort: number;
  beforeAll(async () => {
    site = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`host=${req.headers.host} path=${req.url} proxy-conn=${req.headers['proxy-connection'] ?? '-'}\n`);
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', () => r()));
    sitePort = (site.address() as net.AddressInfo).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-bridge-'));
    bridge = await startCompanion(['bridge', '--listen', '127.0.0.1:0', '--token', TOKEN, '--config-dir', dir, '--log-level', 'warn']);
  });
  afterAll(async () => {
    await bridge?.stop();
    site?.close();
  });

  it('refuses a link with the wrong token or from another origin, before upgrading', async () => {
    expect(await fakeExtension(bridge.port, { token: 'wrong-token-0123456789', targets: {} }).opened).toBe(403);
    expect(await fakeExtension(bridge.port, { origin: 'https://evil.example', targets: {} }).opened).toBe(403);
    expect(await fakeExtension(bridge.port, { origin: `chrome-extension://${'a'.repeat(32)}`, targets: {} }).opened).toBe(403);
    // Firefox: any install's moz-extension://UUID with the token, nothing else shaped like it.
    expect(await fakeExtension(bridge.port, { origin: `moz-extension://${FIREFOX_INSTALL}`, token: 'wrong-token-0123456789', targets: {} }).opened).toBe(403);
    for (const bad of ['moz-extension://not-a-uuid', `moz-extension://${FIREFOX_INSTALL}/`, `moz-extension://${FIREFOX_INSTALL.toUpperCase()}x`, `moz-extension://${FIREFOX_INSTALL}.evil.example`, `moz-extension://${FIREFOX_INSTALL}://evil.example`, `chrome-extension://${'a'.repeat(32)}://x`])
      expect(await fakeExtension(bridge.port, { origin: bad, targets: {} }).opened).toBe(403);
  });

  it('links a Firefox install (moz-extension://UUID) that holds the token, and only the pinned ones when --allow-extension names some', async () => {
    const ff = fakeExtension(bridge.port, { origin: `moz-extension://${FIREFOX_INSTALL}`, targets: {} });
    expect(await ff.opened).toBe(101);
    await waitLinked(bridge, true);
    ff.ws.close();
    await ff.closed;
    await waitLinked(bridge, false);
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-bridge-pinned-'));
    const pinned = await startCompanion(['bridge', '--listen', '127.0.0.1:0', '--token', TOKEN, '--config-dir', dir, '--log-level', 'warn', '--allow-extension', FIREFOX_INSTALL]);
    try {
      expect(await fakeExtension(pinned.port, { origin: `moz-extension://${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, targets: {} }).opened).toBe(403);
      // Pinning a Firefox install leaves the shipped Chromium extension allowed.
      const chromium = fakeExtension(pinned.port, { targets: {} });
      expect(await chromium.opened).toBe(101);
      chromium.ws.close();
      const pinnedFf = fakeExtension(pinned.port, { origin: `moz-extension://${FIREFOX_INSTALL}`, targets: {} });
      expect(await pinnedFf.opened).toBe(101);
      pinnedFf.ws.close();
    } finally {
      await pinned.stop();
    }
  });

  it('without a link, a proxy request waits up to 3 s then gets a 503 page naming the problem; SOCKS gets a failure reply', async () => {
    await waitLinked(bridge, false);
    const started = Date.now();
    const r = await curl(['-x', bridge.url, '-i', `http://one.test:${sitePort}/`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 503/);
    expect(r.stdout).toMatch(/extension is not linked/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    const s = await curl(['--socks5-hostname', bridge.url.replace('http://', ''), `http://one.test:${sitePort}/`]);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(/SOCKS|socks/);
  });

  it('its own endpoints answer only loopback Host names: a DNS-rebinding page learns nothing', async () => {
    const ask = (host: string, path = '/status') =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: bridge.port, path, headers: { host }, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }).on('error', reject);
      });
    for (const host of [`127.0.0.1:${bridge.port}`, `localhost:${bridge.port}`, `[::1]:${bridge.port}`]) expect((await ask(host)).status, host).toBe(200);
    for (const host of [`rebind.attacker.example:${bridge.port}`, 'localhost', `127.0.0.1:${bridge.port + 1}`]) {
      const r = await ask(host);
      expect(r.status, host).toBe(404);
      expect(r.body).not.toMatch(/Passage|linked/);
    }
  });

  it('proxying needs the credential: 407 naming Basic for HTTP and CONNECT, refusal for SOCKS5; the wrong one is refused too', async () => {
    for (const user of [null, 'passage:wrong-token-000000000', `someone:${TOKEN}`]) {
      const plain = await curl(['-x', bridge.url, '-i', `http://one.test:${sitePort}/`], user);
      expect(plain.stdout, String(user)).toMatch(/^HTTP\/1\.1 407/);
      expect(plain.stdout).toMatch(/Proxy-Authenticate: Basic realm="Passage"/i);
      const tunnel = await curl(['-p', '-x', bridge.url, `http://one.test:${sitePort}/`], user);
      expect(tunnel.code, String(user)).not.toBe(0);
      expect(tunnel.stderr).toMatch(/407/);
      const socks = await curl(['--socks5-hostname', bridge.url.replace('http://', ''), `http://one.test:${sitePort}/`], user);
      expect(socks.code, String(user)).not.toBe(0);
    }
  });

  describe('with a link', () => {
    let ext: ReturnType<typeof fakeExtension>;
    beforeAll(async () => {
      ext = fakeExtension(bridge.port, { targets: { 'one.test': sitePort, 'two.test': sitePort, '127.0.0.1': sitePort } });
      expect(await ext.opened).toBe(101);
      await waitLinked(bridge, true);
    });
    afterAll(() => ext.ws.close());

    it('carries plain HTTP (absolute form rewritten, proxy headers dropped) across hosts on one keep-alive connection', async () => {
      const r = await curl(['-x', bridge.url, '-H', 'Proxy-Connection: keep-alive', `http://one.test:${sitePort}/a?x=1`, `http://two.test:${sitePort}/b`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`host=one.test:${sitePort} path=/a?x=1 proxy-conn=-\nhost=two.test:${sitePort} path=/b proxy-conn=-\n`);
      expect(ext.seen).toEqual(expect.arrayContaining([`one.test:${sitePort}`, `two.test:${sitePort}`]));
    });

    it('carries HTTP CONNECT (curl --proxytunnel)', async () => {
      const r = await curl(['-p', '-x', bridge.url, `http://one.test:${sitePort}/tunnel`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('path=/tunnel');
    });

    it('carries SOCKS5 with a domain (curl --socks5-hostname) and with an IPv4 address', async () => {
      const byName = await curl(['--socks5-hostname', bridge.url.replace('http://', ''), `http://two.test:${sitePort}/socks`]);
      expect(byName.code).toBe(0);
      expect(byName.stdout).toContain(`host=two.test:${sitePort} path=/socks`);
      const byAddress = await curl(['--socks5', bridge.url.replace('http://', ''), `http://127.0.0.1:${sitePort}/v4`]);
      expect(byAddress.code).toBe(0);
      expect(byAddress.stdout).toContain('path=/v4');
    });

    it('answers malformed requests with 400 and a clean close', async () => {
      const reply = await new Promise<string>((resolve) => {
        const s = net.connect(bridge.port, '127.0.0.1', () => s.end('GARBAGE\r\n\r\n'));
        let text = '';
        s.setEncoding('utf8').on('data', (d) => (text += d)).on('close', () => resolve(text));
      });
      expect(reply).toMatch(/^HTTP\/1\.1 400/);
      const huge = await new Promise<string>((resolve) => {
        const s = net.connect(bridge.port, '127.0.0.1', () => s.write('GET http://one.test/ HTTP/1.1\r\nX: ' + 'a'.repeat(70_000)));
        let text = '';
        s.setEncoding('utf8').on('data', (d) => (text += d)).on('close', () => resolve(text));
        s.on('error', () => resolve(text));
      });
      expect(huge).toMatch(/^HTTP\/1\.1 431/);
    });

    it('a new link replaces the old one and resets its streams', async () => {
      const held = net.connect(bridge.port, '127.0.0.1');
      await new Promise((r) => held.once('connect', r));
      held.write(`CONNECT one.test:${sitePort} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from(`passage:${TOKEN}`).toString('base64')}\r\n\r\n`);
      await new Promise((r) => held.once('data', r));
      const heldClosed = new Promise<void>((r) => held.once('close', () => r()));
      held.on('error', () => {});
      const next = fakeExtension(bridge.port, { targets: { 'one.test': sitePort } });
      expect(await next.opened).toBe(101);
      expect(await ext.closed).toBe(1000); // replaced: a normal close, not a protocol error
      await heldClosed;
      const r = await curl(['-x', bridge.url, `http://one.test:${sitePort}/after`]);
      expect(r.stdout).toContain('path=/after');
      ext = next;
    });
  });
});
