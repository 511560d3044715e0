/**
 * Reads a QUIC stream's leading bytes until a parser is satisfied, with a cap: a peer that
 * trickles an endless preamble is cut off instead of buffered.
 */
import { concat } from '../../../shared/bytes.ts';
import { H3CodecError } from '../../../shared/errors.ts';

/**
 * Reads chunks into one buffer until `parse` returns non-null; null when the stream ends first.
 * `parse` may throw (malformed input): the error propagates, as does H3CodecError for a preamble over `max`.
 */
export async function readUntil<T>(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  initial: Uint8Array,
  max: number,
  parse: (buf: Uint8Array) => T | null,
): Promise<{ value: T; buf: Uint8Array } | null> {
  let buf = initial;
  for (;;) {
    const value = parse(buf);
    if (value !== null) return { value, buf };
    if (buf.length > max) throw new H3CodecError('FRAME', `stream preamble over ${max} bytes`);
    const { value: chunk, done } = await reader.read();
    if (done) return null;
    buf = buf.length === 0 ? chunk : concat([buf, chunk]);
  }
}
