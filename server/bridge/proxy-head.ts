/**
 * The little of HTTP/1 and SOCKS5 a browser-facing proxy must parse: a request head (CONNECT or
 * absolute-form), and the SOCKS5 greeting and CONNECT request. Pure functions over bytes: each
 * returns null while its input is an incomplete prefix and throws when it can never be valid:
 * HttpHeadError (answered with its HTTP status) or SocksError (answered with its SOCKS5 reply).
 */
import { PROXY_USER } from '../../shared/bridge-credential.ts';
import { decodeDestination, destinationFromHost, type Destination } from '../../shared/eagersocks.ts';

/** An HTTP request head that can never be valid; the browser is answered with `status`. */
export class HttpHeadError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 431 = 400,
  ) {
    super(message);
    this.name = 'HttpHeadError';
  }

  get reason(): string {
    return this.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  }
}

/** A SOCKS5 message that can never be valid; the client is answered with `reply` (RFC 1928 §6), or 0xFF to the greeting. */
export class SocksError extends Error {
  constructor(
    message: string,
    /** A reply code for the request, or NO_ACCEPTABLE_METHOD for the greeting. */
    readonly reply: number,
  ) {
    super(message);
    this.name = 'SocksError';
  }

  /** The bytes that answer it: a method selection of 0xFF, or a reply with the code. */
  answer(): Uint8Array {
    return this.reply === NO_ACCEPTABLE_METHOD ? new Uint8Array([SOCKS_VERSION, NO_ACCEPTABLE_METHOD]) : socksReply(this.reply);
  }
}

/** A head larger than this is refused (431), so a client cannot make the bridge buffer without end. */
export const MAX_HEAD_BYTES = 64 * 1024;

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  /** Header lines as sent (name, value), order kept. */
  headers: Array<[string, string]>;
  /** Bytes the head took, CRLFCRLF included. */
  length: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function parseRequestHead(buf: Uint8Array): RequestHead | null {
  const end = indexOfCrlfCrlf(buf);
  if (end < 0) {
    if (buf.length > MAX_HEAD_BYTES) throw new HttpHeadError('request head too large', 431);
    return null;
  }
  if (end + 4 > MAX_HEAD_BYTES) throw new HttpHeadError('request head too large', 431);
  const text = new TextDecoder('latin1').decode(buf.subarray(0, end));
  const lines = text.split('\r\n');
  const [method, target, version, ...extra] = lines[0]!.split(' ');
  if (!method || !target || !version || extra.length || !TOKEN.test(method) || !/^HTTP\/1\.[01]$/.test(version)) {
    throw new HttpHeadError('malformed request line');
  }
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name)) throw new HttpHeadError('malformed header line');
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  return { method, target, version, headers, length: end + 4 };
}

function indexOfCrlfCrlf(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i - 3;
  }
  return -1;
}

export function header(head: RequestHead, name: string): string | undefined {
  const lower = name.toLowerCase();
  return head.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** `CONNECT host:port` → the destination. */
export function connectDestination(head: RequestHead): Destination {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/@]+)):(\d{1,5})$/.exec(head.target);
  if (!m) throw new HttpHeadError('CONNECT target must be host:port');
  return checked(() => destinationFromHost(m[1] ?? m[2]!, Number(m[3])));
}

const HOP_BY_HOP = new Set(['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade']);

/**
 * An absolute-form request (`GET http://host/path HTTP/1.1`) rewritten to origin form for the
 * site: hop-by-hop and proxy headers dropped, `Connection: close` so each request is one stream.
 */
export function rewriteAbsoluteForm(head: RequestHead): { destination: Destination; head: Uint8Array } {
  let url: URL;
  try {
    url = new URL(head.target);
  } catch {
    throw new HttpHeadError('request target must be an absolute http:// URL');
  }
  if (url.protocol !== 'http:') throw new HttpHeadError(`only http:// requests are proxied this way (got ${url.protocol})`);
  if (url.username || url.password) throw new HttpHeadError('credentials in the URL are not forwarded');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const destination = checked(() => destinationFromHost(host, url.port ? Number(url.port) : 80));
  const lines = [`${head.method} ${url.pathname}${url.search} ${head.version}`];
  let hasHost = false;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'host') hasHost = true;
    lines.push(`${name}: ${value}`);
  }
  if (!hasHost) lines.splice(1, 0, `Host: ${url.host}`);
  lines.push('Connection: close', '', '');
  return { destination, head: new TextEncoder().encode(lines.join('\r\n')) };
}

