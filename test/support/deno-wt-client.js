/**
 * WebTransport and raw QUIC clients for tests, run in the pinned Deno — Node has no QUIC — by
 * test/support/webtransport-client.ts. Plain JavaScript so Node's tsc never sees `Deno`.
 *
 * Two clients, because Deno 2.9.6's built-in `WebTransport` cannot end a stream: its stream
 * writers wrap the QUIC stream without owning it, so `close()` sends no FIN (the far side's read
 * never ends; checked against Deno's own WebTransport server too). The built-in one is used for what a browser's API shows (`ready` resolves or
 * rejects; reading a response up to the server's FIN). Everything that needs a client FIN uses a
 * small WebTransport (draft-02) client written here over `Deno.connectQuic`, independent of the
 * project's shared/h3 code: a control stream with SETTINGS, an extended CONNECT in QPACK
 * literals, and bidirectional streams prefixed `0x41 <session id>`.
 *
 * Protocol: one JSON command per line on stdin, `{"id": n, "op": "...", ...}`, run concurrently;
 * one JSON line per command on stdout, `{"id": n, ...result}` (`{"id": n, "failed": "message"}`
 * when the command threw). Ops:
 *
 *   builtin  {url, hash, head?}   the built-in WebTransport: → {ready, error, received, text, fin}
 *            (with `head`, one stream: write it, read to the server's FIN; then close the session)
 *   connect  {url, hash, conn?}   → {status, session}: the CONNECT's :status; a session when 200.
 *            With `conn` (a raw connection's or a session's handle) the CONNECT goes on that
 *            QUIC connection (its control stream opened first if it has none), and a refusal
 *            leaves the connection open; a session it opens gets a handle of its own.
 *   close    {session}            closes the QUIC connection of a session or raw connection → {}
 *   endSession {session}          ends the session the HTTP/3 way: FIN on its CONNECT stream → {}
 *   stream   {session, head, size, probeMs, readTimeoutMs}
 *            a bidirectional WebTransport stream: writes `head` (hex) and `size` random bytes,
 *            then FIN; with probeMs it first keeps writing 1 KiB pieces until a write fails or
 *            probeMs pass (a stream the edge refused fails its writes once STOP_SENDING arrives).
 *            → {sent, sentSha, received, receivedSha, fin, writeError, readError, readTimedOut}
 *   hold     {session, head}      a bidirectional WebTransport stream that sends `head` and then
 *            nothing, never ending (a stalled preamble) → {}
 *   quic     {host, port, hash, from?}   a bare QUIC connection, ALPN h3, held open until `close`
 *            (from `from`, a local address, when given)
 *            → {conn} once the handshake completed; fails when the handshake does (refused)
 *   quicSend {conn, kind: "bidi"|"uni", hex, fin}   opens a stream, writes the bytes → {}
 *   quicClosed {conn, timeoutMs}  → {closed: true, closeCode, reason} | {closed: false}
 */

/**
 * Connections and sessions by handle: {conn, closed, control, sessionId, connectWriter}. A session
 * opened by a plain `connect` shares its handle with its connection; one opened on an existing
 * connection gets a handle of its own, sharing `conn`, `closed` and `control`.
 */
const conns = new Map();
/** Streams of raw connections, kept referenced so they stay open until the connection ends. */
const held = [];
let nextHandle = 1;

const encoder = new TextEncoder();
const hexToBytes = (hex) => new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const sha256 = async (parts) => toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', concat(parts))));

function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return out;
}

const pin = (hash) => [{ algorithm: 'sha-256', value: hexToBytes(hash) }];

// ---- HTTP/3 and QPACK, just enough for a client (RFC 9000 §16, RFC 9114 §7, RFC 9204 §4.5) ----

function varint(v) {
  if (v < 0x40) return Uint8Array.of(v);
  if (v < 0x4000) return Uint8Array.of(0x40 | (v >> 8), v & 0xff);
  if (v < 0x40000000) return Uint8Array.of(0x80 | (v >>> 24), (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v) | (3n << 62n));
  return out;
}

