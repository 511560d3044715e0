/**
 * The edge's memory bounds held against the real process's RSS: a client that floods control
 * frames while reading 1 KiB per poll, and destinations that flood streams whose client never
 * polls. The bounds are the formulas of docs/DEPLOY.md (server/edge/session-budget.ts), not
 * numbers picked for the test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { encodeDestination } from '../../shared/eagersocks.ts';
import { ControlType, encodeControl, encodeFrame } from '../../shared/remux/frame.ts';
import { clientMemory, sessionBound, sessionFloor } from '../../server/edge/session-budget.ts';
import { concat } from '../support/bytes.ts';
import { rssBytes, startCompanion, type Companion } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { listen, type TestServer } from '../support/servers.ts';

const MiB = 1024 * 1024;
/** What RSS may move by on its own between two readings of an idle Node process (heap growth, GC timing). */
const RSS_NOISE = 40 * MiB;

let cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** One meek POST, from `localAddress` (127.0.0.x stands for another client). */
function post(edge: Companion, id: string, seq: number, body: Uint8Array, maxBody = 65536, localAddress = '127.0.0.1'): Promise<{ status: number; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: edge.port, method: 'POST', path: '/', localAddress, agent: false, headers: { 'content-type': 'application/octet-stream', 'x-session-id': id, 'x-meek-seq': String(seq), 'x-meek-max-body': String(maxBody) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: new Uint8Array(Buffer.concat(parts)) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** What the edge's sessions hold by its own count (`passage_edge_memory_bytes`). */
async function heldBytes(edge: Companion): Promise<number> {
  const text = await (await fetch(`${edge.adminUrl}/metrics`)).text();
  const m = /^passage_edge_memory_bytes (\d+)$/m.exec(text);
  if (!m) throw new Error('the edge exports no passage_edge_memory_bytes');
  return Number(m[1]);
}

/** A destination that writes as fast as it may to every connection; counts the ones the edge stopped reading. */
async function floodServer(): Promise<TestServer & { blocked: () => number; accepted: () => number }> {
  let blocked = 0;
  let accepted = 0;
  const chunk = new Uint8Array(64 * 1024);
  const server = await listen((s) => {
    accepted++;
    let isBlocked = false;
    const pump = () => {
      while (s.write(chunk));
      if (!isBlocked) blocked++;
      isBlocked = true;
    };
    s.on('drain', () => {
      if (isBlocked) blocked--;
      isBlocked = false;
      setImmediate(pump);
    });
    s.on('close', () => {
      if (isBlocked) blocked--;
      isBlocked = false;
    });
    pump();
  });
  return Object.assign(server, { blocked: () => blocked, accepted: () => accepted });
}

describe('edge memory bounds (real process, RSS)', () => {
  it('a control-frame flood read 1 KiB per poll ends its session with GOAWAY; RSS within one session\'s bound', async () => {
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--log-level', 'warn']);
    cleanup.push(() => edge.stop());
    // An open with a destination that does not parse, then a RESET for it: over and over.
    const bad = encodeFrame(1, Uint8Array.of(0x09, 1, 2, 3));
    const pairs: Uint8Array[] = [];
    for (let id = 1; pairs.length < 2 * 14_000; id = id >= 65_533 ? 1 : id + 2) {
      pairs.push(encodeFrame(id, Uint8Array.of(0x09, 1, 2, 3)), encodeControl({ type: ControlType.RESET, stream: id, code: 5 }));
    }
    const body = concat(pairs).subarray(0, 256 * 1024 - (256 * 1024) % (bad.length + 8));
    const before = await rssBytes(edge.child.pid!);
    let ended = 0;
    for (let session = 0; session < 6; session++) {
      const id = `control-flood-${session}-${'x'.repeat(8)}`;
      for (let seq = 1; seq <= 30; seq++) {
        const r = await post(edge, id, seq, body, 1024);
        if (r.status === 410) {
          ended++;
          break;
        }
        expect(r.status).toBe(200);
      }
    }
    const growth = (await rssBytes(edge.child.pid!)) - before;
    expect(ended).toBe(6); // every flooding session was ended, none lived through its 30 POSTs
    // One flooding session lives at a time, so one session's bound holds (before the budget: ~8.5 MB per POST, ~1.5 GB here).
    expect(growth).toBeLessThan(sessionBound(32 * MiB, 262144) + RSS_NOISE);
  });

  it('meek v2: flooded streams whose client holds a streaming answer open and never reads it: each session within its bound', async () => {
    const sessionBuffer = 8 * MiB;
    const sessions = 8;
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--session-buffer', String(sessionBuffer), '--log-level', 'warn']);
    const flood = await floodServer();
    const held: http.ClientRequest[] = [];
    cleanup.push(() => edge.stop(), () => flood.close(), () => held.forEach((r) => r.destroy()));
    const dest = encodeDestination({ type: 'ipv4', host: '127.0.0.1', port: flood.port });
    const opens = concat(Array.from({ length: 256 }, (_, i) => encodeFrame(2 * i + 1, dest)));
    const v2 = (id: string, extra: Record<string, string>) => ({ 'content-type': 'application/octet-stream', 'x-session-id': id, 'x-meek-version': '2', ...extra });
    const before = await rssBytes(edge.child.pid!);
    for (let s = 0; s < sessions; s++) {
      const id = `v2-stream-flood-${s}-abcdefgh`;
      const localAddress = `127.0.0.${40 + s}`;
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: edge.port, method: 'POST', path: '/', localAddress, agent: false, headers: v2(id, { 'x-meek-seq': '1' }) }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(opens);
      });
      expect(status).toBe(200);
      // The down request: its answer streams, and this client never reads a byte of it.
      const req = http.request({ host: '127.0.0.1', port: edge.port, method: 'POST', path: '/', localAddress, agent: false, headers: v2(id, { 'x-meek-down': 'stream' }) }, (res) => res.pause());
      req.on('error', () => undefined);
      req.end();
      held.push(req);
    }
    await waitFor('every admitted destination to be held off by the edge', () => flood.accepted() === sessions * 16 && flood.blocked() === sessions * 16, 30_000);
    const growth = (await rssBytes(edge.child.pid!)) - before;
    expect(growth).toBeLessThan(sessions * sessionBound(sessionBuffer, 262144) + RSS_NOISE);
  });

  it('streams flooded by their destinations while the client never polls: each session within its bound', async () => {
    const sessionBuffer = 8 * MiB;
    const sessions = 8;
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--session-buffer', String(sessionBuffer), '--log-level', 'warn']);
    const flood = await floodServer();
    cleanup.push(() => edge.stop(), () => flood.close());
    const dest = encodeDestination({ type: 'ipv4', host: '127.0.0.1', port: flood.port });
    const opens = concat(Array.from({ length: 256 }, (_, i) => encodeFrame(2 * i + 1, dest)));
    const before = await rssBytes(edge.child.pid!);
    for (let s = 0; s < sessions; s++) expect((await post(edge, `stream-flood-${s}-abcdefgh`, 1, opens, 65536, `127.0.0.${20 + s}`)).status).toBe(200);
    // 256 opens a session, of which the receive budget admits S/2 ÷ 256 KiB = 16: the rest are RESET 0x06.
    await waitFor('every admitted destination to be held off by the edge', () => flood.accepted() === sessions * 16 && flood.blocked() === sessions * 16, 30_000);
    const growth = (await rssBytes(edge.child.pid!)) - before;
    const bound = sessions * sessionBound(sessionBuffer, 262144);
    // Before the budget: ~84 MB a session (each of 256 streams queued its 256 KiB window).
    expect(growth).toBeLessThan(bound + RSS_NOISE);
  });

  it('--max-memory: past it new sessions get 503 and RSS stays within it', async () => {
    const maxMemory = 24 * MiB;
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--session-buffer', String(8 * MiB), '--max-memory', String(maxMemory), '--log-level', 'warn']);
    const flood = await floodServer();
    cleanup.push(() => edge.stop(), () => flood.close());
    const dest = encodeDestination({ type: 'ipv4', host: '127.0.0.1', port: flood.port });
    const opens = concat(Array.from({ length: 16 }, (_, i) => encodeFrame(2 * i + 1, dest)));
    const before = await rssBytes(edge.child.pid!);
    const statuses: number[] = [];
    for (let s = 0; s < 12; s++) {
      statuses.push((await post(edge, `memory-${s}-abcdefghijk`, 1, opens, 65536, `127.0.0.${40 + s}`)).status);
      await waitFor('the destinations to be held off', () => flood.blocked() === flood.accepted() && flood.accepted() > 0, 30_000);
    }
    expect(statuses).toContain(503);
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    const growth = (await rssBytes(edge.child.pid!)) - before;
    expect(growth).toBeLessThan(maxMemory + RSS_NOISE);
    const metrics = await (await fetch(`${edge.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/passage_edge_sessions_rejected_total\{reason="memory"\} [1-9]/);
  });

  it("one client's sessions hold at most its share of --max-memory; another client still gets in", async () => {
    const sessionBuffer = 8 * MiB;
    // Share: max(S, M × per-client ÷ max-sessions) = max(8 MiB, 64 MiB × 4 ÷ 100) = 8 MiB — one session's worth.
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--session-buffer', String(sessionBuffer), '--max-memory', String(64 * MiB), '--max-sessions', '100', '--max-sessions-per-client', '4', '--log-level', 'warn']);
    const flood = await floodServer();
    cleanup.push(() => edge.stop(), () => flood.close());
    const dest = encodeDestination({ type: 'ipv4', host: '127.0.0.1', port: flood.port });
    const opens = concat(Array.from({ length: 16 }, (_, i) => encodeFrame(2 * i + 1, dest)));
    expect((await post(edge, 'share-first-abcdefghij', 1, opens, 65536, '127.0.0.60')).status).toBe(200);
    // Its first session fills 16 windows and its send and downstream queues until a second
    // session's floor no longer fits in the share (a destination blocked for a moment is no sign:
    // the edge may still be reading, so wait on the edge's own count).
    const share = clientMemory(64 * MiB, 100, 4, sessionBuffer);
    const floor = sessionFloor(sessionBuffer, 262144);
    await waitFor('the first session to hold its share less a session floor', async () => flood.accepted() === 16 && (await heldBytes(edge)) + floor > share, 30_000);
    const second = await post(edge, 'share-second-abcdefghi', 1, opens, 65536, '127.0.0.60');
    expect(second.status).toBe(503);
    expect(new TextDecoder().decode(second.body)).toBe('memory\n');
    expect((await post(edge, 'share-other-abcdefghij', 1, new Uint8Array(0), 65536, '127.0.0.61')).status).toBe(200);
  });
});
