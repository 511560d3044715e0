/**
 * The front's side of the local link to the edge (shared/webtransport-link.ts): one Unix-socket
 * connection per WebTransport session, asked first whether the session may open, then carrying
 * a ReMux opener whose streams are the session's WebTransport streams.
 */
import { concat } from '../../../shared/bytes.ts';
import { Mux } from '../../../shared/remux/mux.ts';
import { ResetCode } from '../../../shared/remux/frame.ts';
import { decodeSessionAnswer, encodeSessionRequest, type SessionRequest } from '../../../shared/webtransport-link.ts';

/** Unsent link bytes above which the mux stops sending stream data until the socket drains. */
const HIGH_WATER = 1024 * 1024;

export interface EdgeLink {
  mux: Mux;
  /** Resolves when the link is gone (either side closed it). */
  closed: Promise<void>;
  close(): void;
}

export type SessionVerdict = { status: 200; link: EdgeLink } | { status: number; link: null };

export async function askEdge(linkPath: string, request: SessionRequest): Promise<SessionVerdict> {
  const conn = await Deno.connect({ transport: 'unix', path: linkPath });
  const writer = conn.writable.getWriter();
  const reader = conn.readable.getReader();
  let answer: ReturnType<typeof decodeSessionAnswer> = null;
  try {
    await writer.write(encodeSessionRequest(request));
    let buf: Uint8Array = new Uint8Array(0);
    while (!(answer = decodeSessionAnswer(buf))) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the edge closed the link before answering');
      buf = concat([buf, value]);
    }
  } catch (e) {
    conn.close();
    throw e;
  }
  if (answer.status !== 200) {
    conn.close();
    return { status: answer.status, link: null };
  }
  return { status: 200, link: startLink(conn, writer, reader, answer.rest) };
}

function startLink(
  conn: Deno.UnixConn,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  early: Uint8Array,
): EdgeLink {
  let unsent = 0;
  let blocked = false;
  let ended = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const end = () => {
    if (ended) return;
    ended = true;
    mux.destroy(undefined, ResetCode.CANCELLED);
    try {
      conn.close();
    } catch {
      // already closed
    }
    resolveClosed();
  };
  const mux = new Mux({
    role: 'opener',
    maxStreams: 65535,
    sink: {
      write(chunks) {
        if (ended) return true;
        const bytes = chunks.length === 1 ? chunks[0]! : concat(chunks);
        unsent += bytes.length;
        writer.write(bytes).then(
          () => {
            unsent -= bytes.length;
            if (blocked && unsent < HIGH_WATER / 2) {
              blocked = false;
              mux.resume();
            }
          },
          end,
        );
        if (unsent >= HIGH_WATER) blocked = true;
        return !blocked;
      },
    },
    onClose: end,
  });
  void (async () => {
    try {
      if (early.length > 0) mux.receive(early);
      for (;;) {
        const { value, done } = await reader.read();
        if (done || ended) break;
        mux.receive(value);
      }
    } catch {
      // a reset link ends the session like a closed one
    }
    end();
  })();
  return { mux, closed, close: end };
}
