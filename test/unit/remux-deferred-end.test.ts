import { describe, expect, it } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { DeferredEnd } from '../../shared/remux/deferred-end.ts';
import { pipeStreams } from '../../shared/remux/pipe.ts';
import { INITIAL_WINDOW, ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { concat, muxPair, settle } from '../support/mux-pipe.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const dest = { type: 'domain', host: 'blocked.test', port: 443 } as const;

/** browser ⇄ [link] ⇄ pipe ⇄ DeferredEnd ⇄ (later) [tunnel] ⇄ edge: the extension while a transport is chosen. */
function chain() {
  const edgeStreams: MuxStream[] = [];
  const tunnel = muxPair({ acceptor: { onStream: (s) => edgeStreams.push(s) } });
  const deferred: DeferredEnd[] = [];
  const closes: Array<number | null> = [];
  const link = muxPair({
    acceptor: {
      onStream: (s) => {
        const end = new DeferredEnd(INITIAL_WINDOW);
        deferred.push(end);
        pipeStreams(s, end, { onClose: (c) => closes.push(c) });
      },
    },
  });
  return { link, tunnel, edgeStreams, deferred, closes };
}

describe('DeferredEnd', () => {
  it('holds writes, FIN included, until bound, then replays them in order; replies flow back', async () => {
    const { link, tunnel, edgeStreams, deferred, closes } = chain();
    const s = link.opener.open(dest);
    const up = randomBytes(100_000);
    s.write(up);
    s.end();
    await settle();
    expect(edgeStreams).toHaveLength(0);
    deferred[0]!.bind(tunnel.opener.open(dest));
    await settle();
    const edge = edgeStreams[0]!;
    const gotUp: Uint8Array[] = [];
    const doneUp = new Promise<void>((r) => edge.attach({ data: (p) => (gotUp.push(p.slice()), edge.consume(p.length)), end: r }));
    const down = randomBytes(300_000);
    const gotDown: Uint8Array[] = [];
    const doneDown = new Promise<void>((r) => s.attach({ data: (p) => (gotDown.push(p.slice()), s.consume(p.length)), end: r }));
    edge.write(down);
    edge.end();
    await Promise.all([doneUp, doneDown]);
    expect(sha(concat(gotUp))).toBe(sha(up));
    expect(sha(concat(gotDown))).toBe(sha(down));
    await settle();
    expect(closes).toEqual([null]);
  });

  it('holds an unbound writer to two windows (its limit, then what the credit already given lets in), and releases it on bind', async () => {
    const { link, tunnel, edgeStreams, deferred } = chain();
    const s = link.opener.open(dest);
    const total = 4 * INITIAL_WINDOW;
    let accepted = 0;
    let chunk = 0;
    const more = () => {
      while (accepted < total) {
        const more = s.write(new Uint8Array(16 * 1024).fill(chunk++ & 0xff));
        accepted += 16 * 1024;
        if (!more) break;
      }
    };
    s.attach({ drain: more });
    more();
    await settle();
    // The link grants credit only while the deferred end is under its limit; after that only the
    // window already granted can arrive.
    const held = (deferred[0] as unknown as { queued: number }).queued;
    expect(held).toBeGreaterThanOrEqual(INITIAL_WINDOW);
    expect(held).toBeLessThanOrEqual(2 * INITIAL_WINDOW);
    expect(accepted).toBeLessThan(total);
    deferred[0]!.bind(tunnel.opener.open(dest));
    await settle();
    const edge = edgeStreams[0]!;
    let got = 0;
    const done = new Promise<void>((r) =>
      edge.attach({
        data: (p) => {
          got += p.length;
          edge.consume(p.length);
          if (got >= total) r();
        },
      }),
    );
    more();
    await done;
    expect(got).toBe(total);
  });

  it('a RESET from the browser before binding reaches the bound stream; fail() resets the browser side with its code', async () => {
    const { link, tunnel, edgeStreams, deferred } = chain();
    const a = link.opener.open(dest);
    a.write(new Uint8Array(10));
    await settle();
    a.reset(ResetCode.CANCELLED);
    await settle();
    const bound = tunnel.opener.open(dest);
    deferred[0]!.bind(bound);
    await settle();
    expect(bound.local).toBe('reset');
    expect(edgeStreams.length).toBeLessThanOrEqual(1);

    const b = link.opener.open(dest);
    const code = new Promise<number>((r) => b.attach({ reset: r }));
    await settle();
    deferred[1]!.fail(ResetCode.UNREACHABLE);
    expect(await code).toBe(ResetCode.UNREACHABLE);
    expect(() => deferred[1]!.bind(tunnel.opener.open(dest))).not.toThrow();
    expect(() => deferred[0]!.bind(bound)).toThrow(/bound twice/);
  });
});
