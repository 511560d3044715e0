import { describe, it, expect } from 'vitest';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.ts';

const HOST = '127.0.0.1';

function bind(socket: dgram.Socket, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, HOST, () => {
      socket.off('error', reject);
      resolve(socket.address().port);
    });
  });
}

const closeSocket = (socket: dgram.Socket) => new Promise<void>((resolve) => socket.close(() => resolve()));

/** Echoes every datagram to its sender, remembering what arrived and from where. */
async function echoServer() {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  const senders = new Set<string>();
  socket.on('message', (msg, from) => {
    received.push(msg);
    senders.add(`${from.address}:${from.port}`);
    socket.send(msg, from.port, from.address);
  });
  const port = await bind(socket);
  let closing: Promise<void> | undefined;
  return { port, received, senders, close: () => (closing ??= closeSocket(socket)) };
}

/** A client socket with an inbox; `connectTo` makes it a connected socket, which sees ICMP errors. */
async function client(connectTo?: number) {
  const socket = dgram.createSocket('udp4');
  const inbox: Buffer[] = [];
  const waiters: Array<(msg: Buffer) => void> = [];
  const errors: NodeJS.ErrnoException[] = [];
  let onError: (() => void) | undefined;
  socket.on('message', (msg) => {
    const waiter = waiters.shift();
    if (waiter) waiter(msg);
    else inbox.push(msg);
  });
  socket.on('error', (err) => {
    errors.push(err);
    onError?.();
  });
  if (connectTo === undefined) await bind(socket);
  else await new Promise<void>((resolve) => socket.connect(connectTo, HOST, resolve));
  const send = (msg: Uint8Array, port?: number) =>
    new Promise<void>((resolve) => {
      const done = () => resolve();
      if (port === undefined) socket.send(msg, done);
      else socket.send(msg, port, HOST, done);
    });
  /** The next datagram; rejects after a generous timeout so a lost datagram fails fast instead of hanging. */
  const next = (timeoutMs = 5_000) =>
    new Promise<Buffer>((resolve, reject) => {
      const queued = inbox.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error('no datagram arrived')), timeoutMs);
      waiters.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  const nextError = (timeoutMs = 5_000) =>
    new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      if (errors.length > 0) return resolve(errors.shift()!);
      const timer = setTimeout(() => reject(new Error('no socket error arrived')), timeoutMs);
      onError = () => {
        clearTimeout(timer);
        onError = undefined;
        resolve(errors.shift()!);
      };
    });
  return { socket, send, next, nextError, close: () => closeSocket(socket) };
}

type Client = Awaited<ReturnType<typeof client>>;

/** An echo server behind a relay, plus clients; close() tears it all down. */
async function rig(delayMs = 0) {
  const echo = await echoServer();
  const relay = await startUdpRelay({ targetPort: echo.port, delayMs });
  const clients: Client[] = [];
  const newClient = async (connected = false) => {
    const c = await client(connected ? relay.port : undefined);
    clients.push(c);
    return c;
  };
  const close = async () => {
    await Promise.all(clients.map((c) => c.close()));
    await relay.close();
    await echo.close();
  };
  return { echo, relay, newClient, close };
}

async function roundTrip(c: Client, relay: UdpRelay, msg: Uint8Array): Promise<Buffer> {
  await c.send(msg, relay.port);
  return c.next();
}

