/**
 * The WebTransport front: a Deno process (Node has no QUIC here; docs/PLATFORM.md) that the companion
 * starts, supervises and restarts (server/webtransport/front-process.ts). It terminates QUIC and
 * HTTP/3 and hands every session to the edge over a Unix socket; the edge does auth, limits,
 * policy and dialing. stdout carries one line, "ready PORT" (or "bind-failed CODE MESSAGE" when the
 * UDP port cannot be had); diagnostics go to stderr; the end of stdin (the companion's end of a
 * pipe) stops it.
 *
 * Config: one JSON argument {host, port, certFile, keyFile, linkPath, maxConnections,
 * maxPerAddress, connectDeadlineMs}.
 */
import { H3Error } from '../../../shared/h3/webtransport.ts';
import { H3Connection } from './h3-connection.ts';

interface FrontConfig {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  linkPath: string;
  maxConnections: number;
  /** QUIC connections (handshakes included) one peer address may hold. */
  maxPerAddress: number;
  /** A connection with no WebTransport session this long after its handshake is closed. */
  connectDeadlineMs: number;
}

const config = JSON.parse(Deno.args[0] ?? '{}') as FrontConfig;
const log = (message: string) => console.error(message);

/** Binds the UDP port; a bind failure is one line on stdout for the companion to report, then exit. */
function bind(): Deno.QuicEndpoint {
  try {
    return new Deno.QuicEndpoint({ hostname: config.host, port: config.port });
  } catch (e) {
    const code = e instanceof Deno.errors.AddrInUse ? 'EADDRINUSE' : e instanceof Deno.errors.PermissionDenied ? 'EACCES' : e instanceof Deno.errors.AddrNotAvailable ? 'EADDRNOTAVAIL' : 'EBIND';
    console.log(`bind-failed ${code} ${(e as Error).message}`);
    Deno.exit(3);
  }
}
const endpoint = bind();
const listener = endpoint.listen({
  alpnProtocols: ['h3'],
  cert: Deno.readTextFileSync(config.certFile),
  key: Deno.readTextFileSync(config.keyFile),
  // Idle sessions stay up (the server pings) and dead peers are noticed within half a minute.
  keepAliveInterval: 10_000,
  maxIdleTimeout: 30_000,
});
const connections = new Set<H3Connection>();

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) Deno.exit(1);
  stopping = true;
  listener.stop();
  await Promise.all([...connections].map((c) => c.goaway()));
  // Give GOAWAY and the sessions' FINs a moment on the wire before closing the connections.
  await new Promise((r) => setTimeout(r, 200));
  for (const c of connections) c.close(H3Error.NO_ERROR, 'shutting down');
  endpoint.close();
  Deno.exit(0);
}
Deno.addSignalListener('SIGTERM', () => void shutdown());
Deno.addSignalListener('SIGINT', () => void shutdown());
// stdin is a pipe from the companion: its end means the companion is gone (even killed outright),
// and a front left running would hold the port its successor needs.
void (async () => {
  try {
    for await (const _ of Deno.stdin.readable);
  } catch {
    // a broken pipe ends the same way
  }
  await shutdown();
})();

console.log(`ready ${endpoint.addr.port}`);

/** Connections being handshaken count too: a flood of handshakes is bounded like connections. */
let handshaking = 0;
/**
 * Per peer address, so one address cannot take every place. Counted once the handshake is done:
 * Deno 2.9.6's QuicIncoming is spent by reading its remoteAddr (accept() then fails with "Invalid
 * QuicIncoming resource"), so the address is read from the connection; the global cap above
 * bounds handshakes in progress.
 */
const perAddress = new Map<string, number>();
const release = (ip: string) => {
  const left = (perAddress.get(ip) ?? 1) - 1;
  if (left > 0) perAddress.set(ip, left);
  else perAddress.delete(ip);
};
for await (const incoming of listener) {
  if (connections.size + handshaking >= config.maxConnections) {
    incoming.refuse();
    continue;
  }
  handshaking++;
  Promise.resolve(incoming.accept())
    .then(
      (conn: Deno.QuicConn) => {
        const ip = conn.remoteAddr.hostname;
        if ((perAddress.get(ip) ?? 0) >= config.maxPerAddress) {
          conn.close({ closeCode: H3Error.EXCESSIVE_LOAD, reason: 'too many connections' });
          return;
        }
        perAddress.set(ip, (perAddress.get(ip) ?? 0) + 1);
        const c = new H3Connection(conn, { linkPath: config.linkPath, log, connectDeadlineMs: config.connectDeadlineMs });
        connections.add(c);
        void c.run().finally(() => {
          connections.delete(c);
          release(ip);
        });
      },
      (e: Error) => log(`handshake failed: ${e.message}`),
    )
    .finally(() => handshaking--);
}
