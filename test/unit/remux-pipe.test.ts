import { describe, expect, it } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { pipeStreams } from '../../shared/remux/pipe.ts';
import { INITIAL_WINDOW, ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { concat, muxPair, settle } from '../support/mux-pipe.ts';

/** browser ⇄ [link pair] ⇄ relay ⇄ [tunnel pair] ⇄ edge: the extension's position in the middle. */
function chain() {
  const edgeStreams: MuxStream[] = [];
  const tunnel = muxPair({ acceptor: { onStream: (s) => edgeStreams.push(s) } });
  const closes: Array<number | null> = [];
  const link = muxPair({
    acceptor: {
      onStream: (s) => pipeStreams(s, tunnel.opener.open(s.destination), { onClose: (c) => closes.push(c) }),
    },
  });
  return { link, tunnel, edgeStreams, closes };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('pipeStreams', () => {
  it('relays bytes and FIN both ways, byte-exact', async () => {
    const { link, edgeStreams, closes } = chain();
    const s = link.opener.open({ type: 'domain', host: 'blocked.test', port: 443 });
    const up = randomBytes(700_000);
    const down = randomBytes(900_000);
    const gotDown: Uint8Array[] = [];
    const doneDown = new Promise<void>((r) => s.attach({ data: (p) => (gotDown.push(p.slice()), s.consume(p.length)), end: r }));
    s.write(up);
    s.end();
    await settle();
    const edge = edgeStreams[0]!;
    expect(edge.destination).toEqual({ type: 'domain', host: 'blocked.test', port: 443 });
    const gotUp: Uint8Array[] = [];
    const doneUp = new Promise<void>((r) => edge.attach({ data: (p) => (gotUp.push(p.slice()), edge.consume(p.length)), end: r }));
    edge.write(down);
    edge.end();
    await Promise.all([doneUp, doneDown]);
    expect(sha(concat(gotUp))).toBe(sha(up));
    expect(sha(concat(gotDown))).toBe(sha(down));
    await settle();
    expect(closes).toEqual([null]);
  });

  it('carries a RESET and its code across', async () => {
    const { link, edgeStreams } = chain();
    const s = link.opener.open({ type: 'ipv4', host: '1.2.3.4', port: 80 });
    const code = new Promise<number>((r) => s.attach({ reset: r }));
    s.write(new Uint8Array(1));
    await settle();
    edgeStreams[0]!.reset(ResetCode.POLICY);
    expect(await code).toBe(ResetCode.POLICY);
  });

  it('a stalled reader at one end holds the writer at the other to about two windows', async () => {
    const { link, edgeStreams } = chain();
    const s = link.opener.open({ type: 'ipv4', host: '1.2.3.4', port: 80 });
    s.write(new Uint8Array(1));
    await settle();
    edgeStreams[0]!.attach({ data() {} }); // the far end never consumes
    for (let i = 0; i < 100; i++) s.write(new Uint8Array(64 * 1024));
    await settle();
    // One window in flight on each hop plus the relay's own send buffer: never the 6.4 MB written.
    expect(s.bytesOut).toBeLessThanOrEqual(3 * INITIAL_WINDOW);
    expect(edgeStreams[0]!.buffered).toBeLessThanOrEqual(INITIAL_WINDOW);
  });
});
