/**
 * A carried session (the WebTransport link, a WebRTC data channel) over a carrier like
 * node-datachannel's: its backlog grows a moment after a send (the native side counts it) and
 * falls without an event. A real TCP source sends through the session's exit mux to a client mux;
 * every byte must arrive — the session may not wait forever for a drain nobody announces.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { carrySession, type Carrier } from '../../server/exit/carried-session.ts';
import { createDialer } from '../../server/exit/dialer.ts';
import { sessionBudget } from '../../server/edge/session-budget.ts';
import { Mux } from '../../shared/remux/mux.ts';

const noop = () => undefined;
const LIMIT = 64 * 1024;

/** A carrier whose backlog is counted on the next tick after a send and drains silently as the test delivers. */
function silentCarrier(deliver: (bytes: Uint8Array) => void, drainCheckMs: number | undefined) {
  const queue: Uint8Array[] = [];
  let counted = 0;
  const carrier: Carrier & { pump(): void } = {
    writable: true,
    send(chunks) {
      for (const c of chunks) {
        const copy = c.slice();
        setImmediate(() => {
          queue.push(copy);
          counted += copy.length;
        });
      }
    },
    get backlog() {
      return counted;
    },
    close: noop,
    ...(drainCheckMs === undefined ? {} : { drainCheckMs }),
    /** Delivers what is queued, lowering the backlog, with no event. */
    pump() {
      for (const c of queue.splice(0)) {
        counted -= c.length;
        deliver(c);
      }
    },
  };
  return carrier;
}

async function download(drainCheckMs: number | undefined, size: number): Promise<{ got: number; data: Buffer; received: Buffer }> {
  const data = randomBytes(size);
  // The stalled case ends the session mid-transfer: the source then sees its peer go (EPIPE).
  const source = net.createServer((s) => s.on('error', noop).end(data));
  await new Promise<void>((r) => source.listen(0, '127.0.0.1', () => r()));
  const port = (source.address() as net.AddressInfo).port;
  let client!: Mux;
  const carrier = silentCarrier((b) => client.receive(b), drainCheckMs);
  const session = carrySession(carrier, {
    maxStreams: 4,
    budget: { ...sessionBudget(32 << 20, 262144), admitStream: () => true, underPressure: () => false, track: () => noop },
    downstreamLimit: LIMIT,
    dial: createDialer({ allowPrivate: true, overrides: new Map(), timeoutMs: 1000 }),
    events: { onBytes: noop, onStreamOpen: noop, onStreamClose: noop, onDialError: noop, onReset: noop, onProtocolError: noop },
  });
  client = new Mux({ role: 'opener', sink: { write: (chunks) => (chunks.forEach((c) => session.receive(c.slice())), true) } });
  const parts: Buffer[] = [];
  const stream = client.open({ type: 'ipv4', host: '127.0.0.1', port });
  const ended = new Promise<void>((resolve) => stream.attach({ data: (p) => (parts.push(Buffer.from(p)), stream.consume(p.length)), end: () => resolve() }));
  stream.end();
  // The far side takes what the carrier holds every few ms, and never says so.
  const pump = setInterval(() => carrier.pump(), 2);
  await Promise.race([ended, new Promise((r) => setTimeout(r, 1500))]);
  clearInterval(pump);
  session.end();
  source.close();
  const received = Buffer.concat(parts);
  return { got: received.length, data, received };
}

describe('carried session over a carrier that drains silently', () => {
  it('with drainCheckMs it looks at the backlog while paused: 4 MiB arrive byte-exact through a 64 KiB downstream limit', async () => {
    const { data, received } = await download(5, 4 * 1024 * 1024);
    expect(received.equals(data)).toBe(true);
  });

  it('without it, the same carrier stalls once paused (what drainCheckMs is for)', async () => {
    const { got } = await download(undefined, 4 * 1024 * 1024);
    expect(got).toBeLessThan(4 * 1024 * 1024);
  });
});
