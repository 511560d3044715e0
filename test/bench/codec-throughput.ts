/** Encode + decode throughput of the ReMux frame codec alone (no streams, no windows). */
import { FrameDecoder } from '../../shared/remux/decoder.ts';
import { encodeFrame } from '../../shared/remux/frame.ts';

export interface CodecBenchResult {
  name: string;
  frameBytes: number;
  totalBytes: number;
  mbPerSecond: number;
}

export function benchCodec(frameBytes: number, totalBytes: number): CodecBenchResult {
  const payload = new Uint8Array(frameBytes).fill(3);
  const decoder = new FrameDecoder();
  let decoded = 0;
  const sink = { data: (_s: number, _l: number, _o: number, p: Uint8Array) => void (decoded += p.length), control() {} };
  const start = process.hrtime.bigint();
  for (let done = 0, id = 1; done < totalBytes; done += frameBytes, id = (id % 65535) + 1) {
    decoder.push(encodeFrame(id, payload), sink);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (decoded < totalBytes) throw new Error('codec bench lost bytes');
  return { name: `codec ${frameBytes}-byte frames`, frameBytes, totalBytes, mbPerSecond: decoded / 1e6 / seconds };
}
