/** Drives one tunnelled stream: sends `data` with backpressure then FIN; resolves with all it read back until FIN. */
import type { MuxStream } from '../../shared/remux/stream.ts';
import { concat } from './bytes.ts';

export function exchange(stream: MuxStream, data: Uint8Array): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const done = new Promise<Uint8Array>((resolve, reject) => {
    stream.attach({
      data: (p) => {
        parts.push(p.slice());
        stream.consume(p.length);
      },
      end: () => resolve(concat(parts)),
      reset: (code) => reject(Object.assign(new Error(`reset 0x0${code}`), { code })),
    });
  });
  void (async () => {
    for (let at = 0; at < data.length; at += 16384) {
      if (!stream.write(data.subarray(at, at + 16384))) await new Promise<void>((r) => stream.attach({ drain: r }));
    }
    stream.end();
  })();
  return done;
}
