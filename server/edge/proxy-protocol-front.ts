/**
 * PROXY protocol v2 in front of the edge's HTTP(S) server: a connection whose first bytes are the
 * v2 signature must come from a `--trusted-proxy` peer and carry a whole, valid header within
 * 5 s; it is then handed to the server with the client the header names remembered for it. Any
 * other connection is handed over untouched. An untrusted peer that sends a header, or a
 * malformed or truncated one, is closed — the process never notices.
 */
import net from 'node:net';
import type { Server } from 'node:net';
import { isProtocolError } from '../../shared/errors.ts';
import { decodeProxyV2, mayBeProxyV2, type ProxyHeader } from '../../shared/proxy-protocol.ts';

const HEADER_DEADLINE_MS = 5000;
const clients = new WeakMap<net.Socket, ProxyHeader>();

/**
 * The header a request's connection arrived with, if any. For HTTPS the request's socket is the
 * TLS socket; Node keeps the raw one it wraps as `_parent` (long-standing, internal).
 */
export function proxyHeaderOf(socket: net.Socket): ProxyHeader | null {
  return clients.get(socket) ?? clients.get((socket as net.Socket & { _parent?: net.Socket })._parent as net.Socket) ?? null;
}

/** A TCP listener that reads PROXY v2 headers from trusted peers and passes connections to `server`. */
export function proxyProtocolFront(server: Server, isTrusted: (address: string) => boolean, onRefused: (why: string) => void): net.Server {
  return net.createServer((socket) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), HEADER_DEADLINE_MS);
    const refuse = (why: string) => {
      clearTimeout(timer);
      onRefused(why);
      socket.destroy();
    };
    const handOver = (rest: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (rest.length > 0) socket.unshift(rest);
      server.emit('connection', socket);
      socket.resume();
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!mayBeProxyV2(buf)) return handOver(buf);
      if (!isTrusted(socket.remoteAddress ?? '')) return refuse('PROXY header from an untrusted peer');
      let decoded: ReturnType<typeof decodeProxyV2>;
      try {
        decoded = decodeProxyV2(buf);
      } catch (e) {
        if (!isProtocolError(e)) throw e;
        return refuse((e as Error).message);
      }
      if (!decoded) return;
      clients.set(socket, decoded.header);
      handOver(buf.subarray(decoded.length));
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
}
