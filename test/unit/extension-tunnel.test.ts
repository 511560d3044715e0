/**
 * The tunnel's choice of transport and its fallback rules (PROTOCOL.md §4), with stand-in
 * transports and discovery and a clock the test moves: every timing rule is asserted exactly.
 */
import { describe, expect, it } from 'vitest';
import type { Destination } from '../../shared/eagersocks.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { PipeEnd } from '../../shared/remux/pipe.ts';
import type { StreamHandlers } from '../../shared/remux/stream.ts';
import { DEFAULT_SETTINGS, type PassageSettings } from '../../shared/settings.ts';
import type { Discovery } from '../../extension/background/discovery.ts';
import type { TurnOffer, WebTransportOffer } from '../../extension/background/offers.ts';
import type { SessionTransport, Transport, TransportState } from '../../extension/background/transport.ts';
import { DISCOVERY_REFRESH_MS, HANDSHAKE_TIMEOUT_MS, Tunnel } from '../../extension/background/tunnel.ts';
import { FakeClock } from '../support/fake-clock.ts';

const DEST: Destination = { type: 'domain', host: 'blocked.test', port: 443 };
const OFFER: WebTransportOffer = { url: 'https://edge.test:8443/', certificateHashes: ['ab'.repeat(32)] };
const TURN: TurnOffer = { iceServers: [{ urls: ['turn:turn.test:3478?transport=udp'], username: '1900000000', credential: 'c2VjcmV0' }], expiresAt: 1_900_000_000_000 };
/** The edge answered with WebTransport only (its answer before TURN existed). */
const WT_ONLY: Discovery = { webtransport: OFFER, turn: null, unreachable: null };

/** A pipe end that records what reaches it, named for the transport that made it. */
class RecordingEnd implements PipeEnd {
  written: Uint8Array[] = [];
  ended = false;
  resetWith: number | null = null;
  handlers: StreamHandlers = {};
  constructor(readonly via: string) {}
  attach(h: StreamHandlers) {
    this.handlers = { ...this.handlers, ...h };
  }
  write(chunk: Uint8Array) {
    this.written.push(chunk);
    return true;
  }
  end() {
    this.ended = true;
  }
  reset(code: number) {
    this.resetWith = code;
  }
  consume() {}
}

const state = (name: TransportState['name']): TransportState => ({ name, reachable: true, rttMs: name === 'meek' ? 80 : 20, error: null, sessions: 1, detail: null, problem: null });

class StandInMeek implements Transport {
  readonly state = state('meek');
  opened: RecordingEnd[] = [];
  closed = false;
  open() {
    const end = new RecordingEnd('meek');
    this.opened.push(end);
    return end;
  }
  close() {
    this.closed = true;
  }
}

class StandInSession implements SessionTransport {
  readonly state: TransportState;
  readonly ready: Promise<void>;
  readonly closed: Promise<string>;
  succeed!: () => void;
  failHandshake!: (e: Error) => void;
  die!: (why: string) => void;
  opened: RecordingEnd[] = [];
  wasClosed = false;
  constructor(readonly kind: 'webtransport' | 'turn', readonly timeoutMs: number) {
    this.state = state(kind);
    this.ready = new Promise((resolve, reject) => {
      this.succeed = resolve;
      this.failHandshake = reject;
    });
    this.ready.catch(() => undefined);
    this.closed = new Promise((resolve) => (this.die = resolve));
  }
  open() {
    const end = new RecordingEnd(this.kind);
    this.opened.push(end);
    return end;
  }
  close() {
    this.wasClosed = true;
  }
}

function world(settings: Partial<PassageSettings> = {}, discovery: () => Discovery = () => WT_ONLY) {
  const clock = new FakeClock();
  const meeks: StandInMeek[] = [];
  const sessions: StandInSession[] = [];
  const turns: StandInSession[] = [];
  let asked = 0;
  const s = { ...DEFAULT_SETTINGS, webtransportRetrySeconds: 60, ...settings };
  const tunnel = new Tunnel(s, {
    meek: () => {
      const m = new StandInMeek();
      meeks.push(m);
      return m;
    },
    webtransport: (_offer, _s, timeoutMs) => {
      const wt = new StandInSession('webtransport', timeoutMs);
      sessions.push(wt);
      return wt;
    },
    turn: (_offer, _s, timeoutMs) => {
      const t = new StandInSession('turn', timeoutMs);
      turns.push(t);
      return t;
    },
    discover: async () => {
      asked++;
      return discovery();
    },
    clock,
  });
  return { clock, tunnel, meek: () => meeks[0]!, sessions, turns, asked: () => asked };
}

