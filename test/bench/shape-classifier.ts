/**
 * How well a censor tells tunnelled TLS from plain HTTP by the shape of the outer meek messages
 * (issue 15, after Xue et al., USENIX Security 2024). One connection at a time through a real
 * edge: `n` whose inner bytes are a TLS connection (handshake, then a GET of a random size) and
 * `n` that are plain HTTP/1.1 GETs of sizes drawn from the same distribution. Each connection
 * gets its own meek v2 session, and every outer message of it is recorded where a censor on the
 * path would see it — request and response sizes (headers included), directions and times, and
 * each chunk of a streaming response. A random forest (ml-random-forest) learns from the first
 * messages of each; 5-fold cross-validation gives the AUC and the share of tunnelled TLS detected
 * at 1 % false positives. Run with shaping off, with padding, and with padding and the cover round
 * trip (padding.ts), and what each costs in bytes and in time to the answer's first byte.
 */
import { Duplex } from 'node:stream';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { RandomForestClassifier } from 'ml-random-forest';
import { startCompanion } from '../support/processes.ts';
import { nodeRoundTrip } from '../support/node-meek.ts';
import { selfSigned } from '../support/reverse-proxies.ts';
import { createMeekMux } from '../../shared/meek/meek-mux.ts';
import type { MeekRequest, MeekResponse } from '../../shared/meek/round-trip.ts';
import { meekRequestHeaders } from '../../shared/meek/round-trip.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { seeded } from '../support/fake-clock.ts';

/** Outer messages per connection the classifier sees (size with sign for direction, and time). */
const MESSAGES = 16;

interface Message {
  /** + up, − down: bytes on the wire including HTTP headers. */
  size: number;
  at: number;
}

/** A Node Duplex over a mux stream, so tls.connect and plain HTTP can run on it. */
function duplexOf(stream: MuxStream): Duplex {
  const d = new Duplex({
    write(chunk: Buffer, _enc, done) {
      if (stream.write(new Uint8Array(chunk))) done();
      else stream.attach({ drain: () => done() });
    },
    final(done) {
      stream.end();
      done();
    },
    read() {},
  });
  stream.attach({
    data: (p) => {
      d.push(Buffer.from(p));
      stream.consume(p.length);
    },
    end: () => d.push(null),
    reset: (code) => d.destroy(new Error(`reset ${code}`)),
  });
  return d;
}

/** Approximate bytes of an HTTP/1.1 message head with these headers (what TLS then wraps). */
function headBytes(headers: Record<string, string>, firstLine: number): number {
  let n = firstLine + 2;
  for (const [k, v] of Object.entries(headers)) n += k.length + v.length + 4;
  return n + 2;
}

/** A round trip that records every outer message. */
function recording(inner: (req: MeekRequest) => Promise<MeekResponse>, log: Message[], t0: () => number) {
  return async (req: MeekRequest): Promise<MeekResponse> => {
    log.push({ size: headBytes(meekRequestHeaders(req), 30) + req.body.length, at: t0() });
    const res = await inner(req);
    const head = (res.header ? 200 : 150) + (res.header?.('x-meek-padding')?.length ?? 0);
    if (!res.stream) {
      log.push({ size: -(head + res.body.length), at: t0() });
      return res;
    }
    log.push({ size: -head, at: t0() });
    const source = res.stream;
    return {
      ...res,
      stream: (async function* () {
        for await (const chunk of source) {
          log.push({ size: -chunk.length, at: t0() });
          yield chunk;
        }
      })(),
    };
  };
}

/** How a run shapes: meek v2 padding (requests, answers, first frames), and the cover round trip on top. */
export interface Shaping {
  name: 'off' | 'padding' | 'padding + cover';
  padding: boolean;
  cover: boolean;
}
export const SHAPINGS: Shaping[] = [
  { name: 'off', padding: false, cover: false },
  { name: 'padding', padding: true, cover: false },
  { name: 'padding + cover', padding: true, cover: true },
];

