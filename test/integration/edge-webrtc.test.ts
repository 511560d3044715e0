/**
 * WebRTC to the edge, signalled through it, with TURN credentials for Debian's coturn: a client
 * (relay candidates only in its offer, as the extension's will be) takes short-lived credentials
 * from discovery, posts its offer, and carries ReMux streams over its data channel to the real
 * edge. Groundwork for the TURN transport: the browser side (an offscreen document) is to come.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { startCompanion, type Companion } from '../support/processes.ts';
import { echoServer, type TestServer } from '../support/servers.ts';
import { startCoturn, type Coturn } from '../support/coturn.ts';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';
import { exchange } from '../support/stream-exchange.ts';
import { Mux } from '../../shared/remux/mux.ts';

const TOKEN = 'webrtc-edge-token-0123456789';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface TurnOffer {
  iceServers: Array<{ urls: string[]; username: string; credential: string }>;
  expiresAt: number;
}

/** A relay-only peer with a ReMux opener on its `remux` data channel, connected to the edge. */
async function connect(edge: Companion, turn: TurnOffer): Promise<{ mux: Mux; pc: RTCPeerConnection }> {
  const pc = new RTCPeerConnection({ iceServers: turn.iceServers, iceTransportPolicy: 'relay' });
  const channel = pc.createDataChannel('remux', { ordered: true });
  channel.binaryType = 'arraybuffer';
  const mux = new Mux({
    role: 'opener',
    sink: {
      write(chunks) {
        if (channel.readyState !== 'open') return true;
        for (const c of chunks) channel.send(c as Uint8Array<ArrayBuffer>);
        return channel.bufferedAmount < 1 << 20;
      },
    },
  });
  channel.bufferedAmountLowThreshold = 1 << 19;
  channel.onbufferedamountlow = () => mux.resume();
  channel.onmessage = (m) => mux.receive(new Uint8Array(m.data as ArrayBuffer));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  const offer = pc.localDescription!.sdp;
  expect(offer).toMatch(/typ relay/);
  expect(offer).not.toMatch(/typ host/);
  const res = await fetch(`${edge.url}/rtc`, { method: 'POST', headers: { 'x-meek-auth': TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ sdp: offer }) });
  expect(res.status).toBe(200);
  const answer = (await res.json()) as { type: 'answer'; sdp: string };
  await pc.setRemoteDescription(answer);
  await new Promise<void>((resolve, reject) => {
    channel.onopen = () => resolve();
    setTimeout(() => reject(new Error(`data channel did not open: ${pc.connectionState}`)), 15_000);
  });
  return { mux, pc };
}

