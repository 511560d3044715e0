/**
 * Debian's coturn on loopback for the TURN tests, with a shared secret (`use-auth-secret`, as a
 * real deployment runs it) and loopback peers allowed (the edge is on loopback here; a real one
 * denies private peers but the edge, docs/DEPLOY.md). coturn cannot listen on port 0: it gets a
 * UDP port that was free a moment ago. Ready once it answers a STUN binding request.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { freeUdpPort } from './udp-relay.ts';
import { stopChild } from './processes.ts';
import { selfSigned } from './reverse-proxies.ts';
import { waitFor } from './wait.ts';

export interface Coturn {
  /** UDP, and TCP on the same number (coturn listens on both). */
  port: number;
  /** TURN over TLS (`turns:`), with a self-signed certificate for 127.0.0.1; null unless asked for. */
  tlsPort: number | null;
  secret: string;
  /** What coturn logged (`-v`: sessions, allocations, permissions and channel binds show relaying; not `-V`, which logs every datagram). */
  log(): string;
  /** SIGTERM by default; SIGKILL for a TURN server that dies. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Whether a STUN binding request to `port` is answered within 200 ms. */
function stunAnswers(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  const req = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12)]);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 200);
    s.on('message', (m) => done(m.length >= 20 && m.readUInt16BE(0) === 0x0101));
    s.on('error', () => done(false));
    s.send(req, port, '127.0.0.1');
  });
}

/** Whether `port` accepts a TCP connection now. */
function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => (c.destroy(), resolve(true)));
    c.on('error', () => resolve(false));
  });
}

/** A TCP port that was free a moment ago (coturn cannot listen on port 0). */
function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => {
    const { port } = s.address() as net.AddressInfo;
    s.close(() => resolve(port));
  }));
}

/** coturn on `port` (a free one when not given) with `secret` (a new one when not given): a restart passes both again. */
export async function startCoturn(o: { port?: number; secret?: string; tls?: boolean } = {}): Promise<Coturn> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-coturn-'));
  const port = o.port ?? (await freeUdpPort());
  const tlsPort = o.tls ? await freeTcpPort() : null;
  const cert = o.tls ? selfSigned(dir) : null;
  const tls = cert ? [`--tls-listening-port=${tlsPort}`, `--cert=${cert.cert}`, `--pkey=${cert.key}`] : ['--no-tls'];
  const secret = o.secret ?? randomBytes(18).toString('base64url');
  let log = '';
  const child = spawn(
    '/usr/bin/turnserver',
    ['-n', '-v', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1', '--use-auth-secret', `--static-auth-secret=${secret}`, '--realm=passage.test',
      ...tls, '--no-dtls', '--no-tcp-relay', '--allow-loopback-peers', '--no-cli', '--no-rfc5780', '--log-file=stdout', '--simple-log', `--pidfile=${path.join(dir, 'turnserver.pid')}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`turnserver exited ${child.exitCode}: ${log}`);
    if (await stunAnswers(port)) break;
    if (i > 100) throw new Error(`turnserver never answered STUN on ${port}: ${log}`);
  }
  if (tlsPort !== null) {
    await waitFor(`turnserver listening on TLS ${tlsPort}`, async () => {
      if (child.exitCode !== null) throw new Error(`turnserver exited ${child.exitCode}: ${log}`);
      return (await tcpAccepts(tlsPort)) || null;
    });
  }
  return {
    port,
    tlsPort,
    secret,
    log: () => log,
    async stop(signal) {
      await stopChild(child, signal);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
