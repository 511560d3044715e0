/**
 * Real reverse proxies in front of edges, configured from the files in deploy/ (so the shipped
 * configuration is the tested one): Debian's HAProxy and nginx, and a deliberately buffering
 * proxy that holds every response until it is complete. Neither can listen on port 0, so each is
 * handed a port-0 listening socket as fd 3: HAProxy by `bind fd@3`, nginx by `NGINX=3;` (the
 * socket inheritance of its binary upgrade). Clients reach them directly, with no relay between.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, stopChild } from './processes.ts';

export interface Proxy {
  /** Where clients connect: a TCP port on 127.0.0.1. */
  port: number;
  /** The proxy's own process (null for the Node one). */
  pid: number | null;
  close(): Promise<void>;
}

/** A file of deploy/, as shipped. */
export function deployFile(name: 'haproxy.cfg' | 'nginx.conf' | 'passage-edge@.service'): string {
  return readFileSync(path.join(ROOT, 'deploy', name), 'utf8');
}

/** Replaces `from` in `text`, insisting it is there (a change to deploy/ must not silently skip a substitution). */
export function sub(text: string, from: string | RegExp, to: string): string {
  if (typeof from === 'string' ? !text.includes(from) : !from.test(text)) throw new Error(`the deploy file no longer contains ${String(from)}`);
  return text.replace(from, to);
}

/** A self-signed certificate for 127.0.0.1 / localhost (openssl from Debian). */
export function selfSigned(dir: string): { cert: string; key: string; pem: string; ca: Buffer } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const pem = path.join(dir, 'both.pem');
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, pem, ca: readFileSync(cert) };
}