/** A varint at `at`: {value, next}, or null when `buf` ends first. */
function readVarint(buf, at) {
  if (at >= buf.length) return null;
  const length = 1 << (buf[at] >> 6);
  if (at + length > buf.length) return null;
  let value = buf[at] & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + buf[at + i];
  return { value, next: at + length };
}

const frame = (type, payload) => concat([varint(type), varint(payload.length), payload]);

/** QPACK prefixed integer (RFC 7541 §5.1); `first` holds the bits above the prefix. */
function prefixInt(first, bits, value) {
  const max = (1 << bits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  for (value -= max; value >= 128; value = Math.floor(value / 128)) out.push((value % 128) | 0x80);
  out.push(value);
  return out;
}

/** A field section of literal names and values only: no table references, no Huffman. */
function encodeFields(fields) {
  const out = [0x00, 0x00]; // Required Insert Count 0, Delta Base 0
  for (const [name, value] of fields) {
    const n = encoder.encode(name);
    const v = encoder.encode(value);
    out.push(...prefixInt(0x20, 3, n.length), ...n, ...prefixInt(0x00, 7, v.length), ...v);
  }
  return Uint8Array.from(out);
}

/** The static table's :status entries (RFC 9204 Appendix A). */
const STATIC_STATUS = { 24: 103, 25: 200, 26: 304, 27: 404, 28: 503, 63: 100, 64: 204, 65: 206, 66: 302, 67: 400, 68: 403, 69: 421, 70: 425, 71: 500 };

/** A QPACK prefixed integer at `at`: {value, next}. */
function readPrefixInt(buf, at, bits) {
  const max = (1 << bits) - 1;
  let value = buf[at] & max;
  let next = at + 1;
  if (value < max) return { value, next };
  for (let shift = 0; ; shift += 7) {
    const b = buf[next++];
    value += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) return { value, next };
  }
}

/** The :status of a response field section: its first field, as RFC 9114 §4.3 orders them. */
function decodeStatus(section) {
  let at = readPrefixInt(section, 0, 8).next; // Required Insert Count (0: no dynamic table)
  at = readPrefixInt(section, at, 7).next; // Delta Base
  const b = section[at];
  if ((b & 0xc0) === 0xc0) return STATIC_STATUS[readPrefixInt(section, at, 6).value] ?? null; // indexed, static
  if ((b & 0xd0) === 0x50) {
    // A literal value with a static name reference; the name must be :status (24), the value plain.
    const name = readPrefixInt(section, at, 4);
    if (name.value !== 24 || section[name.next] & 0x80) return null;
    const length = readPrefixInt(section, name.next, 7);
    return Number(new TextDecoder().decode(section.subarray(length.next, length.next + length.value)));
  }
  return null;
}

const SETTINGS = frame(
  0x04,
  concat([
    [0x01, 0], // QPACK_MAX_TABLE_CAPACITY
    [0x07, 0], // QPACK_BLOCKED_STREAMS
    [0x33, 1], // H3_DATAGRAM
    [0x2b603742, 1], // ENABLE_WEBTRANSPORT (draft-02)
    // A greased setting (RFC 9114 §7.2.4.1) whose id and value are above 2^53, as Firefox sends:
    // a server must read the whole 62-bit range and ignore it.
    [0x1fn * 2n ** 56n + 0x21n, 2n ** 61n + 5n],
  ].flatMap(([id, value]) => [varint(id), varint(value)])),
);

async function quicConnect(hostname, port, hash, from) {
  // `from`: a local address to connect from (127.0.0.x), standing for another client.
  const endpoint = from ? new Deno.QuicEndpoint({ hostname: from, port: 0 }) : undefined;
  const conn = await Deno.connectQuic({ hostname, port, alpnProtocols: ['h3'], serverCertificateHashes: pin(hash), ...(endpoint ? { endpoint } : {}) });
  const closed = conn.closed.then(
    (info) => ({ closed: true, closeCode: info.closeCode, reason: info.reason }),
    (e) => ({ closed: true, closeCode: null, reason: String(e) }),
  );
  // Drain what the server opens toward us (its control stream) so flow control never stalls it.
  void (async () => {
    try {
      for await (const uni of conn.incomingUnidirectionalStreams) void uni.pipeTo(new WritableStream()).catch(() => undefined);
    } catch {
      // connection closed
    }
  })();
  const handle = nextHandle++;
  const entry = { conn, closed, control: null, sessionId: null };
  conns.set(handle, entry);
  return { handle, entry };
}

