/**
 * Receive-window auto-tuning (mux.ts AutotunePolicy): a reader that consumes its window within two
 * round trips of the last grant gets the window doubled, up to the maximum; a slow reader keeps
 * the initial window; without a policy, never more than the initial window is in flight;
 * `connectionExtra` bounds what all streams together hold past the initial window.
 */
import { describe, expect, it } from 'vitest';
import { muxPair, settle } from '../support/mux-pipe.ts';
import { INITIAL_WINDOW } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';

/** Sends `total` bytes acceptor → opener; the opener consumes `perStep` bytes each step of `stepMs` fake ms. Returns the most bytes ever unconsumed at the opener. */
async function run(autotune: boolean, stepMs: number, rttMs = 50, connectionExtra = 16 * INITIAL_WINDOW): Promise<number> {
  let now = 1000;
  let sender!: MuxStream;
  const pair = muxPair({
    manual: true,
    opener: { now: () => now, ...(autotune ? { autotune: { maxWindow: 4 * INITIAL_WINDOW, connectionExtra, rttMs: () => rttMs } } : {}) },
    acceptor: { onStream: (s: MuxStream) => (sender = s) },
  });
  const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 1 });
  let unconsumed = 0;
  let most = 0;
  stream.attach({ data: (p) => (unconsumed += p.length) });
  await settle();
  pair.up.deliver();
  await settle();
  const chunk = new Uint8Array(16 * 1024);
  for (let i = 0; i < 400; i++) sender.write(chunk);
  for (let step = 0; step < 400; step++) {
    await settle();
    pair.down.deliver();
    most = Math.max(most, unconsumed);
    const n = Math.min(unconsumed, 64 * 1024);
    unconsumed -= n;
    stream.consume(n);
    now += stepMs;
    await settle();
    pair.up.deliver();
  }
  return most;
}

describe('ReMux receive-window auto-tuning', () => {
  it('a fast reader gets up to the maximum window in flight; without the policy, the initial window is the most', async () => {
    expect(await run(false, 1)).toBeLessThanOrEqual(INITIAL_WINDOW);
    const tuned = await run(true, 1);
    expect(tuned).toBeGreaterThan(2 * INITIAL_WINDOW);
    expect(tuned).toBeLessThanOrEqual(4 * INITIAL_WINDOW);
  });

  it('a reader slower than two round trips per grant keeps the initial window', async () => {
    expect(await run(true, 200, 50)).toBeLessThanOrEqual(INITIAL_WINDOW);
  });
});

describe('ReMux connection cap on grown windows', () => {
  it('growth stays within connectionExtra', async () => {
    expect(await run(true, 1, 50, INITIAL_WINDOW)).toBeLessThanOrEqual(2 * INITIAL_WINDOW);
  });

  it("a stream that grew and then stalled holds its share; once it is gone, the share is there for the next", async () => {
    let now = 1000;
    const senders: MuxStream[] = [];
    const policy = { maxWindow: 4 * INITIAL_WINDOW, connectionExtra: 3 * INITIAL_WINDOW, rttMs: () => 50 };
    const pair = muxPair({ opener: { now: () => now, autotune: policy }, acceptor: { onStream: (s: MuxStream) => void senders.push(s) } });
    /** A stream whose reader keeps up for `steps` fake ms, then stops: the most ever unconsumed at once, and the stream. */
    const fastThenStalled = async () => {
      const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 1 });
      let unconsumed = 0;
      stream.attach({ data: (p) => (unconsumed += p.length) });
      await settle();
      const sender = senders.at(-1)!;
      const chunk = new Uint8Array(16 * 1024);
      for (let i = 0; i < 256; i++) sender.write(chunk);
      for (let step = 0; step < 200; step++) {
        await settle();
        const n = Math.min(unconsumed, 64 * 1024);
        unconsumed -= n;
        stream.consume(n);
        now += 1;
      }
      return stream;
    };
    const a = await fastThenStalled();
    expect(a.windowSize).toBe(4 * INITIAL_WINDOW); // grew to its maximum: 3 windows past the first
    expect(pair.opener.memoryUsed).toBe(4 * INITIAL_WINDOW);
    const b = await fastThenStalled();
    expect(b.windowSize).toBe(INITIAL_WINDOW); // the cap is spent: b kept the initial window
    expect(pair.opener.memoryUsed).toBe(5 * INITIAL_WINDOW);
    a.reset(0x05);
    b.reset(0x05);
    await settle();
    await settle();
    expect(pair.opener.memoryUsed).toBe(0);
    expect((await fastThenStalled()).windowSize).toBe(4 * INITIAL_WINDOW); // a's share came back
  });
});