async function oneConnection(edgeUrl: string, target: { port: number; tls: boolean }, size: number, shaping: Shaping): Promise<{ messages: Message[]; wire: number; firstByteMs: number }> {
  const log: Message[] = [];
  const start = performance.now();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const c = createMeekMux({
    roundTrip: recording(nodeRoundTrip({ url: edgeUrl, agent }), log, () => performance.now() - start),
    version: 2,
    padding: shaping.padding,
    cover: shaping.cover,
  });
  try {
    const stream = c.mux.open({ type: 'ipv4', host: '127.0.0.1', port: target.port });
    let socket: Duplex = duplexOf(stream);
    if (target.tls) socket = tls.connect({ socket, servername: 'localhost', rejectUnauthorized: false });
    let firstByteMs = -1;
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      socket.on('data', (d: Buffer) => {
        // The first bytes of the answer as the application sees them (TLS: after the handshake).
        if (got === 0) firstByteMs = performance.now() - start;
        got += d.length;
      });
      socket.on('end', () => (got > size ? resolve() : reject(new Error(`short: ${got}`))));
      socket.on('error', reject);
      socket.write(`GET /bytes?size=${size} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    return { messages: log, wire: log.reduce((a, m) => a + Math.abs(m.size), 0), firstByteMs };
  } finally {
    c.session.close();
    agent.destroy();
  }
}

/**
 * Sizes and times as a censor on the path has them: times from the session's first outer
 * message, which is all it sees of the start (not when the client began to connect inside).
 */
function features(messages: Message[]): number[] {
  const out: number[] = [];
  const t0 = messages[0]?.at ?? 0;
  for (let i = 0; i < MESSAGES; i++) {
    const m = messages[i];
    out.push(m ? m.size : 0, m ? m.at - t0 : -1);
  }
  out.push(messages.length);
  return out;
}

/** Area under the ROC curve from scores of positives and negatives (ties count half). */
export function auc(pos: number[], neg: number[]): number {
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

/** Share of positives scored above the threshold that lets through at most `fpr` of negatives. */
export function detectionAt(pos: number[], neg: number[], fpr: number): number {
  const sorted = [...neg].sort((a, b) => b - a);
  const allowed = Math.floor(fpr * neg.length);
  const threshold = sorted[allowed] ?? -Infinity; // scores above it are flagged
  return pos.filter((p) => p > threshold).length / pos.length;
}

function crossValidate(x: number[][], y: number[], folds = 5): { auc: number; detect1: number } {
  const random = seeded(11);
  const order = x.map((_, i) => i).sort(() => random() - 0.5);
  const scores = new Array<number>(x.length).fill(0);
  for (let f = 0; f < folds; f++) {
    const test = order.filter((_, k) => k % folds === f);
    const train = order.filter((_, k) => k % folds !== f);
    const rf = new RandomForestClassifier({ nEstimators: 100, maxFeatures: 0.5, replacement: true, seed: 7 + f, useSampleBagging: true });
    rf.train(train.map((i) => x[i]!), train.map((i) => y[i]!));
    const p = rf.predictProbability(test.map((i) => x[i]!), 1);
    test.forEach((i, k) => (scores[i] = p[k]!));
  }
  const pos = scores.filter((_, i) => y[i] === 1);
  const neg = scores.filter((_, i) => y[i] === 0);
  return { auc: auc(pos, neg), detect1: detectionAt(pos, neg, 0.01) };
}

export interface ShapeResult {
  shaping: Shaping['name'];
  auc: number;
  detectAt1: number;
  /** Outer bytes per connection, on average. */
  wirePerConnection: number;
  /** Median time from opening the stream to the answer's first bytes, ms: what the shaping costs in latency. */
  firstByteMs: { tls: number; plain: number };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;

export async function benchShape(n = 300): Promise<ShapeResult[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'passage-shape-'));
  const cert = selfSigned(dir);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size'));
    res.setHeader('content-type', 'application/octet-stream');
    res.end(Buffer.alloc(size, 1));
  };
  const plain = http.createServer(handler);
  const secure = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, handler);
  const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as net.AddressInfo).port)));
  const ports = { plain: await listen(plain), secure: await listen(secure) };
  const random = seeded(5);
  const results: ShapeResult[] = [];
  try {
    for (const shaping of SHAPINGS) {
      // One client opens a session per connection here, far more than a client's share of the table.
      const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--padding', shaping.padding ? 'on' : 'off', '--max-sessions', '100000', '--max-sessions-per-client', '100000', '--log-level', 'warn']);
      try {
        const x: number[][] = [];
        const y: number[] = [];
        let wire = 0;
        const firstByte = { tls: [] as number[], plain: [] as number[] };
        for (let i = 0; i < n; i++) {
          // Sizes log-uniform over 1 KiB … 256 KiB, the same draw for both classes.
          const size = Math.round(1024 * 2 ** (random() * 8));
          for (const isTls of [true, false]) {
            const r = await oneConnection(edge.url + '/', { port: isTls ? ports.secure : ports.plain, tls: isTls }, size, shaping);
            firstByte[isTls ? 'tls' : 'plain'].push(r.firstByteMs);
            x.push(features(r.messages));
            y.push(isTls ? 1 : 0);
            wire += r.wire;
          }
        }
        const cv = crossValidate(x, y);
        results.push({ shaping: shaping.name, auc: cv.auc, detectAt1: cv.detect1, wirePerConnection: wire / (2 * n), firstByteMs: { tls: median(firstByte.tls), plain: median(firstByte.plain) } });
      } finally {
        await edge.stop();
      }
    }
  } finally {
    plain.close();
    secure.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
