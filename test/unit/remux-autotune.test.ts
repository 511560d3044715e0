/**
 * Receive-window auto-tuning (mux.ts AutotunePolicy): a reader that consumes its window within two
 * round trips of the last grant gets the window doubled, up to the maximum; a slow reader keeps
 * the initial window; without a policy, never more than the initial window is in flight. With
 * `openWindow`, a stream the opener opens may take that much before its reader consumes a byte;
 * `connectionExtra` bounds what all streams hold past the initial window, growth included.
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

/** Streams the opener opens whose readers never consume, each sent 4 × INITIAL_WINDOW by the acceptor. */
async function unread(openWindow?: number) {
  const senders: MuxStream[] = [];
  const policy = { maxWindow: 4 * INITIAL_WINDOW, connectionExtra: 4 * INITIAL_WINDOW, rttMs: () => 50, ...(openWindow ? { openWindow } : {}) };
  const pair = muxPair({ opener: { autotune: policy }, acceptor: { onStream: (s: MuxStream) => void senders.push(s) } });
  const chunk = new Uint8Array(16 * 1024);
  /** Opens a stream and lets the acceptor send into it until its window is spent: the bytes that arrived. */
  const fill = async () => {
    const stream = pair.opener.open({ type: 'ipv4', host: '127.0.0.1', port: 1 });
    let got = 0;
    stream.attach({ data: (p) => (got += p.length) });
    await settle();
    const sender = senders.at(-1)!;
    for (let i = 0; i < 64; i++) sender.write(chunk);
    await settle();
    await settle();
    return { stream, sender, got: () => got };
  };
  return { pair, fill };
}

describe('ReMux opening window', () => {
  it('a stream opened with openWindow takes that much before its reader consumes; without it, the initial window', async () => {
    const plain = await unread();
    expect((await plain.fill()).got()).toBe(INITIAL_WINDOW);
    const open = await unread(4 * INITIAL_WINDOW);
    expect((await open.fill()).got()).toBe(4 * INITIAL_WINDOW);
  });

  it("connectionExtra bounds the opening windows of all streams together, and a closed stream's share comes back", async () => {
    const { pair, fill } = await unread(4 * INITIAL_WINDOW);
    const a = await fill(); // 3 × INITIAL_WINDOW past the initial one, of the 4 there are
    const b = await fill(); // the 1 left
    const c = await fill(); // none left
    expect([a.got(), b.got(), c.got()]).toEqual([4 * INITIAL_WINDOW, 2 * INITIAL_WINDOW, INITIAL_WINDOW]);
    expect(pair.opener.memoryUsed).toBe(3 * INITIAL_WINDOW + 4 * INITIAL_WINDOW);
    a.stream.reset(0x05);
    await settle();
    await settle();
    expect((await fill()).got()).toBe(4 * INITIAL_WINDOW);
  });

  it('growth stays within connectionExtra', async () => {
    expect(await run(true, 1, 50, INITIAL_WINDOW)).toBeLessThanOrEqual(2 * INITIAL_WINDOW);
  });
});
