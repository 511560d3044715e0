/**
 * ReMux padding (PROTOCOL.md §2): the first frames of every stream are topped up with PADDING
 * control frames to the policy's size, both directions; receivers ignore them; data is byte-exact.
 */
import { describe, expect, it } from 'vitest';
import { muxPair, settle, concat } from '../support/mux-pipe.ts';
import { ControlType, HEADER_LENGTH, encodePadding } from '../../shared/remux/frame.ts';
import { defaultPadding, PADDED_FRAMES, PAD_TO_MAX, PAD_TO_MIN } from '../../shared/remux/padding.ts';
import { seeded } from '../support/fake-clock.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

/** Every frame in a recorded direction: [stream id, payload length, first payload byte]. */
function frames(chunks: Uint8Array[]): Array<[number, number, number | undefined]> {
  const out: Array<[number, number, number | undefined]> = [];
  const all = concat(chunks);
  let at = 0;
  while (at + HEADER_LENGTH <= all.length) {
    const id = (all[at]! << 8) | all[at + 1]!;
    const len = (all[at + 2]! << 8) | all[at + 3]!;
    out.push([id, len, all[at + HEADER_LENGTH]]);
    at += HEADER_LENGTH + len;
  }
  return out;
}

describe('ReMux padding', () => {
  it('pads each stream\'s first frames to 500–1000 bytes in both directions, leaves later ones alone, and the data arrives exact', async () => {
    const pair = muxPair({
      record: true,
      opener: { padding: defaultPadding(seeded(1)) },
      acceptor: { padding: defaultPadding(seeded(2)), onStream: (s: MuxStream) => s.attach({ data: (p) => (s.write(p.slice()), s.consume(p.length)), end: () => s.end() }) },
    });
    const got: Uint8Array[] = [];
    const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 80 });
    const ended = new Promise<void>((resolve) => stream.attach({ data: (p) => (got.push(p.slice()), stream.consume(p.length)), end: () => resolve() }));
    const sent: Uint8Array[] = [];
    for (let i = 0; i < PADDED_FRAMES + 4; i++) {
      const msg = Uint8Array.from({ length: 40 + i }, (_, j) => (i + j) & 0xff);
      sent.push(msg);
      stream.write(msg);
      await settle();
    }
    stream.end();
    await ended;
    expect([...concat(got)]).toEqual([...concat(sent)]);
    for (const dir of ['up', 'down'] as const) {
      const f = frames(pair.log.filter((l) => l.dir === dir).map((l) => l.bytes));
      const padding = f.filter(([id, , type]) => id === 0 && type === ControlType.PADDING);
      expect(padding.length).toBe(PADDED_FRAMES);
      // Each padded frame plus its padding lands in the policy's range.
      let i = 0;
      for (let k = 0; k < f.length; k++) {
        const [id, len] = f[k]!;
        if (id === 0 || len === 0) continue;
        const next = f[k + 1];
        const padded = next && next[0] === 0 && next[2] === ControlType.PADDING;
        if (i < PADDED_FRAMES) {
          expect(padded).toBe(true);
          const total = HEADER_LENGTH + len + HEADER_LENGTH + next![1];
          expect(total).toBeGreaterThanOrEqual(PAD_TO_MIN);
          expect(total).toBeLessThanOrEqual(PAD_TO_MAX);
        } else expect(padded).toBeFalsy();
        i++;
      }
    }
    expect(pair.opener.paddingOut).toBeGreaterThan(0);
  });

  it('a receiver without a policy ignores PADDING of any length, also split across chunks', async () => {
    const pair = muxPair({ split: (c) => Array.from(c, (b) => Uint8Array.of(b)) });
    for (const n of [5, 6, 1000, 65535 + 4]) pair.opener.receive(encodePadding(n));
    pair.acceptor.receive(encodePadding(300));
    await settle();
    expect(pair.opener.isClosed).toBe(false);
    expect(pair.acceptor.isClosed).toBe(false);
    expect(encodePadding(1).length).toBe(HEADER_LENGTH + 1);
  });
});
