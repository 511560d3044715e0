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
import type { Discovery, Offer } from '../../extension/background/discovery.ts';
import type { SessionTransport, Transport, TransportState } from '../../extension/background/transport.ts';
import { DISCOVERY_REFRESH_MS, HANDSHAKE_TIMEOUT_MS, Tunnel } from '../../extension/background/tunnel.ts';
import { FakeClock } from '../support/fake-clock.ts';

const DEST: Destination = { type: 'domain', host: 'blocked.test', port: 443 };
const OFFER: Offer = { url: 'https://edge.test:8443/', certificateHashes: ['ab'.repeat(32)] };

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

class StandInWebTransport implements SessionTransport {
  readonly state = state('webtransport');
  readonly ready: Promise<void>;
  readonly closed: Promise<string>;
  succeed!: () => void;
  failHandshake!: (e: Error) => void;
  die!: (why: string) => void;
  opened: RecordingEnd[] = [];
  wasClosed = false;
  constructor(readonly timeoutMs: number) {
    this.ready = new Promise((resolve, reject) => {
      this.succeed = resolve;
      this.failHandshake = reject;
    });
    this.ready.catch(() => undefined);
    this.closed = new Promise((resolve) => (this.die = resolve));
  }
  open() {
    const end = new RecordingEnd('webtransport');
    this.opened.push(end);
    return end;
  }
  close() {
    this.wasClosed = true;
  }
}

function world(settings: Partial<PassageSettings> = {}, discovery: () => Discovery = () => ({ offer: OFFER, why: '', edgeSaidNo: false })) {
  const clock = new FakeClock();
  const meeks: StandInMeek[] = [];
  const sessions: StandInWebTransport[] = [];
  let asked = 0;
  const s = { ...DEFAULT_SETTINGS, webtransportRetrySeconds: 60, ...settings };
  const tunnel = new Tunnel(s, {
    meek: () => {
      const m = new StandInMeek();
      meeks.push(m);
      return m;
    },
    webtransport: (_offer, _s, timeoutMs) => {
      const wt = new StandInWebTransport(timeoutMs);
      sessions.push(wt);
      return wt;
    },
    discover: async () => {
      asked++;
      return discovery();
    },
    clock,
  });
  return { clock, tunnel, meek: () => meeks[0]!, sessions, asked: () => asked };
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
    let offer: Offer | null = null;
    const w = world({}, () => (offer ? { offer, why: '', edgeSaidNo: false } : { offer: null, why: 'the edge offers no WebTransport', edgeSaidNo: true }));
    await w.clock.settle();
    expect((w.tunnel.open(DEST) as RecordingEnd).via).toBe('meek');
    expect(w.tunnel.status().why).toBe('meek: the edge offers no WebTransport');
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
    const w = world({ webtransportRetrySeconds: 10 }, () => (reachable ? { offer: OFFER, why: '', edgeSaidNo: false } : { offer: null, why: 'could not ask the edge (offline)', edgeSaidNo: false }));
    await w.clock.settle();
    expect(w.tunnel.status().why).toBe('meek: WebTransport unknown: could not ask the edge (offline); trying WebTransport again in 10 s');
    reachable = true;
    await w.clock.advance(10_000);
    expect(w.sessions).toHaveLength(1);
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
