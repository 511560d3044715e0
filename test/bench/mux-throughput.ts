/**
 * Mux throughput over an in-memory pipe: Passage's ReMux beside js-libp2p's yamux
 * (@chainsafe/libp2p-yamux 7.0.4), the same 8 streams × 32 MiB in the same process and run.
 * Both sides run with flow control on (ReMux: 256 KiB windows; yamux: its defaults).
 */
import { yamux } from '@chainsafe/libp2p-yamux';
import { defaultLogger } from '@libp2p/logger';
import { Mux } from '../../shared/remux/mux.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import type { Uint8ArrayList } from 'uint8arraylist';
import { concat } from '../support/bytes.ts';

export interface MuxBenchResult {
  name: string;
  streams: number;
  bytesPerStream: number;
  seconds: number;
  mbPerSecond: number;
}

const CHUNK = 64 * 1024;

function result(name: string, streams: number, bytesPerStream: number, start: bigint): MuxBenchResult {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { name, streams, bytesPerStream, seconds, mbPerSecond: (streams * bytesPerStream) / 1e6 / seconds };
}

/** ReMux: opener writes, acceptor reads and returns credit as it counts. */
export async function benchRemux(streams: number, bytesPerStream: number, copying = false): Promise<MuxBenchResult> {
  const chunk = new Uint8Array(CHUNK).fill(7);
  let received = 0;
  const total = streams * bytesPerStream;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let opener!: Mux;
  // A copying pipe joins each batch into one buffer, as a socket write would.
  const carry = (to: () => Mux) => (chunks: Uint8Array[]) => {
    if (copying) to().receive(concat(chunks));
    else for (const c of chunks) to().receive(c);
    return true;
  };
  const acceptor: Mux = new Mux({
    role: 'acceptor',
    sink: { write: carry(() => opener) },
    onStream: (s: MuxStream) =>
      s.attach({
        data(p) {
          received += p.length;
          s.consume(p.length);
          if (received === total) done();
        },
      }),
  });
  opener = new Mux({ role: 'opener', sink: { write: carry(() => acceptor) } });
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const s = opener.open({ type: 'domain', host: `bench${i}.test`, port: 443 });
      for (let sent = 0; sent < bytesPerStream; sent += CHUNK) {
        if (!s.write(chunk.subarray(0, Math.min(CHUNK, bytesPerStream - sent)))) {
          await new Promise<void>((r) => s.attach({ drain: r }));
        }
      }
      s.end();
    }),
  );
  await finished;
  return result(copying ? 'passage remux, copying pipe' : 'passage remux', streams, bytesPerStream, start);
}

/** yamux 7.0.4 joined source-to-sink in memory, the way its own examples pair two muxers. */
export async function benchYamux(streams: number, bytesPerStream: number, copying = false): Promise<MuxBenchResult> {
  const chunk = new Uint8Array(CHUNK).fill(7);
  const factory = yamux()({ logger: defaultLogger() });
  let received = 0;
  const total = streams * bytesPerStream;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const server = factory.createStreamMuxer({
    direction: 'inbound',
    onIncomingStream: (stream) => {
      void (async () => {
        for await (const c of stream.source) {
          received += c.byteLength;
          if (received === total) done();
        }
      })();
    },
  });
  const client = factory.createStreamMuxer({ direction: 'outbound' });
  // Uint8ArrayList.subarray() joins its parts into one new buffer: the copying pipe.
  const carry = (source: AsyncGenerator<Uint8Array | Uint8ArrayList>): AsyncGenerator<Uint8Array | Uint8ArrayList> =>
    copying
      ? (async function* () {
          for await (const c of source) yield c.subarray();
        })()
      : source;
  void server.sink(carry(client.source));
  void client.sink(carry(server.source));
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const stream = await client.newStream();
      await stream.sink(
        (function* () {
          for (let sent = 0; sent < bytesPerStream; sent += CHUNK) yield chunk.subarray(0, Math.min(CHUNK, bytesPerStream - sent));
        })(),
      );
    }),
  );
  await finished;
  const r = result(copying ? 'yamux 7.0.4, copying pipe' : 'yamux 7.0.4', streams, bytesPerStream, start);
  await client.close();
  await server.close();
  return r;
}
