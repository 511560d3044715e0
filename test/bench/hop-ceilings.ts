/**
 * What two hops of a tunnelled download carry on their own, measured from the extension's service
 * worker in the browser under test, with nothing else running:
 * - the worker's WebSocket to a loopback sink: the bridge link's shape (PROTOCOL.md §5);
 * - the worker's `fetch` of a response streamed through nginx as deployed (deploy/nginx.conf, TLS,
 *   unbuffered, chunked): meek's streaming download without the tunnel — one stream, and two at
 *   once, behind the benchmark's delay relay at each RTT it runs (one HTTP/2 stream carries a
 *   receive window per round trip, whatever the path).
 * A tunnelled byte crosses both and then the page's own proxied connection, and on 2 cores the
 * hops share the CPU, so the tunnel's rate stays well under each of these: they show where the
 * ceiling is, not what a change to meek's windows could reach.
 */
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import type { CdpBrowser } from './cdp-browser.ts';
import { startNginx } from '../support/reverse-proxies.ts';
import { delayRelay } from '../support/tcp-relay.ts';
import type { E2eRow } from './e2e.ts';

const MIB = 1024 * 1024;
const TOTAL = 50 * MIB;
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A WebSocket server that answers "done" once a connection has sent it TOTAL bytes. */
async function webSocketSink(): Promise<{ port: number; close(): void }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', r));
  wss.on('connection', (ws) => {
    let n = 0;
    ws.on('message', (data: Buffer) => {
      n += data.length;
      if (n >= TOTAL) ws.send('done');
    });
  });
  return { port: (wss.address() as net.AddressInfo).port, close: () => wss.close() };
}

/** An HTTP server that streams TOTAL bytes as the edge streams (no length, X-Accel-Buffering: no). */
async function streamingServer(): Promise<{ port: number; close(): void }> {
  const piece = Buffer.alloc(64 * 1024, 0x5a);
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    let left = TOTAL;
    const more = () => {
      while (left > 0) {
        left -= piece.length;
        if (!res.write(piece)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** 50 MiB from the worker in `size`-byte messages, at most 1 MiB buffered (as bridge-link.ts sends): MB/s. */
const sendExpr = (port: number, size: number) => `(async () => {
  const ws = new WebSocket('ws://127.0.0.1:${port}/');
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('websocket failed')); });
  const done = new Promise((ok) => (ws.onmessage = ok));
  const msg = new Uint8Array(${size});
  const t0 = performance.now();
  for (let sent = 0; sent < ${TOTAL}; sent += ${size}) {
    while (ws.bufferedAmount >= ${MIB}) await new Promise((r) => setTimeout(r, 1));
    ws.send(msg);
  }
  await done;
  ws.close();
  return ${TOTAL} / 1e6 / ((performance.now() - t0) / 1000);
})()`;

/** The worker reads `streams` streamed responses at once, each to its end: MB/s of them all. */
const fetchExpr = (url: string, streams: number) => `(async () => {
  const t0 = performance.now();
  const one = async () => {
    const res = await fetch('${url}', { method: 'POST', cache: 'no-store', credentials: 'omit' });
    const reader = res.body.getReader();
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
    }
    if (n !== ${TOTAL}) throw new Error('short stream: ' + n);
    return n;
  };
  const n = (await Promise.all(Array.from({ length: ${streams} }, one))).reduce((a, b) => a + b, 0);
  return n / 1e6 / ((performance.now() - t0) / 1000);
})()`;

export async function hopCeilings(browser: CdpBrowser, tls: { cert: string; key: string }, rtts: readonly number[]): Promise<E2eRow[]> {
  const sink = await webSocketSink();
  const stream = await streamingServer();
  // deploy/nginx.conf with the streaming server where the edge would be.
  const nginx = await startNginx({ edges: [{ port: stream.port, adminPort: 0 }], tls });
  try {
    const rows: E2eRow[] = [];
    const run = async (name: string, expr: string) => {
      const values: number[] = [];
      for (let i = 0; i < RUNS; i++) values.push(await browser.worker.evaluate<number>(expr));
      rows.push({ name, value: median(values), unit: 'MB/s', note: `runs ${values.map((v) => v.toFixed(1)).join(', ')}` });
    };
    await run('hop ceiling: worker → loopback WebSocket, 50 MiB in 256 KiB messages', sendExpr(sink.port, 256 * 1024));
    // Through the benchmark's delay relay: what one HTTP/2 stream from the browser carries at each
    // RTT (its receive window, not the path, bounds it), and what two side by side carry.
    for (const rttMs of rtts) {
      const relay = await delayRelay(nginx.port, rttMs / 2);
      try {
        for (const streams of [1, 2]) {
          const what = streams === 1 ? 'a 50 MiB stream' : `${streams} streams of 50 MiB at once`;
          await run(`hop ceiling: worker fetch of ${what} through nginx (TLS), +${rttMs} ms`, fetchExpr(`https://127.0.0.1:${relay.port}/m/`, streams));
        }
      } finally {
        relay.close();
      }
    }
    return rows;
  } finally {
    await nginx.close();
    stream.close();
    sink.close();
  }
}