describe('startUdpRelay', () => {
  it('round-trips datagrams byte-exact and in order', async () => {
    const { relay, echo, newClient, close } = await rig();
    try {
      const c = await newClient();
      const sent = Array.from({ length: 200 }, (_, i) => randomBytes(i % 50 === 49 ? 1400 : 1 + ((i * 7919) % 1400)));
      // A window of outstanding datagrams, as QUIC would keep: a burst of all 200 could overflow
      // a default-sized socket buffer on the way, and UDP may drop.
      const window = 16;
      for (const msg of sent.slice(0, window)) await c.send(msg, relay.port);
      const got: Buffer[] = [];
      for (let i = 0; i < sent.length; i++) {
        got.push(await c.next());
        const more = sent[i + window];
        if (more) await c.send(more, relay.port);
      }
      // Compared as hex: deep equality over 200 Buffers byte by byte is needlessly slow.
      const hex = (msgs: Buffer[]) => msgs.map((m) => m.toString('hex'));
      expect(hex(got)).toEqual(hex(sent));
      expect(hex(echo.received)).toEqual(hex(sent));
      expect(Math.max(...sent.map((m) => m.length))).toBe(1400);
      expect(relay.forwarded).toEqual({ toTarget: 200, toClient: 200 });
    } finally {
      await close();
    }
  });

  it('routes each client its own replies through its own upstream socket', async () => {
    const { relay, echo, newClient, close } = await rig();
    try {
      const a = await newClient();
      const b = await newClient();
      await a.send(Buffer.from('a1'), relay.port);
      await b.send(Buffer.from('b1'), relay.port);
      await a.send(Buffer.from('a2'), relay.port);
      await b.send(Buffer.from('b2'), relay.port);
      expect([String(await a.next()), String(await a.next())]).toEqual(['a1', 'a2']);
      expect([String(await b.next()), String(await b.next())]).toEqual(['b1', 'b2']);
      expect(echo.senders.size).toBe(2);
    } finally {
      await close();
    }
  });

  it('adds delayMs in each direction without reordering', async () => {
    const { relay, newClient, close } = await rig(50);
    try {
      const c = await newClient();
      const started = performance.now();
      expect(String(await roundTrip(c, relay, Buffer.from('ping')))).toBe('ping');
      // A lower bound only: the delay is added once each way.
      expect(performance.now() - started).toBeGreaterThanOrEqual(95);

      // A burst queued behind the same delay comes back in order, however the timers coalesce.
      const burst = Array.from({ length: 50 }, (_, i) => Buffer.from(`m${i}`));
      for (const msg of burst) await c.send(msg, relay.port);
      const got: string[] = [];
      for (let i = 0; i < burst.length; i++) got.push(String(await c.next()));
      expect(got).toEqual(burst.map(String));
    } finally {
      await close();
    }
  });

  it('closes the port on stop() and forwards again on start()', async () => {
    const { relay, echo, newClient, close } = await rig();
    try {
      // A connected client sees the ICMP port unreachable as ECONNREFUSED: proof the port is closed.
      const c = await newClient(true);
      await c.send(Buffer.from('before'));
      expect(String(await c.next())).toBe('before');
      const port = relay.port;

      await relay.stop();
      await relay.stop(); // idempotent
      await c.send(Buffer.from('lost'));
      expect((await c.nextError()).code).toBe('ECONNREFUSED');

      await relay.start();
      await relay.start(); // idempotent
      expect(relay.port).toBe(port);
      await c.send(Buffer.from('after'));
      expect(String(await c.next())).toBe('after');
      expect(echo.received.map(String)).toEqual(['before', 'after']);
      expect(relay.forwarded).toEqual({ toTarget: 2, toClient: 2 });
    } finally {
      await close();
    }
  });

  it('blackholes silently with the port open, then forwards again', async () => {
    const { relay, echo, newClient, close } = await rig();
    try {
      const c = await newClient(true);
      await c.send(Buffer.from('before'));
      expect(String(await c.next())).toBe('before');
      relay.blackhole = true;
      await c.send(Buffer.from('dropped'));
      await expect.poll(() => relay.dropped).toBe(1);
      relay.blackhole = false;
      await c.send(Buffer.from('after'));
      expect(String(await c.next())).toBe('after');
      expect(echo.received.map(String)).toEqual(['before', 'after']);
    } finally {
      await close();
    }
  });

  it('survives zero-length and maximum-size datagrams', async () => {
    const { relay, newClient, close } = await rig();
    try {
      const c = await newClient();
      for (const hostile of [Buffer.alloc(0), randomBytes(65_507)]) {
        await c.send(hostile, relay.port);
        const marker = randomBytes(16);
        await c.send(marker, relay.port);
        // Either the hostile datagram comes back intact before the marker, or it was dropped.
        let msg = await c.next();
        if (!msg.equals(marker)) {
          expect(msg.equals(hostile)).toBe(true);
          msg = await c.next();
        }
        expect(msg.equals(marker)).toBe(true);
      }
    } finally {
      await close();
    }
  });

  it('swallows and counts errors while the target is down', async () => {
    const { relay, echo, newClient, close } = await rig();
    try {
      const c = await newClient();
      expect(String(await roundTrip(c, relay, Buffer.from('up')))).toBe('up');
      await echo.close();
      await c.send(Buffer.from('into the void'), relay.port);
      // The upstream socket is connected, so the target's ICMP port unreachable becomes an error.
      await expect.poll(() => relay.errors).toBeGreaterThan(0);
      expect(relay.forwarded.toClient).toBe(1);
    } finally {
      await close();
    }
  });
});
