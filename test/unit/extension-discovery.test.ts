/**
 * Discovery as the extension runs it (global fetch) against a real HTTP server that answers what
 * the test says: WebTransport and TURN offers parsed, kept for when the edge cannot be asked (TURN
 * credentials only while they have life left), and any malformed or hostile answer refused as a
 * whole without throwing out of `discover`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import http from 'node:http';
import type net from 'node:net';
import { discover, type Discovery } from '../../extension/background/discovery.ts';
import type { Schema, Store } from '../../extension/background/store.ts';
import { DEFAULT_SETTINGS, type PassageSettings } from '../../shared/settings.ts';

const HASH = 'ab'.repeat(32);
const NOW = 1_800_000_000_000;
const TURN = { iceServers: [{ urls: ['turn:turn.test:3478?transport=udp'], username: '1800003600', credential: 'Y3JlZA==' }], expiresAt: NOW + 3600_000 };

function memoryStore(): Store & { map: Map<string, unknown> } {
  const map = new Map<string, unknown>();
  return {
    map,
    load: async <K extends keyof Schema>(k: K) => map.get(k) as Schema[K] | undefined,
    save: async (k, v) => void map.set(k, v),
  };
}

describe('discovery', () => {
  let server: http.Server;
  let answer: { status: number; body: string } = { status: 200, body: '{}' };
  let settings: PassageSettings;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    settings = { ...DEFAULT_SETTINGS, edgeUrl: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/` };
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const ask = (body: unknown, store = memoryStore(), status = 200) => {
    answer = { status, body: typeof body === 'string' ? body : JSON.stringify(body) };
    return discover(settings, store, () => NOW);
  };

  it('reads both offers and keeps them', async () => {
    const store = memoryStore();
    const d = await ask({ webtransport: { url: 'https://edge.test:8443/', certificateHashes: [HASH] }, turn: TURN }, store);
    expect(d).toEqual({ webtransport: { url: 'https://edge.test:8443/', certificateHashes: [HASH] }, turn: TURN, unreachable: null });
    expect(store.map.get('offer')).toMatchObject({ edgeUrl: settings.edgeUrl, turn: TURN });
  });

  it('an edge without TURN (or WebTransport) says so: null, not an error', async () => {
    expect(await ask({ webtransport: null })).toEqual({ webtransport: null, turn: null, unreachable: null });
  });

  it('refuses a malformed TURN offer as a whole', async () => {
    const bad = [
      { ...TURN, iceServers: [] },
      { ...TURN, iceServers: Array(5).fill(TURN.iceServers[0]) },
      { ...TURN, iceServers: [{ ...TURN.iceServers[0], urls: ['stun:turn.test:3478'] }] },
      { ...TURN, iceServers: [{ ...TURN.iceServers[0], urls: ['turn:a b'] }] },
      { ...TURN, iceServers: [{ ...TURN.iceServers[0], username: 7 }] },
      { ...TURN, expiresAt: 'soon' },
      { ...TURN, iceServers: 'turn:turn.test' },
      7,
    ];
    for (const turn of bad) {
      const d = await ask({ webtransport: null, turn });
      expect(d.turn, JSON.stringify(turn)).toBeNull();
      expect(d.unreachable).toMatch(/malformed TURN offer/);
    }
  });

  it('when the edge cannot be asked: the kept WebTransport offer, and the kept TURN credentials only while more than 5 minutes are left', async () => {
    const store = memoryStore();
    await ask({ webtransport: { url: 'https://edge.test:8443/', certificateHashes: [HASH] }, turn: TURN }, store);
    const down = await ask('oops', store, 503);
    expect(down.unreachable).toMatch(/the edge answered 503/);
    expect(down.webtransport?.url).toBe('https://edge.test:8443/');
    expect(down.turn).toEqual(TURN);
    store.map.set('offer', { ...(store.map.get('offer') as object), turn: { ...TURN, expiresAt: NOW + 4 * 60_000 } });
    expect((await ask('oops', store, 503)).turn).toBeNull();
  });

  it('hostile answers (any JSON, any text) never throw out of discover, and what it returns is well-formed', async () => {
    const json = fc.jsonValue().map((v) => JSON.stringify(v));
    const shaped = fc.record({ webtransport: fc.anything(), turn: fc.anything() }).map((v) => JSON.stringify(v));
    await fc.assert(
      fc.asyncProperty(fc.oneof(json, shaped, fc.string()), async (body) => {
        const d: Discovery = await ask(body);
        if (d.turn) {
          expect(d.turn.iceServers.length).toBeGreaterThan(0);
          for (const s of d.turn.iceServers) expect(s.urls.every((u) => /^turns?:/.test(u))).toBe(true);
        }
        if (d.webtransport) expect(d.webtransport.url.startsWith('https://')).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});
