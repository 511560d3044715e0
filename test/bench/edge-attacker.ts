/**
 * The attacks of the load benchmark, run as their own process: `node edge-attacker.js EDGE_PORT`,
 * until SIGTERM. It runs its own flooding destination too, so that none of this load lands on
 * the measuring process. Each loop sends to the loopback edge only, from 127.0.3.x:
 * a control-frame flood read 1 KiB per poll, one-shot sessions filling the table, sessions of
 * 256 streams to a flooding destination that are never polled, and probes without the token.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { encodeDestination } from '../../shared/eagersocks.ts';
import { ControlType, encodeControl, encodeFrame } from '../../shared/remux/frame.ts';
import { concat } from '../support/bytes.ts';
import { listen } from '../support/servers.ts';

const edgePort = Number(process.argv[2]);
const flood = await listen((s) => {
  const block = Buffer.alloc(64 * 1024);
  const pump = () => {
    while (s.write(block));
    s.once('drain', pump);
  };
  pump();
});
const floodPort = flood.port;
let running = true;
process.once('SIGTERM', () => (running = false));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const post = (id: string, seq: number, body: Uint8Array, localAddress: string) =>
  new Promise<number>((resolve) => {
    const r = http.request({ host: '127.0.0.1', port: edgePort, method: 'POST', path: '/', localAddress, agent: false, headers: { 'x-session-id': id, 'x-meek-seq': String(seq), 'x-meek-max-body': '1024' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', () => resolve(0));
    r.end(body);
  });

const loops: Array<Promise<void>> = [];
const loop = (f: () => Promise<unknown>) =>
  loops.push(
    (async () => {
      while (running) await f();
    })(),
  );

// A control-frame flood: opens that do not parse and their RESETs, 240 KiB a POST, read 1 KiB a poll.
const pairs: Uint8Array[] = [];
for (let id = 1; pairs.length < 2 * 14_000; id += 2) pairs.push(encodeFrame(id, Uint8Array.of(0x09, 1, 2, 3)), encodeControl({ type: ControlType.RESET, stream: id, code: 5 }));
const floodBody = concat(pairs).subarray(0, 240 * 1024);
for (let k = 0; k < 2; k++) {
  loop(async () => {
    const id = randomBytes(12).toString('base64url');
    for (let seq = 1; seq < 50 && running && (await post(id, seq, floodBody, '127.0.3.1')) === 200; seq++);
  });
}
// The session table filled with one-shot sessions from one address.
for (let k = 0; k < 4; k++) loop(() => post(randomBytes(12).toString('base64url'), 1, new Uint8Array(0), '127.0.3.2'));
// Destinations flooding 256 streams of a session whose client never polls, a new one every 500 ms.
const opens = concat(Array.from({ length: 256 }, (_, i) => encodeFrame(2 * i + 1, encodeDestination({ type: 'ipv4', host: '127.0.0.1', port: floodPort }))));
loop(async () => {
  await post(randomBytes(12).toString('base64url'), 1, opens, '127.0.3.3');
  await sleep(500);
});
// Probes without the token.
for (let k = 0; k < 2; k++) {
  loop(
    () =>
      new Promise<void>((resolve) => {
        http.get({ host: '127.0.0.1', port: edgePort, path: '/', localAddress: '127.0.3.4', agent: false }, (res) => (res.resume(), res.on('end', resolve))).on('error', () => resolve());
      }),
  );
}
await Promise.all(loops);
await flood.close();
