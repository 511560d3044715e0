/**
 * The bridge (PROTOCOL.md §5): a loopback proxy on one port. Browser connections (HTTP CONNECT,
 * absolute-form plain HTTP, SOCKS5 — told apart by the first byte) become ReMux streams on the
 * extension's link; the extension links on the same port with a WebSocket at /link. Success is
 * answered at once (EagerSocks), so the browser's first bytes ride with the stream's opening.
 */
import http from 'node:http';
import net from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { tokenMatches } from '../common/auth.ts';
import { joinSocketStream } from '../exit/socket-stream.ts';
import { CHROMIUM_ID, FIREFOX_UUID } from './config.ts';
import { LinkManager } from './link.ts';
import { PlainHttpProxy } from './plain-http.ts';
import { PROXY_USER } from '../../shared/bridge-credential.ts';
import {
  basicProxyPassword,
  parseSocksAuth,
  socksAuthReply,
  SOCKS_USERPASS,
  HttpHeadError,
  SocksError,
  SocksReply,
  connectDestination,
  parseRequestHead,
  parseSocksGreeting,
  parseSocksRequest,
  socksReply,
} from './proxy-head.ts';

export interface BridgeOptions {
  host: string;
  port: number;
  token: string;
  /** Extension ids whose `chrome-extension://ID` origin may link. */
  allowedExtensions: ReadonlySet<string>;
  /** Firefox installs whose `moz-extension://UUID` origin may link; null or absent: any. */
  allowedFirefox?: ReadonlySet<string> | null;
  logger: Logger;
  /** How long a browser connection waits for a missing link before failing (3 s). */
  linkGraceMs?: number;
}

export interface RunningBridge {
  url: string;
  port: number;
  links: LinkManager;
  close(): Promise<void>;
}

const NO_LINK_MESSAGE =
  'Passage: the extension is not linked to the companion. Open the Passage popup in Chromium; ' +
  'if it asks for pairing, paste the token printed by `npm start` into the Options page.';

export function httpError(status: number, reason: string, message: string, extra = ''): Uint8Array {
  const body = `<!doctype html><meta charset="utf-8"><title>Passage: ${reason}</title><h1>${status} ${reason}</h1><p>${message}</p>\n`;
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Passage-Error: ${reason}\r\n${extra}\r\n${body}`,
  );
}

/** What a browser without the credential is told: the extension answers it (webRequest.onAuthRequired). */
const AUTH_REQUIRED = httpError(
  407,
  'Proxy Authentication Required',
  `This proxy is Passage's. The Passage extension signs in by itself; other tools use the user name ${PROXY_USER} and the pairing token as the password.`,
  'Proxy-Authenticate: Basic realm="Passage"\r\n',
);

/** How far a SOCKS5 client got: greeting answered, credential accepted. */
interface SocksState {
  greeted: boolean;
  authed: boolean;
}

