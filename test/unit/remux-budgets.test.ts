/**
 * The mux's memory budgets against a hostile or stalled peer: the shared send budget, the receive
 * budget (streams × window), the control budget while the sink is paused, unanswered refusals,
 * the sink's room, and process-wide pressure.
 */
import { describe, expect, it } from 'vitest';
import { encodeDestination } from '../../shared/eagersocks.ts';
import { isProtocolError } from '../../shared/errors.ts';
import { ControlType, GoawayCode, INITIAL_WINDOW, ResetCode, decodeControl, encodeControl, encodeFrame } from '../../shared/remux/frame.ts';
import { FrameDecoder } from '../../shared/remux/decoder.ts';
import { Mux, type MuxOptions } from '../../shared/remux/mux.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { concat, muxPair, settle } from '../support/mux-pipe.ts';

const dest = encodeDestination({ type: 'domain', host: 'blocked.test', port: 443 });
const open = (id: number, extra = new Uint8Array(0)) => encodeFrame(id, concat([dest, extra]));

/** What an acceptor wrote, as control messages (data frames counted apart). */
function controls(out: Uint8Array[]) {
  const msgs: ReturnType<typeof decodeControl>[] = [];
  let dataBytes = 0;
  new FrameDecoder().push(concat(out), { data: (_id, _len, _off, piece) => void (dataBytes += piece.length), control: (p) => void msgs.push(decodeControl(p)) });
  return { msgs, dataBytes };
}

function acceptor(o: Partial<MuxOptions> & { paused?: boolean } = {}) {
  const out: Uint8Array[] = [];
  const streams: MuxStream[] = [];
  let closedWith: unknown = 'open';
  let sinkOpen = !o.paused;
  const mux = new Mux({
    role: 'acceptor',
    sink: { write: (c) => (out.push(...c), sinkOpen) },
    onStream: (s) => streams.push(s),
    onClose: (e) => (closedWith = e),
    ...o,
  });
  return { mux, out, streams, closed: () => closedWith, pause: () => (sinkOpen = false) };
}