// ---- ops ----

async function builtin({ url, hash, head }) {
  const wt = new WebTransport(url, { serverCertificateHashes: pin(hash) });
  wt.closed.catch(() => undefined);
  try {
    await wt.ready;
  } catch (e) {
    return { ready: false, error: String(e) };
  }
  const r = { ready: true, error: null, received: 0, text: '', fin: false };
  if (head) {
    const s = await wt.createBidirectionalStream();
    const writer = s.writable.getWriter();
    await writer.write(hexToBytes(head));
    const parts = [];
    try {
      for await (const chunk of s.readable) parts.push(chunk);
      r.fin = true;
    } catch (e) {
      r.error = String(e);
    }
    const all = concat(parts);
    r.received = all.length;
    r.text = new TextDecoder().decode(all);
  }
  wt.close();
  return r;
}

/** The client's control stream with its SETTINGS, once per connection (concurrent CONNECTs share it). */
function openControl(entry) {
  entry.control ??= (async () => {
    const control = (await entry.conn.createUnidirectionalStream()).getWriter();
    held.push(control);
    await control.write(concat([Uint8Array.of(0x00), SETTINGS]));
  })();
  return entry.control;
}

async function connect({ url, hash, conn: existing }) {
  const u = new URL(url);
  const { handle, entry } = existing === undefined ? await quicConnect(u.hostname, Number(u.port), hash) : onConnection(existing);
  const { conn } = entry;
  await openControl(entry);

  const request = await conn.createBidirectionalStream();
  const writer = request.writable.getWriter();
  held.push(request, writer); // the CONNECT stream lives as long as the session
  const fields = [
    [':method', 'CONNECT'],
    [':protocol', 'webtransport'],
    [':scheme', 'https'],
    [':authority', u.host],
    [':path', u.pathname + u.search],
    ['sec-webtransport-http3-draft02', '1'],
  ];
  await writer.write(frame(0x01, encodeFields(fields)));

  // The response: the first HEADERS frame on the request stream.
  const reader = request.readable.getReader();
  let buf = new Uint8Array(0);
  let status = null;
  while (status === null) {
    const { value, done } = await reader.read();
    if (done) break;
    buf = concat([buf, value]);
    const type = readVarint(buf, 0);
    const length = type && readVarint(buf, type.next);
    if (!length || buf.length < length.next + length.value) continue;
    if (type.value !== 0x01) throw new Error(`frame 0x${type.value.toString(16)} before the response HEADERS`);
    status = decodeStatus(buf.subarray(length.next, length.next + length.value));
  }
  if (status !== 200) {
    conns.delete(handle);
    // A connection of its own is closed; an existing one stays for whatever else it carries.
    if (existing === undefined) conn.close({ closeCode: 0x100, reason: '' });
    return { status };
  }
  entry.sessionId = Number(request.writable.id);
  entry.connectWriter = writer;
  // Whatever else the server sends on the CONNECT stream is read and dropped.
  void (async () => {
    try {
      while (!(await reader.read()).done);
    } catch {
      // session over
    }
  })();
  return { status, session: handle };
}

/** A CONNECT on an existing connection: a fresh handle for the session it may open, on the same connection. */
function onConnection(existing) {
  const base = conns.get(existing);
  if (!base) throw new Error(`no connection ${existing}`);
  const handle = nextHandle++;
  // The control stream is the connection's: every handle on it shares the one opened first.
  const entry = { conn: base.conn, closed: base.closed, control: openControl(base), sessionId: null };
  conns.set(handle, entry);
  return { handle, entry };
}

