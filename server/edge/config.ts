/**
 * The edge's options, validated once at start-up: a value Passage cannot honour stops it with a
 * clear message instead of being ignored (the CLI prints the message and exits 2).
 */
import { readFileSync } from 'node:fs';
import { MAX_MAX_BODY, MIN_MAX_BODY } from '../../shared/meek/headers.ts';
import { parseIPv4, parseIPv6 } from '../../shared/ip.ts';
import { ConfigError, integer, isLoopbackHost, parseHostPort, parseLogLevel } from '../common/config-values.ts';
import type { LogLevel } from '../common/log.ts';
import { defaultConfigDir } from '../common/paths.ts';

export interface EdgeConfig {
  /** Listen address: an IP literal (IPv6 without brackets) or a name. */
  host: string;
  /** 0: any free port (the ready line names the real one). */
  port: number;
  mode: 'raw' | 'remux';
  /** The fixed upstream of raw mode; null in remux mode. */
  upstream: { host: string; port: number } | null;
  /** raw mode: begin every upstream connection with a PROXY v2 header naming the client. */
  upstreamProxyProtocol: boolean;
  /** The meek endpoint's path; starts and ends with "/". */
  path: string;
  /** The server's own largest request and response body, bytes. */
  maxBody: number;
  holdoffMs: number;
  /** meek v2: how long one streaming response stays open (below CDN limits on a request's life). */
  streamMaxMs: number;
  /** meek v2: random padding on the edge's answers and on the first ReMux frames of every stream. */
  padding: boolean;
  idleTimeoutMs: number;
  /** null: no auth (only allowed on loopback, or with --insecure-no-auth). */
  authToken: string | null;
  maxSessions: number;
  maxStreams: number;
  dialTimeoutMs: number;
  allowPrivate: boolean;
  /** PEM contents; null: plain HTTP. */
  tls: { cert: Buffer; key: Buffer } | null;
  logLevel: LogLevel;
  /** The WebTransport endpoint (UDP); null: meek only. */
  webtransport: { host: string; port: number; advertise: string | null } | null;
  /** Where the edge keeps generated WebTransport certificates across restarts. */
  configDir: string;
  /** `--resolve NAME=IP`: names the dialer maps before DNS (the policy still judges the IP); keys lower-case. */
  resolve: Map<string, string>;
  /** The operator's endpoints (/healthz, /metrics), on their own listener. */
  admin: { host: string; port: number };
  /** Where requests without a valid token go (reverse-proxied); null: the built-in static site. */
  cover: URL | null;
  /** A header the CDN adds that every tunnel request must carry (`--require-header NAME:VALUE`); name lower-case. */
  requireHeader: { name: string; value: string } | null;
  /** Peers whose X-Forwarded-For is believed (`--trusted-proxy ADDR[/BITS]`). */
  trustedProxies: string[];
  /** Memory one session may hold: data, control frames and every stream's buffers (`--session-buffer`). */
  sessionBuffer: number;
  /** Memory all sessions together may hold (`--max-memory`). */
  maxMemory: number;
  /** Sessions one client address (an IPv6 /64) may hold at once. */
  maxSessionsPerClient: number;
  /** WebRTC through TURN: the TURN servers clients are told of, and the secret shared with them (coturn `use-auth-secret`). */
  /** `address`: what the edge's WebRTC peer binds and offers as its candidate (null: every interface). */
  turn: { urls: string[]; secret: string; ttlSeconds: number; address: string | null } | null;
  /** SIGTERM: how long /ready answers 404 before sessions are told to move (the balancer's check interval). */
  drainNoticeMs: number;
  /** SIGTERM: how long open streams may go on finishing before the edge cuts them and exits. */
  drainTimeoutMs: number;
}

