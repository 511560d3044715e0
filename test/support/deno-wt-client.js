/**
 * A WebTransport (and raw QUIC) client for tests, run in the pinned Deno — Node has neither —
 * by test/support/webtransport-client.ts. Plain JavaScript so Node's tsc never sees `Deno`.
 *
 * It reads one JSON command per line on stdin, `{"id": n, "op": "...", ...}`, runs each
 * concurrently, and answers one JSON line on stdout per command, `{"id": n, ...result}`
 * (`{"id": n, "failed": "message"}` when the command itself threw). Ops:
 *
 *   open     {url, hash}                  → {ok, session} | {ok: false, error}
 *   close    {session}                    → {}
 *   stream   {session, head, size, probeMs, readTimeoutMs}
 *            opens a bidirectional stream, writes `head` (hex) and `size` random bytes, then
 *            FIN; with probeMs it then keeps writing 1 KiB pieces until a write fails or probeMs
 *            pass (a stream the edge refused fails its writes once STOP_SENDING arrives).
 *            → {sent, sentSha, received, receivedSha, fin, writeError, readError, readTimedOut}
 *   quic     {host, port, hash}           → {conn} (a raw QUIC connection, ALPN h3)
 *   quicSend {conn, kind: "bidi"|"uni", hex, fin} → {} (opens a stream and writes the bytes)
 *   quicClosed {conn, timeoutMs}          → {closed: true, closeCode, reason} | {closed: false}
 */

const sessions = new Map();
const conns = new Map();
/** Streams of raw connections, kept referenced so they stay open until the connection ends. */
const held = [];
let nextHandle = 1;

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

async function open({ url, hash }) {
  const wt = new WebTransport(url, { serverCertificateHashes: pin(hash) });
  wt.closed.catch(() => undefined);
  try {
    await wt.ready;
  } catch (e) {
    return { ok: false, error: String(e) };
  }
  const session = nextHandle++;
  sessions.set(session, wt);
  return { ok: true, session };
}

async function close({ session }) {
  const wt = sessions.get(session);
  sessions.delete(session);
  wt.close();
  await wt.closed.catch(() => undefined);
  return {};
}

async function stream({ session, head, size = 0, probeMs = 0, readTimeoutMs = 30_000 }) {
  const wt = sessions.get(session);
  if (!wt) throw new Error(`no session ${session}`);
  const s = await wt.createBidirectionalStream();
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
    await writer.write(hexToBytes(head));
    for (let at = 0; at < size; at += 65536) {
      const piece = randomBytes(Math.min(65536, size - at));
      sentParts.push(piece);
      await writer.write(piece);
      r.sent += piece.length;
    }
    if (probeMs > 0) {
      const deadline = Date.now() + probeMs;
      while (Date.now() < deadline) {
        await writer.write(new Uint8Array(1024));
        await delay(20);
      }
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
  }
  clearTimeout(timer);
  r.sentSha = await sha256(sentParts);
  r.receivedSha = await sha256(receivedParts);
  return r;
}

async function quic({ host, port, hash }) {
  const conn = await Deno.connectQuic({ hostname: host, port, alpnProtocols: ['h3'], serverCertificateHashes: pin(hash) });
  const handle = nextHandle++;
  const closed = conn.closed.then(
    (info) => ({ closed: true, closeCode: info.closeCode, reason: info.reason }),
    (e) => ({ closed: true, closeCode: null, reason: String(e) }),
  );
  conns.set(handle, { conn, closed });
  // Drain whatever the server opens toward us (its control stream) so flow control never stalls it.
  void (async () => {
    try {
      for await (const uni of conn.incomingUnidirectionalStreams) void uni.pipeTo(new WritableStream()).catch(() => undefined);
    } catch {
      // connection closed
    }
  })();
  return { conn: handle };
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

const ops = { open, close, stream, quic, quicSend, quicClosed };
const encoder = new TextEncoder();
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
