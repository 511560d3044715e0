/**
 * WebTransport clients for Node tests: test/support/deno-wt-client.js running in the pinned Deno
 * (node_modules/deno), driven by JSON lines — Deno's built-in `WebTransport` (what a browser's
 * API shows) and a small draft-02 client over raw QUIC (which, unlike the built-in one, can send
 * a stream's FIN; see the script). Every driver is killed when the test file ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT } from './processes.ts';

const DENO = path.join(ROOT, 'node_modules', 'deno', 'deno');
const SCRIPT = path.join(ROOT, 'test', 'support', 'deno-wt-client.js');
const drivers = new Set<ChildProcess>();

/** The built-in client: did `ready` resolve; with a `head`, what one stream read up to the FIN. */
export interface BuiltinResult {
  ready: boolean;
  error: string | null;
  received?: number;
  text?: string;
  fin?: boolean;
}

/** The extended CONNECT's :status, and the session when it is 200. */
export type ConnectResult = { status: number | null; session?: number };

export interface StreamResult {
  sent: number;
  sentSha: string;
  received: number;
  receivedSha: string;
  /** The server's FIN arrived (the read ended cleanly). */
  fin: boolean;
  writeError: string | null;
  readError: string | null;
  readTimedOut: boolean;
}

export interface StreamOptions {
  /** The stream's first bytes (an EagerSocks header, or anything). */
  head: Uint8Array;
  /** Random payload bytes written after the head, before FIN. */
  size?: number;
  /** Keep writing 1 KiB pieces up to this long, until a write fails (a refused stream). */
  probeMs?: number;
  /** Give up reading after this long (reported as readTimedOut). */
  readTimeoutMs?: number;
}

export type QuicClose = { closed: true; closeCode: number | null; reason: string } | { closed: false };

export interface WebTransportClient {
  /** Deno's built-in WebTransport: opens a session (and one stream when `head` is given), then closes it. */
  builtin(url: string, hash: string, head?: Uint8Array): Promise<BuiltinResult>;
  /**
   * The raw-QUIC client's extended CONNECT, on a connection of its own; with `conn` (a handle from
   * quic() or session()) on that QUIC connection instead, which a refusal leaves open.
   */
  connect(url: string, hash: string, conn?: number): Promise<ConnectResult>;
  /** connect(), failing unless the session opened; resolves with its handle. */
  session(url: string, hash: string): Promise<number>;
  /** Closes the session's QUIC connection. */
  close(session: number): Promise<void>;
  /** Ends the session with a FIN on its CONNECT stream; the QUIC connection stays. */
  endSession(session: number): Promise<void>;
  stream(session: number, o: StreamOptions): Promise<StreamResult>;
  /** Opens a stream that sends `head` and then stalls, never ending. */
  hold(session: number, head: Uint8Array): Promise<void>;
  /**
   * A bare QUIC connection (ALPN h3) pinned to `hash`, for speaking broken HTTP/3 or just being
   * held open; resolves once the handshake completed, rejects when it failed (refused).
   */
  quic(host: string, port: number, hash: string, from?: string): Promise<number>;
  /** Closes a bare connection (or a session's: the same as close()). */
  quicClose(conn: number): Promise<void>;
  quicSend(conn: number, kind: 'bidi' | 'uni', bytes: Uint8Array, fin?: boolean): Promise<void>;
  /** Waits up to timeoutMs for the server to close the connection. */
  quicClosed(conn: number, timeoutMs?: number): Promise<QuicClose>;
  stop(): void;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export function startWebTransportClient(): WebTransportClient {
  const child = spawn(DENO, ['run', '-A', '--unstable-net', '--no-config', '--quiet', SCRIPT], {
    cwd: ROOT,
    env: { ...process.env, DENO_DIR: mkdtempSync(path.join(tmpdir(), 'passage-deno-')), NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  drivers.add(child);
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const waiting = new Map<number, { resolve(v: Record<string, unknown>): void; reject(e: Error): void }>();
  let nextId = 1;
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const { id, failed, ...result } = JSON.parse(line) as { id: number; failed?: string };
    const w = waiting.get(id);
    waiting.delete(id);
    if (failed !== undefined) w?.reject(new Error(failed));
    else w?.resolve(result);
  });
  child.once('exit', (code, signal) => {
    drivers.delete(child);
    for (const w of waiting.values()) w.reject(new Error(`the Deno client exited (${code ?? signal}):\n${stderr.join('')}`));
    waiting.clear();
  });

  const call = <T>(op: string, args: Record<string, unknown>): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: Record<string, unknown>) => void, reject });
      child.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n');
    });

  const client: WebTransportClient = {
    builtin: (url, hash, head) => call('builtin', { url, hash, ...(head ? { head: hex(head) } : {}) }),
    connect: (url, hash, conn) => call('connect', { url, hash, ...(conn === undefined ? {} : { conn }) }),
    async session(url, hash) {
      const r = await client.connect(url, hash);
      if (r.status !== 200 || r.session === undefined) throw new Error(`WebTransport session to ${url} refused: ${r.status}`);
      return r.session;
    },
    close: (session) => call('close', { session }),
    endSession: (session) => call('endSession', { session }),
    stream: (session, o) => call('stream', { session, head: hex(o.head), size: o.size ?? 0, probeMs: o.probeMs ?? 0, readTimeoutMs: o.readTimeoutMs ?? 30_000 }),
    hold: (session, head) => call('hold', { session, head: hex(head) }),
    quic: async (host, port, hash, from) => (await call<{ conn: number }>('quic', { host, port, hash, from })).conn,
    quicClose: (conn) => call('close', { session: conn }),
    quicSend: (conn, kind, bytes, fin = false) => call('quicSend', { conn, kind, hex: hex(bytes), fin }),
    quicClosed: (conn, timeoutMs = 10_000) => call('quicClosed', { conn, timeoutMs }),
    stop() {
      child.stdin!.end();
      child.kill('SIGKILL');
    },
  };
  return client;
}

process.once('exit', () => {
  for (const d of drivers) d.kill('SIGKILL');
});
