/** Joins byte chunks into one new buffer. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The same bytes as `chunks`, in order, packed into as few messages of at most `max` bytes as
 * they fit in (a message-oriented carrier, a data channel, where each message has a cost). A
 * message made of one chunk (or one piece of a chunk larger than `max`) is a view of it, not a copy.
 */
export function packMessages(chunks: readonly Uint8Array[], max: number): Uint8Array[] {
  if (!(max >= 1)) throw new RangeError('a message holds at least one byte');
  const out: Uint8Array[] = [];
  let batch: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    if (size === 0) return;
    out.push(batch.length === 1 ? batch[0]! : concat(batch));
    batch = [];
    size = 0;
  };
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      const piece = chunk.subarray(at, at + Math.min(max - size, chunk.length - at));
      batch.push(piece);
      size += piece.length;
      at += piece.length;
      if (size === max) flush();
    }
  }
  flush();
  return out;
}
