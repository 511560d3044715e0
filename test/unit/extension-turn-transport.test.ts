/**
 * The TURN transport's worker side over a real MessageChannel (Node's, with transferred buffers,
 * as between the worker and the offscreen document): a stand-in document joins the port to an
 * acceptor mux playing the edge. The handshake, bytes both ways, the bound on what is handed to
 * the document before it acknowledges, and the keep-alive rules are asserted; timers run on a
 * clock the test moves.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Mux } from '../../shared/remux/mux.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { SEND_LIMIT, TurnTransport } from '../../extension/background/turn-transport.ts';
import type { TurnOffer } from '../../extension/background/offers.ts';
import type { PeerEvent, PeerPort, PeerRequest } from '../../extension/lib/peer-port.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { exchange } from '../support/stream-exchange.ts';

const OFFER: TurnOffer = { iceServers: [{ urls: ['turn:127.0.0.1:3478?transport=udp'], username: '1900000000', credential: 'x' }], expiresAt: 1_900_000_000_000 };
const DEST = { type: 'ipv4', host: '127.0.0.1', port: 7 } as const;

/** The offscreen document's side of one peer, with the edge's mux behind its "data channel". */
class StandInDocument {
  readonly port: MessagePort;
  /** Bytes the worker handed over, before the edge took them. */
  received = 0;
  answers: string[] = [];
  closedByWorker = false;
  /** While false, nothing is acknowledged (a data channel whose buffer never drains). */
  acking = true;
  /** While false, the edge's bytes are dropped (a relay that died). */
  edgeAlive = true;
  private unacked = 0;
  readonly edge: Mux;
  readonly worker: PeerPort;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = port2 as unknown as PeerPort;
    this.edge = new Mux({
      role: 'acceptor',
      sink: {
        write: (chunks) => {
          if (!this.edgeAlive) return true;
          for (const c of chunks) {
            const copy = c.slice();
            this.port.postMessage(copy.buffer, [copy.buffer]);
          }
          return true;
        },
      },
      onStream: (s: MuxStream) =>
        s.attach({
          data: (p) => {
            s.write(p.slice());
            s.consume(p.length);
          },
          end: () => s.end(),
        }),
    });
    port1.on('message', (data: ArrayBuffer | PeerRequest) => {
      if (data instanceof ArrayBuffer) {
        this.received += data.byteLength;
        this.unacked += data.byteLength;
        this.edge.receive(new Uint8Array(data));
        if (this.acking) this.ack();
      } else if (data.t === 'answer') this.answers.push(data.sdp);
      else if (data.t === 'close') this.closedByWorker = true;
    });
  }

  event(e: PeerEvent): void {
    this.port.postMessage(e);
  }

  ack(): void {
    if (this.unacked === 0) return;
    this.event({ t: 'ack', n: this.unacked });
    this.unacked = 0;
  }

  close(): void {
    this.port.close();
  }
}

/** Lets messages cross the channel (they are delivered on the event loop). */
const cross = () => new Promise<void>((r) => setTimeout(r, 5));

function world(o: { open?: boolean } = {}) {
  const clock = new FakeClock();
  const doc = new StandInDocument();
  const signalled: string[] = [];
  const transport = new TurnTransport(
    OFFER,
    {
      peers: { offer: async () => ({ sdp: 'v=0 offer', port: doc.worker }) },
      signal: async (sdp) => {
        signalled.push(sdp);
        // The document reports the channel open once the answer is in.
        if (o.open !== false) setTimeout(() => doc.event({ t: 'open' }), 1);
        return 'v=0 answer';
      },
      clock,
    },
    3000,
  );
  return { clock, doc, transport, signalled, close: () => (transport.close(), doc.close()) };
}

describe('TurnTransport (worker side of WebRTC through TURN)', () => {
  it('signals the document\'s offer through the edge, hands the answer back, and carries 4 streams of 256 KiB each way byte-exact once the channel opens', async () => {
    const w = world();
    await w.transport.ready;
    expect(w.signalled).toEqual(['v=0 offer']);
    expect(w.doc.answers).toEqual(['v=0 answer']);
    expect(w.transport.state).toMatchObject({ name: 'turn', reachable: true, sessions: 1 });
    const data = Array.from({ length: 4 }, () => randomBytes(256 * 1024));
    const back = await Promise.all(data.map((d) => exchange(w.transport.open(DEST), d)));
    back.forEach((b, i) => expect(Buffer.from(b).equals(data[i]!)).toBe(true));
    w.close();
  });

  it('hands the document no more than SEND_LIMIT (plus one flush) until it acknowledges, then the rest, with no byte lost', async () => {
    const w = world();
    await w.transport.ready;
    w.doc.acking = false;
    const data = randomBytes(4 * SEND_LIMIT);
    const echoed = exchange(w.transport.open(DEST), data);
    for (let i = 0; i < 20; i++) await cross();
    // The stream's window lets it write far more than SEND_LIMIT; the transport holds it back.
    expect(w.doc.received).toBeGreaterThan(0);
    expect(w.doc.received).toBeLessThanOrEqual(SEND_LIMIT + 256 * 1024);
    const held = w.doc.received;
    for (let i = 0; i < 5; i++) await cross();
    expect(w.doc.received).toBe(held);
    w.doc.acking = true;
    w.doc.ack();
    expect(Buffer.from(await echoed).equals(data)).toBe(true);
    w.close();
  });

  it('keep-alive: a PING a second; nothing from the edge for 3 s ends the session — the document\'s own acks do not count as hearing from it', async () => {
    const w = world();
    await w.transport.ready;
    const stream = w.transport.open(DEST);
    const resets: number[] = [];
    stream.attach({ reset: (c) => resets.push(c) });
    let ended: string | null = null;
    void w.transport.closed.then((why) => (ended = why));
    // Alive: pings are answered.
    for (let i = 0; i < 4; i++) {
      await w.clock.advance(1000);
      await cross();
    }
    expect(ended).toBeNull();
    expect(w.transport.state.rttMs).not.toBeNull();
    w.doc.edgeAlive = false; // the relay died: the document still acks what it is handed
    for (let i = 0; i < 5 && ended === null; i++) {
      await w.clock.advance(1000);
      await cross();
    }
    expect(ended).toBe('no answer from the edge for 3 s');
    expect(resets).toHaveLength(1);
    await cross();
    expect(w.doc.closedByWorker).toBe(true);
    expect(() => w.transport.open(DEST)).toThrow(/no answer from the edge/);
    w.doc.close();
  });

  it('no data channel within the handshake timeout: ready rejects with why, and the document is told to close the peer', async () => {
    const w = world({ open: false });
    const failed = w.transport.ready.catch((e: Error) => e.message);
    await cross();
    await w.clock.advance(3000);
    expect(await failed).toBe('no data channel within 3 s');
    await cross();
    expect(w.doc.closedByWorker).toBe(true);
    expect(w.transport.state.reachable).toBe(false);
    w.doc.close();
  });

  it('the document reporting the connection failed ends the session with its words', async () => {
    const w = world();
    await w.transport.ready;
    w.doc.event({ t: 'closed', why: 'the connection failed' });
    expect(await w.transport.closed).toBe('the connection failed');
    expect(w.transport.state.sessions).toBe(0);
    w.doc.close();
  });
});