/** Waits for a file the proxy writes once it is serving (its pid file or stats socket). */
async function untilFile(file: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(file)) return;
    if (child.exitCode !== null) throw new Error(`proxy exited ${child.exitCode}: ${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`proxy file ${file} never appeared: ${log()}`);
}

/** An edge behind a balancer: its meek port and its admin port (where /ready is checked). */
export interface EdgePorts {
  port: number;
  adminPort: number;
}

/** The admin port of a started companion. */
export const edgePorts = (c: { port: number; adminUrl: string }): EdgePorts => ({ port: c.port, adminPort: Number(new URL(c.adminUrl).port) });

/** deploy/nginx.conf with a `server` line per edge, listening where `listen` says, with this certificate. */
export function nginxSite(edges: EdgePorts[], listen: string, tls: { cert: string; key: string }): string {
  let site = deployFile('nginx.conf');
  site = sub(site, /( {4}server 127\.0\.0\.1:808\d [^\n]*\n)+/, edges.map((e) => `    server 127.0.0.1:${e.port} max_fails=1 fail_timeout=5s;\n`).join(''));
  site = sub(site, 'listen 443 ssl http2;', `listen ${listen} ssl http2;`);
  site = sub(site, '/etc/ssl/passage/fullchain.pem', tls.cert);
  return sub(site, '/etc/ssl/passage/privkey.pem', tls.key);
}

/** The main nginx.conf around one site: what Debian's /etc/nginx/nginx.conf sets, minus what needs root, state in `dir`. */
export function nginxMain(dir: string, site: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
  return `daemon off; master_process on; worker_processes 1; pid ${dir}/nginx.pid; error_log stderr warn;
events { worker_connections 768; }
http { sendfile on; tcp_nopush on; types_hash_max_size 2048; default_type application/octet-stream; access_log off; ${temp}
${site}
}
`;
}

/**
 * nginx with deploy/nginx.conf as its one site, in the foreground, its state in a private folder.
 */
export async function startNginx(o: { edges: EdgePorts[]; tls: { cert: string; key: string } }): Promise<Proxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-nginx-'));
  const { port, fd, close: closeListener } = await portZeroListener();
  writeFileSync(path.join(dir, 'nginx.conf'), nginxMain(dir, nginxSite(o.edges, `127.0.0.1:${port}`, o.tls)));
  let log = '';
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe', fd], env: { ...process.env, NGINX: '3;' } });
  closeListener(); // nginx holds its own copy of the socket now
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  // The pid file appears once the master has read its configuration and taken the socket.
  await untilFile(path.join(dir, 'nginx.pid'), child, () => log);
  return {
    port,
    pid: child.pid ?? null,
    async close() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A listening socket on a port the kernel chose, for a child to inherit as fd 3. */
async function portZeroListener(): Promise<{ port: number; fd: number; close(): void }> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd; // Node keeps the listening fd here (internal, long-standing)
  return { port, fd, close: () => listener.close() };
}

/** deploy/haproxy.cfg with a `server` line per edge, listening where `bind` says. */
export function haproxyConfig(edges: EdgePorts[], bind: string): string {
  let cfg = deployFile('haproxy.cfg');
  cfg = sub(cfg, /( {4}server edge\d 127\.0\.0\.1:808\d check port 818\d\n)+/, edges.map((e, i) => `    server edge${i + 1} 127.0.0.1:${e.port} check port ${e.adminPort}\n`).join(''));
  return sub(cfg, 'bind :443 ssl crt /etc/haproxy/passage.pem', bind);
}

export interface Haproxy extends Proxy {
  /** What HAProxy printed (its log goes to stdout). */
  log(): string;
  /** Until HAProxy's checks see `count` edges ready (its stats socket, `show servers state`). */
  untilReady(count: number): Promise<void>;
  /** The stick table: which server (1-based, as `edgeN`) each session id is held to. */
  stickTable(): Promise<Map<string, number>>;
  /** Each server's operational state from the stats socket (draining: its /ready said 404). */
  servers(): Promise<Array<{ name: string; state: 'down' | 'up' | 'draining' }>>;
}

/** HAProxy with deploy/haproxy.cfg (one `server` per edge), in the foreground, on a port-0 socket it inherits. */
export async function startHaproxy(o: { edges: EdgePorts[]; tls: { pem?: string } }): Promise<Haproxy> {
  if (!o.tls.pem) throw new Error('HAProxy needs the certificate and key in one PEM file');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-haproxy-'));
  const stats = path.join(dir, 'stats.sock');
  const cfg = sub(haproxyConfig(o.edges, `bind fd@3 ssl crt ${o.tls.pem}`), 'global\n', `global\n    stats socket ${stats} level admin\n`);
  writeFileSync(path.join(dir, 'haproxy.cfg'), cfg);
  const { port, fd, close: closeListener } = await portZeroListener();
  let log = '';
  const child = spawn('/usr/sbin/haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe', fd] });
  closeListener(); // HAProxy holds its own copy of the socket now
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  await untilFile(stats, child, () => log);
  const once = (line: string) =>
    new Promise<string>((resolve, reject) => {
      let out = '';
      const c = net.connect(stats, () => c.end(line + '\n'));
      c.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.on('end', () => resolve(out)).on('error', reject);
    });
  // A busy HAProxy's stats socket may have its backlog full for a moment (EAGAIN): ask again.
  const command = async (line: string): Promise<string> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await once(line);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const servers = async () => {
    // `show stat` CSV: pxname,svname,…,status (UP, DOWN, NOLB: its check said 404, MAINT, …)
    const rows = (await command('show stat')).split('\n').map((l) => l.split(','));
    const at = rows[0]!.indexOf('status');
    return rows
      .filter((r) => r[0] === 'passage_edges' && /^edge\d+$/.test(r[1] ?? ''))
      .map((r) => {
        const status = r[at] ?? '';
        return { name: r[1]!, state: status.startsWith('UP') ? ('up' as const) : status.startsWith('NOLB') ? ('draining' as const) : ('down' as const) };
      });
  };
  const stickTable = async () => {
    // "0x55d0…: key=<id> use=0 exp=599990 shard=0 server_id=2 server_key=edge2"
    const out = await command('show table passage_edges');
    return new Map([...out.matchAll(/key=(\S+) .*?server_id=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  };
  return {
    port,
    pid: child.pid ?? null,
    log: () => log,
    servers,
    stickTable,
    async untilReady(count) {
      for (let i = 0; i < 400; i++) {
        if ((await servers()).filter((s) => s.state === 'up').length >= count) return;
        if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`HAProxy never saw ${count} edges up: ${JSON.stringify(await servers())}\n${log}`);
    },
    async close() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A proxy that buffers: it reads each response from the edge to its end before sending any of
 * it (headers included) — what some CDNs and corporate proxies do. Plain HTTP to the edge.
 */
export function startBufferingProxy(edgePort: number): Promise<Proxy> {
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: edgePort, path: req.url, method: req.method, headers: req.headers, agent }, (upRes) => {
      const parts: Buffer[] = [];
      upRes.on('data', (c: Buffer) => parts.push(c));
      upRes.on('end', () => {
        const body = Buffer.concat(parts);
        const headers = { ...upRes.headers };
        delete headers['transfer-encoding'];
        headers['content-length'] = String(body.length);
        res.writeHead(upRes.statusCode ?? 502, headers);
        res.end(body);
      });
      upRes.on('error', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        pid: null,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            agent.destroy();
            server.close(() => r());
          }),
      }),
    ),
  );
}