describe('mux budgets', () => {
  it('send budget: writers past the shared budget wait, and each gets drain once framing frees it', async () => {
    const accepted: MuxStream[] = [];
    const { opener, acceptor: edge } = muxPair({ acceptor: { sendBudget: 100_000, onStream: (s) => void accepted.push(s) } });
    const a = opener.open({ type: 'domain', host: 'a.test', port: 1 });
    const b = opener.open({ type: 'domain', host: 'b.test', port: 1 });
    a.write(Uint8Array.of(1));
    b.write(Uint8Array.of(1));
    await settle();
    const drained: string[] = [];
    accepted[0]!.attach({ drain: () => drained.push('a') });
    accepted[1]!.attach({ drain: () => drained.push('b') });
    // The opener does not read yet: its window (256 KiB per stream) is not the limit here, the edge's budget is.
    expect(accepted[0]!.write(new Uint8Array(60_000))).toBe(true);
    expect(accepted[1]!.write(new Uint8Array(60_000))).toBe(false); // 120,000 ≥ 100,000
    expect(accepted[0]!.write(new Uint8Array(1))).toBe(false);
    expect(edge.memoryUsed).toBe(120_001 + 2 * INITIAL_WINDOW);
    await settle(); // a flush frames everything the peer's windows allow
    expect(drained.sort()).toEqual(['a', 'b']);
  });

  it('receive budget: a stream that would commit more windows than the budget is RESET 0x06', () => {
    const e = acceptor({ receiveBudget: 2 * INITIAL_WINDOW });
    e.mux.receive(concat([open(1), open(2), open(3)]));
    expect(e.streams.map((s) => s.id)).toEqual([1, 2]);
    return settle().then(() => {
      expect(controls(e.out).msgs).toContainEqual({ type: ControlType.RESET, stream: 3, code: ResetCode.RESOURCES });
    });
  });

  it('admitStream false (the process budget) refuses with RESET 0x06 and opens nothing', async () => {
    let room = true;
    const e = acceptor({ admitStream: () => room });
    e.mux.receive(open(1));
    room = false;
    e.mux.receive(open(3));
    await settle();
    expect(e.streams.map((s) => s.id)).toEqual([1]);
    expect(controls(e.out).msgs).toContainEqual({ type: ControlType.RESET, stream: 3, code: ResetCode.RESOURCES });
  });

  it('control budget: a peer forcing RESETs and PONGs while nobody reads gets GOAWAY 0x06, and that is all it gets', async () => {
    const e = acceptor({ maxStreams: 1, controlBudget: 4096 });
    e.mux.receive(open(1)); // takes the one stream
    await settle();
    e.pause();
    e.mux.receive(encodeControl({ type: ControlType.PING, nonce: 1n })); // the sink now says "stop"
    await settle();
    const before = e.out.length;
    let sent = 0;
    for (let id = 3; e.closed() === 'open' && id < 60_000; id += 2) {
      e.mux.receive(concat([open(id), encodeControl({ type: ControlType.RESET, stream: id, code: 5 }), encodeControl({ type: ControlType.PING, nonce: BigInt(id) })]));
      sent++;
    }
    expect(e.closed()).toMatchObject({ code: 'CONTROL_FLOOD' });
    expect(isProtocolError(e.closed())).toBe(true);
    expect(sent).toBeLessThan(1000); // 4 KiB of answers at most, not one per frame
    const after = controls(e.out.slice(before)).msgs;
    expect(after).toEqual([{ type: ControlType.GOAWAY, code: GoawayCode.RESOURCES }]);
  });

  it('refused opens the peer never answers: past maxStreams of them, GOAWAY 0x06', async () => {
    const e = acceptor({ maxStreams: 4 });
    for (let id = 1; id <= 7; id += 2) e.mux.receive(open(id));
    let id = 9;
    for (; e.closed() === 'open' && id < 200; id += 2) e.mux.receive(open(id));
    expect(e.closed()).toMatchObject({ code: 'CONTROL_FLOOD' });
    expect((id - 9) / 2).toBe(5); // four placeholders held, the fifth ends it
    await settle();
    expect(controls(e.out).msgs.at(-1)).toEqual({ type: ControlType.GOAWAY, code: GoawayCode.RESOURCES });
  });

  it("a flush cuts data only up to the sink's room (one frame past it at most)", async () => {
    let capacity = 10_000;
    const out: Uint8Array[] = [];
    // Like the downstream buffer: what it holds uses up its room (nothing drains it here).
    const room = () => Math.max(0, capacity - concat(out).length);
    const mux = new Mux({ role: 'opener', sink: { write: (c) => (out.push(...c), room() > 0), room } });
    const s = mux.open({ type: 'domain', host: 'x.test', port: 1 });
    s.write(new Uint8Array(200_000));
    await settle();
    const first = concat(out).length;
    expect(first).toBeGreaterThan(10_000);
    expect(first).toBeLessThanOrEqual(10_000 + 65_535 + 2 * 7 + dest.length);
    await settle();
    expect(concat(out).length).toBe(first); // no room: it waits
    capacity = first + 1000;
    mux.resume();
    await settle();
    const second = concat(out).length - first;
    expect(second).toBeGreaterThan(1000);
    expect(second).toBeLessThanOrEqual(1000 + 65_535 + 7);
  });

  it('pressure holds back the credit this side returns, until relieve()', async () => {
    let pressure = false;
    const e = acceptor({ underPressure: () => pressure });
    e.mux.receive(open(1));
    const s = e.streams[0]!;
    s.attach({ data: (p) => s.consume(p.length) });
    pressure = true;
    e.mux.receive(concat([encodeFrame(1, new Uint8Array(60_000)), encodeFrame(1, new Uint8Array(60_000))])); // consumed at once: a grant is due
    await settle();
    expect(controls(e.out).msgs.filter((m) => m.type === ControlType.WINDOW)).toEqual([]);
    pressure = false;
    e.mux.relieve();
    await settle();
    expect(controls(e.out).msgs.filter((m) => m.type === ControlType.WINDOW)).toEqual([{ type: ControlType.WINDOW, stream: 1, delta: 120_000 }]);
  });

  it('pressure holds writers until relieve(), then each gets drain', async () => {
    let pressure = false;
    const e = acceptor({ underPressure: () => pressure });
    e.mux.receive(open(1));
    const s = e.streams[0]!;
    let drains = 0;
    s.attach({ drain: () => drains++ });
    pressure = true;
    expect(s.write(Uint8Array.of(1))).toBe(false);
    e.mux.relieve();
    expect(drains).toBe(0); // still under pressure
    pressure = false;
    e.mux.relieve();
    expect(drains).toBe(1);
  });
});