describe('edge: WebRTC through TURN (coturn)', () => {
  let coturn: Coturn;
  let echo: TestServer;
  let edge: Companion;
  /** A counting UDP relay in front of coturn: what clients are told to use, so every relayed byte passes it. */
  let front: UdpRelay;
  beforeAll(async () => {
    coturn = await startCoturn();
    front = await startUdpRelay({ targetPort: coturn.port });
    echo = await echoServer();
    edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--auth-token', TOKEN, '--turn', `turn:127.0.0.1:${front.port}?transport=udp`, '--log-level', 'warn'], { PASSAGE_TURN_SECRET: coturn.secret });
  });
  afterAll(async () => {
    await edge?.stop();
    await front?.close();
    await echo?.close();
    await coturn?.stop();
  });

  const discovery = async (token: string | null) => {
    const res = await fetch(`${edge.url}/config`, { headers: token ? { 'x-meek-auth': token } : {} });
    return { status: res.status, text: await res.text() };
  };

  it('discovery hands out TURN credentials that expire, in coturn\'s use-auth-secret scheme; without the token only the cover answers', async () => {
    const { status, text } = await discovery(TOKEN);
    expect(status).toBe(200);
    const turn = (JSON.parse(text) as { turn: TurnOffer }).turn;
    expect(turn.iceServers).toEqual([{ urls: [`turn:127.0.0.1:${front.port}?transport=udp`], username: expect.stringMatching(/^\d+$/), credential: expect.any(String) }]);
    const { username, credential } = turn.iceServers[0]!;
    expect(Number(username) * 1000).toBe(turn.expiresAt);
    expect(turn.expiresAt - Date.now()).toBeGreaterThan(3500 * 1000);
    expect(credential).toBe(createHmac('sha1', coturn.secret).update(username).digest('base64'));
    const stranger = await discovery(null);
    expect(stranger.text).not.toContain('iceServers');
    expect(stranger.text).toContain('<title>');
  });

  it('a client with coturn credentials from discovery signals through the edge and carries 4 streams of 1 MiB each way byte-exact on its data channel', async () => {
    const turn = (JSON.parse((await discovery(TOKEN)).text) as { turn: TurnOffer }).turn;
    const { mux, pc } = await connect(edge, turn);
    try {
      const data = Array.from({ length: 4 }, () => randomBytes(1024 * 1024));
      const back = await Promise.all(data.map((d) => exchange(mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port }), d)));
      back.forEach((b, i) => expect(sha(b)).toBe(sha(data[i]!)));
      // coturn took the minted credentials (its relay allocation went through the counting relay in front of it).
      expect(coturn.log()).toMatch(/username=<\d+>.*\n.*ALLOCATE processed, success/);
      expect(front.forwarded.toTarget).toBeGreaterThan(0);
      // Not asserted: that the data went through coturn. libdatachannel's client, unlike a browser, still
      // answers connectivity checks on its host sockets under iceTransportPolicy 'relay', so on loopback
      // it pairs directly with the edge (peer-reflexive). The relay path is the browser's to prove.

      const metrics = await (await fetch(`${edge.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/passage_edge_streams_opened_total\{transport="webrtc"\} 4/);
    } finally {
      pc.close();
    }
  });

  it('SIGTERM drains WebRTC sessions too: a quiet stream ends with FIN, the session without streams is closed, the edge exits 0', async () => {
    const drained = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--auth-token', TOKEN, '--turn', `turn:127.0.0.1:${front.port}?transport=udp`, '--drain-timeout', '300', '--log-level', 'warn'], { PASSAGE_TURN_SECRET: coturn.secret });
    const turn = (JSON.parse(await (await fetch(`${drained.url}/config`, { headers: { 'x-meek-auth': TOKEN } })).text()) as { turn: TurnOffer }).turn;
    const { mux, pc } = await connect(drained, turn);
    try {
      const stream = mux.open({ type: 'ipv4', host: '127.0.0.1', port: echo.port });
      let echoed!: () => void;
      const back = new Promise<void>((resolve) => (echoed = resolve));
      const ended = new Promise<void>((resolve, reject) =>
        stream.attach({ data: (p) => (stream.consume(p.length), echoed()), end: () => resolve(), reset: (code) => reject(new Error(`stream reset 0x0${code}`)) }),
      );
      stream.write(new Uint8Array([1, 2, 3]));
      // Echoed back: the stream is open at the edge and its last bytes went to the client; then it
      // is quiet. (A SIGTERM before the open reached the edge would have it refused, not drained.)
      await back;
      const exited = drained.stop('SIGTERM');
      await ended;
      // With --drain-timeout 300, an exit within the test means the drain itself closed the session.
      expect(await exited).toBe(0);
    } finally {
      pc.close();
    }
  });

  it('WebRTC peers count in the client\'s --max-sessions-per-client with its meek sessions: past its share, offers and new meek sessions get 503; other clients do not notice', async () => {
    const shared = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--allow-private', '--auth-token', TOKEN, '--turn', `turn:127.0.0.1:${front.port}?transport=udp`, '--max-sessions-per-client', '2', '--log-level', 'warn'], { PASSAGE_TURN_SECRET: coturn.secret });
    const pcs: RTCPeerConnection[] = [];
    try {
      const turn = (JSON.parse(await (await fetch(`${shared.url}/config`, { headers: { 'x-meek-auth': TOKEN } })).text()) as { turn: TurnOffer }).turn;
      const offer = async () => {
        const pc = new RTCPeerConnection({ iceServers: turn.iceServers, iceTransportPolicy: 'relay' });
        pcs.push(pc);
        pc.createDataChannel('remux');
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise<void>((resolve) => {
          if (pc.iceGatheringState === 'complete') return resolve();
          pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
        });
        return pc.localDescription!.sdp;
      };
      const post = async (sdp: string, localAddress = '127.0.0.1') => {
        const body = JSON.stringify({ sdp });
        return new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: shared.port, path: '/rtc', method: 'POST', localAddress, headers: { 'x-meek-auth': TOKEN, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end(body);
        });
      };
      // Two offers fill 127.0.0.1's share (the peers stay counted while they try to connect).
      expect([await post(await offer()), await post(await offer()), await post(await offer())]).toEqual([200, 200, 503]);
      // A meek session from the same address is past the share too …
      const meekFirst = (localAddress: string) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: shared.port, path: '/', method: 'POST', localAddress, headers: { 'x-session-id': randomBytes(12).toString('base64url'), 'x-meek-seq': '1', 'x-meek-auth': TOKEN, 'content-length': 0 } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      expect(await meekFirst('127.0.0.1')).toBe(503);
      // … while another client's offer and meek session are served.
      expect(await post(await offer(), '127.0.0.2')).toBe(200);
      expect(await meekFirst('127.0.0.3')).toBe(200);
    } finally {
      for (const pc of pcs) pc.close();
      await shared.stop();
    }
  });

  it('refuses what is no offer: not JSON, no sdp, garbage sdp, an oversized body — the process stays up', async () => {
    const post = (body: string) => fetch(`${edge.url}/rtc`, { method: 'POST', headers: { 'x-meek-auth': TOKEN }, body });
    expect((await post('not json')).status).toBe(400);
    expect((await post('{}')).status).toBe(400);
    expect((await post(JSON.stringify({ sdp: 'v=0\r\ngarbage' }))).status).toBe(400);
    expect([400, 413]).toContain((await post(JSON.stringify({ sdp: 'v=0' + 'x'.repeat(100_000) }))).status);
    expect((await fetch(`${edge.adminUrl}/healthz`)).status).toBe(200);
    // Without the token the path is the cover's, like every other.
    expect(await (await fetch(`${edge.url}/rtc`, { method: 'POST', body: '{}' })).text()).toContain('<title>');
  });
});