function checked(f: () => Destination): Destination {
  try {
    return f();
  } catch (e) {
    throw new HttpHeadError(`bad destination: ${(e as Error).message}`);
  }
}

// ---- SOCKS5 (RFC 1928) with username/password (RFC 1929), CONNECT only ----

export const SOCKS_VERSION = 0x05;
/** The greeting's answer when no offered method is acceptable. */
export const NO_ACCEPTABLE_METHOD = 0xff;
export const SocksReply = { SUCCEEDED: 0x00, FAILURE: 0x01, NOT_ALLOWED: 0x02, UNREACHABLE: 0x04, COMMAND_UNSUPPORTED: 0x07, ADDRESS_UNSUPPORTED: 0x08 } as const;

/** The method the bridge wants: username/password (the credential the companion prints). */
export const SOCKS_USERPASS = 0x02;

/** The greeting: VER NMETHODS METHODS…; returns its length, requiring method 0x02 (username/password). */
export function parseSocksGreeting(buf: Uint8Array): number | null {
  if (buf.length < 2) return null;
  if (buf[0] !== SOCKS_VERSION) throw new SocksError('not SOCKS5', SocksReply.FAILURE);
  const n = buf[1]!;
  if (n === 0) throw new SocksError('no SOCKS methods offered', SocksReply.FAILURE);
  if (buf.length < 2 + n) return null;
  if (!buf.subarray(2, 2 + n).includes(SOCKS_USERPASS)) throw new SocksError('the bridge wants SOCKS5 username/password (passage:<pairing token>)', NO_ACCEPTABLE_METHOD);
  return 2 + n;
}

/** RFC 1929: VER(1) ULEN UNAME PLEN PASSWD; null while incomplete. */
export function parseSocksAuth(buf: Uint8Array): { username: string; password: string; length: number } | null {
  if (buf.length < 2) return null;
  if (buf[0] !== 0x01) throw new SocksError('bad SOCKS5 username/password version', NO_ACCEPTABLE_METHOD);
  const ulen = buf[1]!;
  if (buf.length < 3 + ulen) return null;
  const plen = buf[2 + ulen]!;
  if (buf.length < 3 + ulen + plen) return null;
  const text = new TextDecoder('latin1');
  return { username: text.decode(buf.subarray(2, 2 + ulen)), password: text.decode(buf.subarray(3 + ulen, 3 + ulen + plen)), length: 3 + ulen + plen };
}

/** RFC 1929's answer: 0x00 success; anything else and the connection closes. */
export const socksAuthReply = (ok: boolean) => Uint8Array.of(0x01, ok ? 0x00 : 0x01);


/** The password a `Proxy-Authorization: Basic …` header carries for PROXY_USER, or null. */
export function basicProxyPassword(head: RequestHead): string | null {
  const value = header(head, 'proxy-authorization');
  const m = value ? /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  return colon >= 0 && decoded.slice(0, colon) === PROXY_USER ? decoded.slice(colon + 1) : null;
}

/** The request: VER CMD RSV ATYP ADDR PORT — the address bytes are exactly EagerSocks'. */
export function parseSocksRequest(buf: Uint8Array): { destination: Destination; length: number } | null {
  if (buf.length < 4) return null;
  if (buf[0] !== SOCKS_VERSION || buf[2] !== 0x00) throw new SocksError('malformed SOCKS5 request', SocksReply.FAILURE);
  if (buf[1] !== 0x01) throw new SocksError('only SOCKS5 CONNECT is supported', SocksReply.COMMAND_UNSUPPORTED);
  let parsed: ReturnType<typeof decodeDestination>;
  try {
    parsed = decodeDestination(buf.subarray(3));
  } catch (e) {
    throw new SocksError(`bad SOCKS5 address: ${(e as Error).message}`, SocksReply.ADDRESS_UNSUPPORTED);
  }
  return parsed && { destination: parsed.destination, length: 3 + parsed.length };
}

export function socksReply(code: number): Uint8Array {
  return new Uint8Array([SOCKS_VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}