/** Raw option values as the CLI parser hands them over. */
export interface EdgeOptionValues {
  listen: string;
  mode: string;
  upstream?: string;
  upstreamProxyProtocol?: string;
  path: string;
  maxBody: string;
  holdoff: string;
  streamMax: string;
  padding: string;
  idleTimeout: string;
  authToken?: string;
  insecureNoAuth?: boolean;
  maxSessions: string;
  maxStreams: string;
  dialTimeout: string;
  allowPrivate?: boolean;
  cert?: string;
  key?: string;
  logLevel: string;
  wtListen?: string;
  wtAdvertise?: string;
  configDir: string;
  resolve?: string[];
  adminListen: string;
  cover?: string;
  requireHeader?: string;
  trustedProxy?: string[];
  sessionBuffer: string;
  maxMemory: string;
  maxSessionsPerClient: string;
  drainNotice: string;
  drainTimeout: string;
  turn?: string[];
  turnSecret?: string;
  turnTtl: string;
  rtcAddress?: string;
}

export const EDGE_DEFAULTS = {
  listen: '127.0.0.1:8080',
  mode: 'remux',
  path: '/',
  maxBody: '262144',
  holdoff: '50',
  streamMax: '22',
  padding: 'on',
  idleTimeout: '120',
  maxSessions: '1000',
  maxStreams: '256',
  adminListen: '127.0.0.1:8082',
  sessionBuffer: String(32 * 1024 * 1024),
  maxMemory: String(1024 * 1024 * 1024),
  maxSessionsPerClient: '32',
  drainNotice: '2',
  drainTimeout: '30',
  turnTtl: '3600',
  dialTimeout: '10',
  logLevel: 'info',
  configDir: defaultConfigDir(),
} as const;

/** Segments of letters, digits and `-._~`, never `.` or `..` (a client's URL parser would fold those away). */
function validPath(path: string): boolean {
  if (!/^\/([A-Za-z0-9._~-]+\/)*$/.test(path)) return false;
  return path.split('/').every((segment) => segment !== '.' && segment !== '..');
}

/** Whether a TURN URL reaches its server over TCP or TLS (not UDP). */
const overTcp = (url: string): boolean => url.startsWith('turns:') || url.endsWith('?transport=tcp');

