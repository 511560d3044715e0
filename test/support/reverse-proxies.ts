/**
 * Real reverse proxies in front of an edge, configured from the blocks in docs/DEPLOY.md (so the
 * documented configuration is the tested one): Debian's nginx and HAProxy, and a deliberately
 * buffering proxy that holds every response until it is complete. nginx and HAProxy cannot
 * listen on port 0, so they listen on a Unix socket in a private folder, and a relay on a
 * port-0 TCP listener passes connections to it.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './processes.ts';

export interface Proxy {
  /** Where clients connect: a TCP port on 127.0.0.1. */
  port: number;
  /** The proxy's own process (null for the Node one). */
  pid: number | null;
  close(): Promise<void>;
}

/** The fenced block of `lang` in docs/DEPLOY.md (exactly one must exist). */
export function deployBlock(lang: 'nginx' | 'haproxy'): string {
  const doc = readFileSync(path.join(ROOT, 'docs/DEPLOY.md'), 'utf8');
  const blocks = [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
  if (blocks.length !== 1) throw new Error(`docs/DEPLOY.md has ${blocks.length} \`\`\`${lang} blocks, expected 1`);
  return blocks[0]!;
}

/** Replaces `from` in `text`, insisting it is there (a doc change must not silently skip a substitution). */
function sub(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`DEPLOY.md block no longer contains ${String(from)}`);
  return out;
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

/** A port-0 TCP listener that hands every connection to a Unix socket. */
function unixRelay(socketPath: string): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    open.add(client).add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      s.on('error', done).on('close', done);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            for (const s of open) s.destroy();
            server.close(() => r());
          }),
      }),
    ),
  );
}

async function untilSocket(file: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(file)) return;
    if (child.exitCode !== null) throw new Error(`proxy exited ${child.exitCode}: ${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`proxy socket ${file} never appeared: ${log()}`);
}

function supervise(cmd: string, args: string[], socket: string, dir: string): Promise<Proxy> {
  let log = '';
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  return untilSocket(socket, child, () => log).then(async () => {
    const relay = await unixRelay(socket);
    return {
      port: relay.port,
      pid: child.pid ?? null,
      async close() {
        await relay.close();
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
}

export interface ProxyOptions {
  edgePort: number;
  /** Serve TLS with this certificate (DEPLOY.md's blocks do); HAProxy wants both in one `pem`. */
  tls: { cert: string; key: string; pem?: string };
}

/** nginx as DEPLOY.md configures it, in the foreground, with its state in a private folder. */
export function startNginx(o: ProxyOptions): Promise<Proxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-nginx-'));
  const socket = path.join(dir, 'nginx.sock');
  let site = deployBlock('nginx');
  site = sub(site, 'server 127.0.0.1:8080;', `server 127.0.0.1:${o.edgePort};`);
  site = sub(site, 'listen 443 ssl http2;', `listen unix:${socket} ssl http2;`);
  site = sub(site, '/etc/ssl/passage/fullchain.pem', o.tls.cert);
  site = sub(site, '/etc/ssl/passage/privkey.pem', o.tls.key);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
  // What Debian's /etc/nginx/nginx.conf sets around a site, minus what needs root.
  const conf = `daemon off; master_process on; worker_processes 1; pid ${dir}/nginx.pid; error_log stderr warn;
events { worker_connections 768; }
http { sendfile on; tcp_nopush on; types_hash_max_size 2048; default_type application/octet-stream; access_log off; ${temp}
${site}
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  return supervise('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], socket, dir);
}

/** HAProxy as DEPLOY.md configures it (several edges: one `server` line each), in the foreground. */
export function startHaproxy(o: ProxyOptions & { edgePorts?: number[] }): Promise<Proxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-haproxy-'));
  const socket = path.join(dir, 'haproxy.sock');
  let cfg = deployBlock('haproxy');
  const ports = o.edgePorts ?? [o.edgePort];
  cfg = sub(cfg, '    server edge1 127.0.0.1:8080\n', ports.map((p, i) => `    server edge${i + 1} 127.0.0.1:${p}\n`).join(''));
  if (!o.tls.pem) throw new Error('HAProxy needs the certificate and key in one PEM file');
  cfg = sub(cfg, 'bind :443 ssl crt /etc/haproxy/passage.pem', `bind unix@${socket} ssl crt ${o.tls.pem}`);
  writeFileSync(path.join(dir, 'haproxy.cfg'), cfg);
  return supervise('/usr/sbin/haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], socket, dir);
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