async function close({ session }) {
  const { conn, closed } = conns.get(session);
  conns.delete(session);
  conn.close({ closeCode: 0x100, reason: '' });
  await closed;
  return {};
}

async function endSession({ session }) {
  await conns.get(session).connectWriter.close();
  return {};
}

async function stream({ session, head, size = 0, probeMs = 0, readTimeoutMs = 30_000 }) {
  const entry = conns.get(session);
  if (!entry || entry.sessionId === null) throw new Error(`no session ${session}`);
  const s = await entry.conn.createBidirectionalStream();
  const writer = s.writable.getWriter();
  const reader = s.readable.getReader();
  const r = { sent: 0, sentSha: '', received: 0, receivedSha: '', fin: false, writeError: null, readError: null, readTimedOut: false };

  const receivedParts = [];
  const reading = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return void (r.fin = true);
        receivedParts.push(value);
        r.received += value.length;
      }
    } catch (e) {
      r.readError = String(e);
    }
  })();

  const sentParts = [];
  try {
    await writer.write(concat([varint(0x41), varint(entry.sessionId), hexToBytes(head)]));
    if (probeMs > 0) {
      const deadline = Date.now() + probeMs;
      while (Date.now() < deadline) {
        await writer.write(new Uint8Array(1024));
        await delay(20);
      }
    }
    for (let at = 0; at < size; at += 65536) {
      const piece = randomBytes(Math.min(65536, size - at));
      sentParts.push(piece);
      await writer.write(piece);
      r.sent += piece.length;
    }
    await writer.close();
  } catch (e) {
    r.writeError = String(e);
  }

  let timer;
  const timedOut = new Promise((resolve) => (timer = setTimeout(() => resolve(true), readTimeoutMs)));
  if (await Promise.race([reading.then(() => false), timedOut])) {
    r.readTimedOut = true;
    await reader.cancel().catch(() => undefined);
    await reading;
  }
  clearTimeout(timer);
  r.sentSha = await sha256(sentParts);
  r.receivedSha = await sha256(receivedParts);
  return r;
}

async function hold({ session, head }) {
  const entry = conns.get(session);
  const s = await entry.conn.createBidirectionalStream();
  const writer = s.writable.getWriter();
  held.push(s, writer);
  void s.readable.pipeTo(new WritableStream()).catch(() => undefined);
  await writer.write(concat([varint(0x41), varint(entry.sessionId), hexToBytes(head)]));
  return {};
}

async function quic({ host, port, hash, from }) {
  return { conn: (await quicConnect(host, port, hash, from)).handle };
}

async function quicSend({ conn, kind, hex, fin = false }) {
  const { conn: c } = conns.get(conn);
  const s = kind === 'bidi' ? await c.createBidirectionalStream() : await c.createUnidirectionalStream();
  const writable = kind === 'bidi' ? s.writable : s;
  if (kind === 'bidi') void s.readable.pipeTo(new WritableStream()).catch(() => undefined);
  const writer = writable.getWriter();
  held.push(s, writer);
  await writer.write(hexToBytes(hex));
  if (fin) await writer.close();
  return {};
}

async function quicClosed({ conn, timeoutMs = 10_000 }) {
  const { closed } = conns.get(conn);
  return Promise.race([closed, delay(timeoutMs).then(() => ({ closed: false }))]);
}

const ops = { builtin, connect, close, endSession, stream, hold, quic, quicSend, quicClosed };

function reply(obj) {
  const bytes = encoder.encode(JSON.stringify(obj) + '\n');
  for (let at = 0; at < bytes.length; ) at += Deno.stdout.writeSync(bytes.subarray(at));
}

let pending = '';
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += chunk;
  let nl;
  while ((nl = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    if (!line.trim()) continue;
    const { id, op, ...args } = JSON.parse(line);
    Promise.resolve()
      .then(() => ops[op](args))
      .then(
        (result) => reply({ id, ...result }),
        (e) => reply({ id, failed: String(e?.stack ?? e) }),
      );
  }
}
// stdin closed: the test is done with us.
Deno.exit(0);
