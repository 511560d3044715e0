/**
 * The edge's WebTransport endpoint (PROTOCOL.md §4): certificates (the operator's, or generated
 * and rotated), the Unix-socket link the front hands sessions over, the supervised Deno front,
 * and what discovery advertises. Sessions are decided by `decide` and their streams relayed by
 * the same code as meek's remux mode: the caller (edge-server.ts) passes both in.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { parseIPv4, parseIPv6 } from '../../shared/ip.ts';
import { CertificateStore, advertisedHashes, type Certificate } from './certificates.ts';
import { FrontProcess } from './front-process.ts';
import { startLinkServer, type LinkServerOptions } from './link-server.ts';

/** How often the generated certificates are checked for renewal and rotation. */
const ROTATION_CHECK_MS = 60 * 60 * 1000;

export interface WebTransportOptions extends Omit<LinkServerOptions, 'socketPath'> {
  host: string;
  port: number;
  /** The URL clients are told to use (behind NAT or a relay); default https://HOST:PORT<path>. */
  advertise: string | null;
  path: string;
  /** The operator's certificate (PEM); null: self-signed, pinned by hash. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** Where generated certificates are kept across restarts. */
  configDir: string;
  /** The edge's session limit (meek and WebTransport together). */
  maxSessions: number;
  /** The clock certificates are made and rotated by (tests move it). */
  now?: () => number;
  logger: Logger;
}

export interface Discovery {
  url: string;
  certificateHashes: string[];
}

export interface RunningWebTransport {
  discovery(): Discovery;
  readonly front: FrontProcess;
  /**
   * Renews and rotates generated certificates as time has passed; after a rotation the front is
   * restarted on the new certificate. Runs hourly; true when it rotated.
   */
  rotate(): Promise<boolean>;
  /** Draining: quiet streams end, and sessions left without a stream (link-server.ts). */
  closeQuiet(quietMs: number): void;
  close(): Promise<void>;
}

const urlHost = (host: string) => (parseIPv6(host) !== null ? `[${host}]` : host);

export async function startWebTransport(o: WebTransportOptions): Promise<RunningWebTransport> {
  const dir = mkdtempSync(path.join(tmpdir(), 'passage-wt-'));
  const files = { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem'), linkPath: path.join(dir, 'link.sock'), cacheDir: path.join(dir, 'deno') };
  const store = o.tls ? null : new CertificateStore(o.configDir, certificateNames(o.host), o.now);
  let hashes: string[] = [];
  let serving: Certificate | null = null;
  const refresh = async (): Promise<boolean> => {
    if (!store) return false;
    const state = await store.refresh();
    hashes = advertisedHashes(state);
    if (serving?.sha256 === state.current.sha256) return false;
    serving = state.current;
    writeFileSync(files.certFile, serving.certPem, { mode: 0o600 });
    writeFileSync(files.keyFile, serving.keyPem, { mode: 0o600 });
    return true;
  };
  if (o.tls) {
    writeFileSync(files.certFile, o.tls.cert, { mode: 0o600 });
    writeFileSync(files.keyFile, o.tls.key, { mode: 0o600 });
  } else await refresh();

  const link = await startLinkServer({ ...o, socketPath: files.linkPath });
  // A connection without a session costs a handshake; a few more than the sessions allowed leave room for retries.
  const front = new FrontProcess(o.host, o.port, files, o.maxSessions + 16, o.logger);
  let port: number;
  try {
    port = await front.start();
  } catch (e) {
    await link.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const url = o.advertise ?? `https://${urlHost(o.host)}:${port}${o.path}`;

  const rotate = async (): Promise<boolean> => {
    if (!(await refresh())) return false;
    o.logger.info({ sha256: serving?.sha256 }, 'webtransport certificate rotated; restarting the front');
    await front.restart();
    return true;
  };
  const timer = setInterval(() => {
    rotate().catch((e: Error) => o.logger.error({ err: e.message }, 'webtransport certificate rotation failed'));
  }, ROTATION_CHECK_MS);
  timer.unref();

  return {
    front,
    rotate,
    discovery: () => ({ url, certificateHashes: hashes }),
    closeQuiet: (quietMs) => link.closeQuiet(quietMs),
    close: async () => {
      clearInterval(timer);
      await front.close();
      await link.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Names for a generated certificate: the listen address when it is a specific IP, and localhost. */
function certificateNames(host: string): string[] {
  const names = ['localhost'];
  const specific = (parseIPv4(host) !== null && host !== '0.0.0.0') || (parseIPv6(host) !== null && host !== '::');
  if (specific || (!parseIPv4(host) && !parseIPv6(host) && host !== 'localhost')) names.push(host);
  return names;
}