export function parseEdgeConfig(v: EdgeOptionValues, env: Record<string, string | undefined> = {}): EdgeConfig {
  const listen = parseHostPort(v.listen, '--listen', true);
  if (v.mode !== 'raw' && v.mode !== 'remux') throw new ConfigError(`--mode must be raw or remux, got "${v.mode}"`);
  let upstream: EdgeConfig['upstream'] = null;
  if (v.mode === 'raw') {
    if (v.upstream === undefined) throw new ConfigError('--mode raw needs --upstream HOST:PORT');
    upstream = parseHostPort(v.upstream, '--upstream', false);
  } else if (v.upstream !== undefined) {
    throw new ConfigError('--upstream only applies to --mode raw (remux dials each stream\'s own destination)');
  }
  if (v.upstreamProxyProtocol !== undefined) {
    if (v.upstreamProxyProtocol !== 'v2') throw new ConfigError(`--upstream-proxy-protocol supports only v2, got "${v.upstreamProxyProtocol}"`);
    if (v.mode !== 'raw') throw new ConfigError('--upstream-proxy-protocol only applies to --mode raw (remux dials destinations, which expect none)');
  }
  if (!validPath(v.path)) throw new ConfigError(`--path must start and end with "/" and hold only letters, digits and -._~ (e.g. /m/), got "${v.path}"`);
  // An empty PASSAGE_AUTH_TOKEN (a blank line in an env file) means unset, not an empty secret.
  const authToken = v.authToken ?? (env.PASSAGE_AUTH_TOKEN || null);
  if (authToken !== null && authToken.length < 8) throw new ConfigError('--auth-token must be at least 8 characters');
  // It travels in an HTTP header: visible ASCII only.
  if (authToken !== null && !/^[\x21-\x7e]+$/.test(authToken)) throw new ConfigError('--auth-token must be printable ASCII without spaces');
  if (authToken === null && !isLoopbackHost(listen.host) && !v.insecureNoAuth) {
    throw new ConfigError(`refusing to listen on ${listen.host} without --auth-token (or PASSAGE_AUTH_TOKEN); --insecure-no-auth overrides`);
  }
  if (Boolean(v.cert) !== Boolean(v.key)) throw new ConfigError('--cert and --key go together');
  let tls: EdgeConfig['tls'] = null;
  if (v.cert && v.key) {
    try {
      tls = { cert: readFileSync(v.cert), key: readFileSync(v.key) };
    } catch (e) {
      throw new ConfigError(`cannot read certificate or key: ${(e as Error).message}`);
    }
  }
  const logLevel = parseLogLevel(v.logLevel);
  const resolve = new Map<string, string>();
  for (const entry of v.resolve ?? []) {
    const [name, ip, extra] = entry.split('=');
    if (!name || !ip || extra !== undefined || (parseIPv4(ip) === null && parseIPv6(ip) === null)) {
      throw new ConfigError(`--resolve wants NAME=IP, got "${entry}"`);
    }
    resolve.set(name.toLowerCase(), ip);
  }
  let webtransport: EdgeConfig['webtransport'] = null;
  if (v.wtListen !== undefined) {
    if (v.mode !== 'remux') throw new ConfigError('--wt-listen needs --mode remux (WebTransport streams are dialed by the edge)');
    const wt = parseHostPort(v.wtListen, '--wt-listen', true);
    const wildcard = wt.host === '0.0.0.0' || wt.host === '::';
    if (v.wtAdvertise !== undefined && !/^https:\/\/[^/?#\s]+\/[^?#\s]*$/.test(v.wtAdvertise)) {
      throw new ConfigError(`--wt-advertise must be an https:// URL with a path and no query, got "${v.wtAdvertise}"`);
    }
    if (wildcard && v.wtAdvertise === undefined) throw new ConfigError('--wt-listen on a wildcard address needs --wt-advertise https://HOST:PORT/PATH');
    if (authToken === null && !isLoopbackHost(wt.host) && !v.insecureNoAuth) {
      throw new ConfigError(`refusing WebTransport on ${wt.host} without --auth-token (or PASSAGE_AUTH_TOKEN); --insecure-no-auth overrides`);
    }
    webtransport = { host: wt.host, port: wt.port, advertise: v.wtAdvertise ?? null };
  } else if (v.wtAdvertise !== undefined) {
    throw new ConfigError('--wt-advertise only applies with --wt-listen');
  }
  const admin = parseHostPort(v.adminListen, '--admin-listen', true);
  if (!isLoopbackHost(admin.host) && authToken === null) throw new ConfigError(`--admin-listen on ${admin.host} needs --auth-token (its endpoints then want it)`);
  let cover: URL | null = null;
  if (v.cover !== undefined) {
    try {
      cover = new URL(v.cover);
    } catch {
      throw new ConfigError(`--cover must be an http:// or https:// URL, got "${v.cover}"`);
    }
    if ((cover.protocol !== 'http:' && cover.protocol !== 'https:') || cover.search || cover.hash || cover.username) {
      throw new ConfigError(`--cover must be an http:// or https:// URL without query or credentials, got "${v.cover}"`);
    }
  }
  let requireHeader: EdgeConfig['requireHeader'] = null;
  if (v.requireHeader !== undefined) {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):(.+)$/.exec(v.requireHeader);
    if (!m || m[2]!.trim().length < 8) throw new ConfigError('--require-header wants NAME:VALUE with a value of at least 8 characters');
    requireHeader = { name: m[1]!.toLowerCase(), value: m[2]!.trim() };
  }
  const trustedProxies = (v.trustedProxy ?? []).map((entry) => {
    const [ip, bits, extra] = entry.split('/');
    const v4 = parseIPv4(ip ?? '') !== null;
    const v6 = parseIPv6(ip ?? '') !== null;
    const max = v4 ? 32 : 128;
    if ((!v4 && !v6) || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
      throw new ConfigError(`--trusted-proxy wants an address or ADDR/BITS, got "${entry}"`);
    }
    return bits === undefined ? `${ip}/${max}` : entry;
  });
  const maxBody = integer(v.maxBody, '--max-body', MIN_MAX_BODY, MAX_MAX_BODY);
  const sessionBuffer = integer(v.sessionBuffer, '--session-buffer', 1024 * 1024, 1024 * 1024 * 1024);
  // Its downstream share (S/8) must hold one whole response.
  if (sessionBuffer < 8 * maxBody) throw new ConfigError(`--session-buffer must be at least 8 × --max-body (${8 * maxBody}), got ${sessionBuffer}`);
  if (v.padding !== 'on' && v.padding !== 'off') throw new ConfigError(`--padding must be on or off, got "${v.padding}"`);
  const idleTimeoutMs = integer(v.idleTimeout, '--idle-timeout', 1, 86_400) * 1000;
  const streamMaxMs = integer(v.streamMax, '--stream-max', 1, 300) * 1000;
  const maxMemory = integer(v.maxMemory, '--max-memory', 16 * 1024 * 1024, 2 ** 40);
  if (maxMemory < sessionBuffer) throw new ConfigError('--max-memory must be at least --session-buffer');
  let turn: EdgeConfig['turn'] = null;
  const turnSecret = v.turnSecret ?? env.PASSAGE_TURN_SECRET;
  if (v.turn?.length) {
    for (const url of v.turn) {
      if (!/^(turn:[A-Za-z0-9.-]+(:\d{1,5})?(\?transport=(udp|tcp))?|turns:[A-Za-z0-9.-]+(:\d{1,5})?(\?transport=tcp)?)$/.test(url)) {
        throw new ConfigError(`--turn wants turn:HOST:PORT[?transport=udp|tcp] or turns:HOST:PORT (TLS), got "${url}"`);
      }
    }
    if (v.mode !== 'remux') throw new ConfigError('--turn needs --mode remux (data channels carry ReMux streams the edge dials)');
    if (!turnSecret || turnSecret.length < 16) throw new ConfigError('--turn needs the TURN server\'s shared secret, at least 16 characters (--turn-secret or env PASSAGE_TURN_SECRET)');
    const address = v.rtcAddress ?? null;
    if (address !== null && parseIPv4(address) === null && parseIPv6(address) === null) throw new ConfigError(`--rtc-address wants an IP address of this host, got "${address}"`);
    // The ICE shim that lets TURN over TCP/TLS through to the edge's peer is IPv4 (webrtc/ice-shim.ts).
    if (address !== null && parseIPv4(address) === null && v.turn.some(overTcp)) throw new ConfigError(`TURN over TCP or TLS needs an IPv4 --rtc-address, got "${address}"`);
    turn = { urls: v.turn, secret: turnSecret, ttlSeconds: integer(v.turnTtl, '--turn-ttl', 60, 86_400), address };
  } else if (v.turnSecret !== undefined) throw new ConfigError('--turn-secret only applies with --turn');
  else if (v.rtcAddress !== undefined) throw new ConfigError('--rtc-address only applies with --turn');
  return {
    host: listen.host,
    port: listen.port,
    mode: v.mode,
    upstream,
    upstreamProxyProtocol: v.upstreamProxyProtocol === 'v2',
    path: v.path,
    maxBody,
    holdoffMs: integer(v.holdoff, '--holdoff', 0, 10_000),
    streamMaxMs,
    padding: v.padding === 'on',
    idleTimeoutMs,
    authToken,
    maxSessions: integer(v.maxSessions, '--max-sessions', 1, 1_000_000),
    maxStreams: integer(v.maxStreams, '--max-streams', 1, 65535),
    dialTimeoutMs: integer(v.dialTimeout, '--dial-timeout', 1, 300) * 1000,
    allowPrivate: Boolean(v.allowPrivate),
    tls,
    logLevel,
    webtransport,
    configDir: v.configDir,
    resolve,
    admin,
    cover,
    requireHeader,
    trustedProxies,
    sessionBuffer,
    maxMemory,
    maxSessionsPerClient: integer(v.maxSessionsPerClient, '--max-sessions-per-client', 1, 1_000_000),
    turn,
    drainNoticeMs: integer(v.drainNotice, '--drain-notice', 0, 300) * 1000,
    drainTimeoutMs: integer(v.drainTimeout, '--drain-timeout', 0, 3600) * 1000,
  };
}
