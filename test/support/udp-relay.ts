/**
 * A UDP forwarder that sits in front of a QUIC (WebTransport) server port in tests and benchmarks.
 * QUIC cannot go through the TCP delay relay, and tests need to add latency to a WebTransport path
 * and to close and reopen its port (stop()/start()) without touching the server behind it.
 * Like a NAT, each client address:port gets its own upstream socket, connected to the target, so
 * replies find their way back.
 */
import dgram from 'node:dgram';

export interface UdpRelay {
  /** The relay's listening port on 127.0.0.1 (stays the same across stop()/start()). */
  readonly port: number;
  /** Stop forwarding and close the listening socket so the port is closed (clients get ICMP port unreachable). Idempotent. */
  stop(): Promise<void>;
  /** Re-open the same port and forward again. Idempotent. */
  start(): Promise<void>;
  /** Close everything for good. */
  close(): Promise<void>;
  /** While true, datagrams are dropped both ways with the port left open: UDP silently blocked. */
  blackhole: boolean;
  /** Datagrams dropped by the blackhole so far. */
  readonly dropped: number;
  /** Datagrams forwarded so far in each direction. */
  readonly forwarded: { toTarget: number; toClient: number };
  /** Bytes forwarded so far in each direction (UDP payloads). */
  readonly forwardedBytes: { toTarget: number; toClient: number };
  /** Socket errors swallowed so far (e.g. ECONNREFUSED while the target is down). */
  readonly errors: number;
}

const HOST = '127.0.0.1';
const IDLE_MS = 60_000;
const MAX_CLIENTS = 256;
const BUFFER_BYTES = 1 << 20; // room for QUIC bursts; the kernel caps it at its maximum

interface Mapping {
  socket: dgram.Socket;
  connected: boolean;
  pending: Buffer[];
  idle: NodeJS.Timeout;
}

/** Runs each job delayMs after it was pushed, in push order: one timer for the head of a FIFO. */
function delayLine(delayMs: number) {
  let queue: Array<{ due: number; run: () => void }> = [];
  let head = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(drain, Math.max(1, Math.ceil(queue[head]!.due - performance.now())));
    timer.unref();
  };
  function drain() {
    timer = undefined;
    const now = performance.now();
    while (head < queue.length && queue[head]!.due <= now) queue[head++]!.run();
    if (head < queue.length) return arm();
    queue = [];
    head = 0;
  }
  return {
    push(run: () => void) {
      if (delayMs <= 0) return run();
      queue.push({ due: performance.now() + delayMs, run });
      if (!timer) arm();
    },
    clear() {
      clearTimeout(timer);
      timer = undefined;
      queue = [];
      head = 0;
    },
  };
}

/** Relays UDP between clients and 127.0.0.1:targetPort, adding delayMs one way in EACH direction (so RTT grows by 2*delayMs). delayMs 0 = forward immediately. port 0 = pick a free port. */
export async function startUdpRelay(options: { targetPort: number; delayMs?: number; port?: number }): Promise<UdpRelay> {
  const { targetPort, delayMs = 0 } = options;
  let port = options.port ?? 0;
  let errors = 0;
  let listener: dgram.Socket | undefined;
  let opening: Promise<void> | undefined;
  let closed = false;
  let blackhole = false;
  let dropped = 0;
  const forwarded = { toTarget: 0, toClient: 0 };
  const forwardedBytes = { toTarget: 0, toClient: 0 };
  const clients = new Map<string, Mapping>();
  const up = delayLine(delayMs);
  const down = delayLine(delayMs);

  const udp = () => {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
    socket.on('error', () => errors++);
    return socket.unref();
  };
  /** Sends without ever throwing: a closed socket or a failed send only counts as an error. */
  const send = (socket: dgram.Socket | undefined, msg: Buffer, dir: keyof typeof forwarded, to?: dgram.RemoteInfo) => {
    const done = (err: Error | null) => {
      if (err) return void errors++;
      forwarded[dir]++;
      forwardedBytes[dir] += msg.length;
    };
    try {
      if (!socket) return;
      if (to) socket.send(msg, to.port, to.address, done);
      else socket.send(msg, done);
    } catch {
      errors++;
    }
  };
  const drop = (key: string) => {
    const mapping = clients.get(key);
    if (!mapping) return;
    clients.delete(key);
    clearTimeout(mapping.idle);
    try {
      mapping.socket.close();
    } catch {
      errors++;
    }
  };
  const mappingFor = (from: dgram.RemoteInfo): Mapping | undefined => {
    const key = `${from.address}:${from.port}`;
    const existing = clients.get(key);
    if (existing) {
      existing.idle.refresh();
      return existing;
    }
    if (clients.size >= MAX_CLIENTS) return undefined;
    const mapping: Mapping = { socket: udp(), connected: false, pending: [], idle: setTimeout(() => drop(key), IDLE_MS).unref() };
    mapping.socket.on('message', (msg) => {
      mapping.idle.refresh();
      if (blackhole) return void dropped++;
      down.push(() => send(listener, msg, 'toClient', from));
    });
    mapping.socket.connect(targetPort, HOST, () => {
      mapping.connected = true;
      for (const msg of mapping.pending.splice(0)) send(mapping.socket, msg, 'toTarget');
    });
    clients.set(key, mapping);
    return mapping;
  };

  const start = (): Promise<void> => {
    if (closed) return Promise.reject(new Error('UDP relay is closed'));
    if (listener) return opening!;
    const socket = (listener = udp());
    socket.on('message', (msg, from) => {
      if (blackhole) return void dropped++;
      const mapping = mappingFor(from);
      if (!mapping) return;
      up.push(() => (mapping.connected ? send(mapping.socket, msg, 'toTarget') : mapping.pending.push(msg)));
    });
    return (opening = new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        if (listener === socket) listener = undefined;
        socket.close();
        reject(err);
      };
      socket.once('error', fail);
      socket.bind(port, HOST, () => {
        socket.off('error', fail);
        port = socket.address().port;
        resolve();
      });
    }));
  };
  const stop = async () => {
    await opening?.catch(() => {});
    const socket = listener;
    listener = undefined;
    up.clear();
    down.clear();
    for (const key of [...clients.keys()]) drop(key);
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  };

  await start();
  return {
    get blackhole() {
      return blackhole;
    },
    set blackhole(on: boolean) {
      blackhole = on;
    },
    get dropped() {
      return dropped;
    },
    get port() {
      return port;
    },
    forwarded,
    forwardedBytes,
    get errors() {
      return errors;
    },
    start,
    stop,
    close() {
      closed = true;
      return stop();
    },
  };
}

/** A UDP port free a moment ago: for servers that cannot listen on port 0 (the WebTransport front behind a relay, coturn). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
