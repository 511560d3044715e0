/**
 * The origins the round-trip-bound benchmarks load, as a third-party web app would be served:
 * - HTTP/2 (Node `http2`, its default 64 KiB stream window): `POST /upload` answers the byte
 *   count; `GET /bytes?size=N` honours one `Range: bytes=a-b` (206); `GET /app` is an empty page
 *   to run the measurements from, same-origin.
 * - HTTPS/1.1 with a WebSocket echo at `/echo` (`ws`), and `GET /app`.
 * Both answer for blocked.test and open.test with the given certificate.
 */
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import { patternBytes } from '../support/e2e.ts';

export interface AppOrigin {
  h2Port: number;
  wsPort: number;
  close(): Promise<void>;
}

const APP = '<!doctype html><title>app</title><p>app';

export async function startAppOrigin(cert: Buffer, key: Buffer): Promise<AppOrigin> {
  const h2 = http2.createSecureServer({ cert, key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    res.setHeader('cache-control', 'no-store');
    if (url.pathname === '/app') {
      res.setHeader('content-type', 'text/html');
      return void res.end(APP);
    }
    if (url.pathname === '/upload' && req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    if (url.pathname === '/bytes') {
      const size = Number(url.searchParams.get('size'));
      const body = patternBytes(size);
      const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('accept-ranges', 'bytes');
      if (range) {
        const a = Number(range[1]);
        const b = Math.min(Number(range[2]), size - 1);
        res.statusCode = 206;
        res.setHeader('content-range', `bytes ${a}-${b}/${size}`);
        return void res.end(body.subarray(a, b + 1));
      }
      return void res.end(body);
    }
    res.statusCode = 404;
    res.end();
  });
  const h1 = https.createServer({ cert, key }, (req, res) => {
    res.setHeader('cache-control', 'no-store');
    res.setHeader('content-type', 'text/html');
    res.end(APP);
  });
  const wss = new WebSocketServer({ server: h1, path: '/echo', perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as net.AddressInfo).port)));
  const h2Port = await listen(h2);
  const wsPort = await listen(h1);
  return {
    h2Port,
    wsPort,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      h1.closeAllConnections();
      await Promise.all([new Promise((r) => h2.close(r)), new Promise((r) => h1.close(r))]);
    },
  };
}

/** Page-side measurements, evaluated in a page of the right origin; each returns milliseconds. */
export const measure = {
  /** A 20 MiB `fetch` POST to /upload (an HTTP/2 origin). */
  upload: (bytes: number) => `(async () => {
    const body = new Uint8Array(${bytes});
    const t0 = performance.now();
    const n = Number(await (await fetch('/upload', { method: 'POST', body, cache: 'no-store' })).text());
    if (n !== ${bytes}) throw new Error('upload arrived short: ' + n);
    return performance.now() - t0;
  })()`,
  /** `count` sequential echoes of a `size`-byte message over one WebSocket. */
  echo: (count: number, size: number) => `(async () => {
    const ws = new WebSocket('wss://' + location.host + '/echo');
    ws.binaryType = 'arraybuffer';
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('websocket failed')); });
    const msg = new Uint8Array(${size});
    const t0 = performance.now();
    for (let i = 0; i < ${count}; i++) {
      const back = new Promise((ok) => (ws.onmessage = (e) => ok(e.data)));
      ws.send(msg);
      if ((await back).byteLength !== ${size}) throw new Error('short echo');
    }
    const ms = performance.now() - t0;
    ws.close();
    return ms;
  })()`,
  /** `parts` parallel Range requests covering a resource of parts × `part` bytes. */
  ranges: (parts: number, part: number) => `(async () => {
    const size = ${parts * part};
    const t0 = performance.now();
    const got = await Promise.all(Array.from({ length: ${parts} }, async (_, i) => {
      const r = await fetch('/bytes?size=' + size + '&t=' + t0, { headers: { range: 'bytes=' + i * ${part} + '-' + ((i + 1) * ${part} - 1) }, cache: 'no-store' });
      if (r.status !== 206) throw new Error('no 206: ' + r.status);
      return (await r.arrayBuffer()).byteLength;
    }));
    if (got.some((n) => n !== ${part})) throw new Error('short range');
    return performance.now() - t0;
  })()`,
};