describe('Tunnel: which transport carries a new connection', () => {
  it('meek chosen in the options: meek at once, no discovery, no handshake, no timer', async () => {
    const w = world({ transport: 'meek' });
    await w.clock.settle();
    const end = w.tunnel.open(DEST) as RecordingEnd;
    expect(end.via).toBe('meek');
    expect(w.asked()).toBe(0);
    expect(w.sessions).toHaveLength(0);
    expect(w.clock.pending).toBe(0);
    expect(w.tunnel.status()).toMatchObject({ transport: 'meek', why: 'meek: chosen in the options', rttMs: 80 });
  });

  it('auto: connections wait for the first handshake, then ride WebTransport with their bytes in order', async () => {
    const w = world();
    const early = w.tunnel.open(DEST);
    early.write(Uint8Array.of(1, 2));
    early.end();
    await w.clock.settle();
    expect(w.sessions).toHaveLength(1);
    expect(w.sessions[0]!.timeoutMs).toBe(HANDSHAKE_TIMEOUT_MS);
    expect(w.meek().opened).toHaveLength(0);
    w.sessions[0]!.succeed();
    await w.clock.settle();
    const carried = w.sessions[0]!.opened[0]!;
    expect(carried.written).toEqual([Uint8Array.of(1, 2)]);
    expect(carried.ended).toBe(true);
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('webtransport');
    expect(w.tunnel.status()).toMatchObject({ transport: 'webtransport', why: 'WebTransport: QUIC to edge.test:8443', rttMs: 20 });
    expect(w.tunnel.rttMs).toBe(20);
  });

  it('auto: a failed handshake hands the waiting connections to meek and retries after the configured delay', async () => {
    const w = world({ webtransportRetrySeconds: 30 });
    const waiting = w.tunnel.open(DEST);
    await w.clock.settle();
    w.sessions[0]!.failHandshake(new Error('no handshake within 3 s'));
    await w.clock.settle();
    expect(w.meek().opened).toHaveLength(1);
    waiting.write(Uint8Array.of(9));
    expect(w.meek().opened[0]!.written).toEqual([Uint8Array.of(9)]);
    expect(w.tunnel.status()).toMatchObject({ transport: 'meek', why: 'meek: WebTransport failed: no handshake within 3 s; trying WebTransport again in 30 s' });
    await w.clock.advance(29_999);
    expect(w.sessions).toHaveLength(1);
    await w.clock.advance(1);
    expect(w.sessions).toHaveLength(2);
    expect(w.asked()).toBe(2); // discovery is asked again before each try
    w.sessions[1]!.succeed();
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('webtransport');
  });

  it('auto: a session that dies later falls back to meek for new connections, then comes back', async () => {
    const w = world({ webtransportRetrySeconds: 5 });
    await w.clock.settle();
    w.sessions[0]!.succeed();
    await w.clock.settle();
    w.sessions[0]!.die('no answer from the edge for 3 s');
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('meek');
    expect(w.tunnel.status().why).toBe('meek: WebTransport session ended: no answer from the edge for 3 s; trying WebTransport again in 5 s');
    await w.clock.advance(5000);
    w.sessions[1]!.succeed();
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('webtransport');
  });

  it('auto: the edge saying it has no WebTransport means meek without retries, until the daily check', async () => {
    let offer: WebTransportOffer | null = null;
    const w = world({}, () => ({ webtransport: offer, turn: null, unreachable: null }));
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('meek');
    expect(w.tunnel.status().why).toBe('meek: the edge offers no WebTransport or TURN');
    expect(w.clock.pending).toBe(1); // only the daily refresh
    offer = OFFER;
    await w.clock.advance(DISCOVERY_REFRESH_MS);
    expect(w.sessions).toHaveLength(1);
    w.sessions[0]!.succeed();
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('webtransport');
  });

  it('auto: an edge that cannot be asked is asked again after the retry delay', async () => {
    let reachable = false;
    const w = world({ webtransportRetrySeconds: 10 }, () => (reachable ? WT_ONLY : { webtransport: null, turn: null, unreachable: 'could not ask the edge (offline)' }));
    await w.clock.settle();
    expect(w.tunnel.status().why).toBe('meek: WebTransport or TURN unknown: could not ask the edge (offline); trying WebTransport and TURN again in 10 s');
    reachable = true;
    await w.clock.advance(10_000);
    expect(w.sessions).toHaveLength(1);
  });

  it('auto: WebTransport, then TURN — after WebTransport fails the waiting connections take meek while TURN is tried, and new ones move to TURN once it is up', async () => {
    const w = world({}, () => ({ webtransport: OFFER, turn: TURN, unreachable: null }));
    const waiting = w.tunnel.open(DEST);
    await w.clock.settle();
    expect(w.turns).toHaveLength(0); // TURN only after WebTransport
    w.sessions[0]!.failHandshake(new Error('no handshake within 3 s'));
    await w.clock.settle();
    expect(w.turns).toHaveLength(1);
    expect(w.turns[0]!.timeoutMs).toBe(HANDSHAKE_TIMEOUT_MS);
    waiting.write(Uint8Array.of(5));
    expect(w.meek().opened[0]!.written).toEqual([Uint8Array.of(5)]);
    expect(w.tunnel.status()).toMatchObject({ transport: 'meek', why: 'meek: WebTransport failed: no handshake within 3 s; trying TURN' });
    w.turns[0]!.succeed();
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('turn');
    expect(w.tunnel.status()).toMatchObject({ transport: 'turn', why: 'TURN: WebRTC relayed by the TURN server', fallback: false });
  });

  it('auto: an edge with TURN and no WebTransport: connections wait for the TURN handshake; its death falls back to meek and the whole order is tried again', async () => {
    let offers: Discovery = { webtransport: null, turn: TURN, unreachable: null };
    const w = world({ webtransportRetrySeconds: 7 }, () => offers);
    const early = w.tunnel.open(DEST);
    early.write(Uint8Array.of(3));
    await w.clock.settle();
    expect(w.sessions).toHaveLength(0);
    expect(w.turns).toHaveLength(1);
    w.turns[0]!.succeed();
    await w.clock.settle();
    expect(w.turns[0]!.opened[0]!.written).toEqual([Uint8Array.of(3)]);
    w.turns[0]!.die('no answer from the edge for 3 s');
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('meek');
    expect(w.tunnel.status()).toMatchObject({ transport: 'meek', why: 'meek: TURN session ended: no answer from the edge for 3 s; trying TURN again in 7 s', fallback: true });
    offers = { webtransport: OFFER, turn: TURN, unreachable: null };
    await w.clock.advance(7000);
    expect(w.sessions).toHaveLength(1); // WebTransport first again
    w.sessions[0]!.succeed();
    await w.clock.settle();
    expect(w.turns).toHaveLength(1);
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('webtransport');
  });

  it('TURN only: never WebTransport, never meek; a failed handshake resets the waiting connections 0x01', async () => {
    const w = world({ transport: 'turn' }, () => ({ webtransport: OFFER, turn: TURN, unreachable: null }));
    const waiting = w.tunnel.open(DEST);
    const resets: number[] = [];
    waiting.attach({ reset: (code) => resets.push(code) });
    await w.clock.settle();
    expect(w.sessions).toHaveLength(0);
    w.turns[0]!.failHandshake(new Error('the TURN server gave no relay address'));
    await w.clock.settle();
    expect(resets).toEqual([ResetCode.UNREACHABLE]);
    expect(() => w.tunnel.open(DEST)).toThrow(/TURN failed: the TURN server gave no relay address; trying TURN again in 60 s/);
    expect(w.meek().opened).toHaveLength(0);
    expect(w.tunnel.status()).toMatchObject({ transport: 'none' });
  });

  it('WebTransport only: never meek; waiting connections are reset 0x01 and new ones refused with the reason', async () => {
    const w = world({ transport: 'webtransport' });
    const waiting = w.tunnel.open(DEST);
    const resets: number[] = [];
    waiting.attach({ reset: (code) => resets.push(code) });
    await w.clock.settle();
    w.sessions[0]!.failHandshake(new Error('connection refused'));
    await w.clock.settle();
    expect(resets).toEqual([ResetCode.UNREACHABLE]);
    expect(() => w.tunnel.open(DEST)).toThrow(/WebTransport failed: connection refused/);
    expect(w.meek().opened).toHaveLength(0);
    expect(w.tunnel.status()).toMatchObject({ transport: 'none', reachable: null });
  });

  it('close: waiting connections are cancelled, every timer and transport stopped', async () => {
    const w = world();
    const waiting = w.tunnel.open(DEST);
    const resets: number[] = [];
    waiting.attach({ reset: (code) => resets.push(code) });
    await w.clock.settle();
    w.tunnel.close();
    expect(resets).toEqual([ResetCode.CANCELLED]);
    expect(w.clock.pending).toBe(0);
    expect(w.sessions[0]!.wasClosed).toBe(true);
    expect(w.meek().closed).toBe(true);
    // A handshake that completes after close is closed, not used.
    w.sessions[0]!.succeed();
    await w.clock.settle();
    expect(w.clock.pending).toBe(0);
  });
});