export async function startBridge(o: BridgeOptions): Promise<RunningBridge> {
  const { logger } = o;
  const grace = o.linkGraceMs ?? 3000;
  const links = new LinkManager(logger);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false });

  /** A stream for `destination` on the link, waiting up to the grace period for a link. */
  const openStream = async (destination: Destination): Promise<MuxStream | null> => {
    const link = await links.waitForLink(grace);
    if (!link || !link.mux.canOpen) return null;
    return link.mux.open(destination);
  };

  /** Proxy requests carry the credential: `passage:<pairing token>`, compared in constant time. */
  const authorized = (password: string | null) => password !== null && tokenMatches(password, o.token);
  let boundPort = o.port;
  /** The bridge's own endpoints answer only their loopback names: no DNS-rebinding page reaches them. */
  const ownHost = (host: string | undefined) => [`127.0.0.1:${boundPort}`, `localhost:${boundPort}`, `[::1]:${boundPort}`].includes((host ?? '').toLowerCase());

  /**
   * A web page cannot send an extension's Origin, so only an extension in the user's browser gets
   * here; which ones: the Chromium ids allowed, and Firefox installs (each a random UUID) unless
   * pinned with --allow-extension.
   */
  const extensionAllowed = (origin: string) => {
    const at = origin.indexOf('://');
    if (at < 0) return false;
    const scheme = origin.slice(0, at);
    const id = origin.slice(at + 3);
    if (scheme === 'chrome-extension') return CHROMIUM_ID.test(id) && o.allowedExtensions.has(id);
    // Firefox writes the UUID in lowercase; the pinned ones are kept so.
    return scheme === 'moz-extension' && FIREFOX_UUID.test(id) && id === id.toLowerCase() && (!o.allowedFirefox || o.allowedFirefox.has(id));
  };

  // Origin-form requests: the extension's link (WebSocket upgrade) and a status page.
  const local = http.createServer((req, res) => {
    if (!ownHost(req.headers.host)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('not found\n');
    }
    const linked = links.link !== null;
    if (req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ linked, streams: links.link?.mux.streamCount ?? 0 }));
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`Passage bridge. Extension ${linked ? 'linked' : 'not linked'}. Proxy requests go to this port; the extension links at /link.\n`);
  });
  local.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://bridge');
    const origin = req.headers.origin ?? '';
    if (!ownHost(req.headers.host) || url.pathname !== '/link' || !extensionAllowed(origin) || !tokenMatches(url.searchParams.get('token') ?? undefined, o.token)) {
      logger.warn({ path: url.pathname, origin }, 'link refused');
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => links.adopt(ws));
  });

  const tunnel = async (socket: net.Socket, destination: Destination, rest: Uint8Array, ok: Uint8Array, fail: Uint8Array) => {
    socket.pause();
    const stream = await openStream(destination).catch(() => null);
    if (!stream) {
      socket.end(fail);
      return;
    }
    socket.write(ok);
    if (rest.length > 0) stream.write(rest);
    joinSocketStream(socket, stream, { abortCode: ResetCode.CANCELLED });
    socket.resume();
  };

  const onHttp = (socket: net.Socket, buf: Buffer): boolean => {
    let head;
    try {
      head = parseRequestHead(buf);
    } catch (e) {
      if (!(e instanceof HttpHeadError)) throw e;
      socket.end(httpError(e.status, e.reason, e.message));
      return true;
    }
    if (!head) return false;
    if (!head.target.startsWith('/') && !authorized(basicProxyPassword(head))) {
      socket.end(AUTH_REQUIRED);
      return true;
    }
    if (head.method === 'CONNECT') {
      let destination: Destination;
      try {
        destination = connectDestination(head);
      } catch (e) {
        if (!(e instanceof HttpHeadError)) throw e;
        socket.end(httpError(e.status, e.reason, e.message));
        return true;
      }
      void tunnel(socket, destination, buf.subarray(head.length), new TextEncoder().encode('HTTP/1.1 200 Connection Established\r\n\r\n'), httpError(503, 'Service Unavailable', NO_LINK_MESSAGE));
      return true;
    }
    if (head.target.startsWith('/')) {
      socket.pause();
      socket.unshift(buf);
      local.emit('connection', socket);
      socket.resume();
      return true;
    }
    new PlainHttpProxy(socket, buf, openStream, (status, reason, message) => httpError(status, reason, message || NO_LINK_MESSAGE), (h) => (authorized(basicProxyPassword(h)) ? null : AUTH_REQUIRED));
    return true;
  };

  /**
   * SOCKS5: greeting, username/password, request — each answered once, and answers still owed go
   * out together with the reply to the request (a client that sends all three at once gets one write).
   */
  const onSocks = (socket: net.Socket, buf: Buffer, state: SocksState): boolean => {
    try {
      const greeting = parseSocksGreeting(buf);
      if (greeting === null) return false;
      const owed: Uint8Array[] = [];
      if (!state.greeted) owed.push(Uint8Array.of(0x05, SOCKS_USERPASS));
      const auth = parseSocksAuth(buf.subarray(greeting));
      if (auth === null) {
        for (const a of owed) socket.write(a);
        state.greeted = true;
        return false;
      }
      if (!(auth.username === PROXY_USER && authorized(auth.password))) {
        socket.end(Buffer.concat([...owed, socksAuthReply(false)]));
        return true;
      }
      if (!state.authed) owed.push(socksAuthReply(true));
      const request = parseSocksRequest(buf.subarray(greeting + auth.length));
      if (request === null) {
        for (const a of owed) socket.write(a);
        state.greeted = state.authed = true;
        return false;
      }
      const ok = Buffer.concat([...owed, socksReply(SocksReply.SUCCEEDED)]);
      const fail = Buffer.concat([...owed, socksReply(SocksReply.FAILURE)]);
      void tunnel(socket, request.destination, buf.subarray(greeting + auth.length + request.length), ok, fail);
      return true;
    } catch (e) {
      if (!(e instanceof SocksError)) throw e;
      socket.end(e.answer());
      return true;
    }
  };

  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    let buf: Buffer = Buffer.alloc(0);
    const socks: SocksState = { greeted: false, authed: false };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      // Detached while a handler runs: a handler may pass the socket on (and unshift the bytes).
      socket.off('data', onData);
      const handled = buf[0] === 0x05 ? onSocks(socket, buf, socks) : onHttp(socket, buf);
      if (handled) socket.setTimeout(0);
      else socket.on('data', onData);
    };
    socket.on('data', onData);
    // A client that connects and never finishes its request is dropped.
    socket.setTimeout(30_000, () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  boundPort = address.port;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    links,
    close: () =>
      new Promise<void>((resolve) => {
        links.close();
        server.close(() => resolve());
        local.closeAllConnections();
        setTimeout(resolve, 1000).unref();
      }),
  };
}
