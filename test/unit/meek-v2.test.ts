/**
 * meek v2's pure parts (PROTOCOL.md §1.1): the edge's upload pipeline, the offset-addressed
 * downstream buffer, and the client session against a scripted edge on a fake clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { UploadPipeline, PIPELINE_WAIT_MS } from '../../shared/meek/upload-pipeline.ts';
import { PipelinedMeekSession, STREAM_PROBE_MS, STREAM_ROTATE_EARLY_MS, type PipelinedOptions } from '../../shared/meek/pipelined-session.ts';
import type { MeekRequest, MeekResponse } from '../../shared/meek/round-trip.ts';
import { MAX_HOLD_MS, PIPELINE_WINDOW } from '../../shared/meek/headers.ts';
import { INITIAL_POLL_DELAY_MS, MAX_POLL_DELAY_MS, POLL_JITTER } from '../../shared/meek/schedule.ts';
import { MeekError } from '../../shared/errors.ts';
import { DownstreamBuffer } from '../../server/edge/downstream-buffer.ts';
import { FakeClock, seeded } from '../support/fake-clock.ts';
import { concat } from '../support/bytes.ts';
import { LANE_END, segmentHeader } from '../../shared/meek/segments.ts';

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('UploadPipeline', () => {
  it('hands uploads to the upstream in seq order whatever order they arrive in, each exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray([1, 2, 3, 4, 5, 6, 7, 8], { minLength: 8, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 6 }), async (order, retries) => {
        const clock = new FakeClock();
        const p = new UploadPipeline(clock, 8);
        const upstream: number[] = [];
        const outcomes = [...order, ...retries].map((seq) =>
          p.upload(seq, 10, async () => {
            upstream.push(seq);
          }),
        );
        const results = await Promise.all(outcomes);
        expect(upstream).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(results.slice(0, 8).every((r) => !r.replayed)).toBe(true);
        expect(results.slice(8).every((r) => r.replayed)).toBe(true);
        expect(p.lastSeq).toBe(8);
        expect(p.waitingBytes).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('a seq beyond the window is 409 and changes nothing; one within it waits', async () => {
    const p = new UploadPipeline(new FakeClock(), PIPELINE_WINDOW);
    const seen: number[] = [];
    await expect(p.upload(PIPELINE_WINDOW + 1, 1, async () => void seen.push(99))).rejects.toMatchObject({ code: 'SEQ' });
    const waiting = p.upload(PIPELINE_WINDOW, 100, async () => void seen.push(PIPELINE_WINDOW));
    await Promise.resolve();
    expect(seen).toEqual([]);
    expect(p.waitingBytes).toBe(100);
    for (let s = 1; s < PIPELINE_WINDOW; s++) await p.upload(s, 1, async () => void seen.push(s));
    await waiting;
    expect(seen).toEqual(Array.from({ length: PIPELINE_WINDOW }, (_, i) => i + 1));
  });

  it('a retry that arrives while its original runs waits for it and touches nothing', async () => {
    const p = new UploadPipeline(new FakeClock());
    let runs = 0;
    let finish!: () => void;
    const first = p.upload(1, 1, () => {
      runs++;
      return new Promise<void>((r) => (finish = r));
    });
    const retry = p.upload(1, 1, async () => void runs++);
    await new FakeClock().settle();
    finish();
    expect(await first).toEqual({ replayed: false });
    expect(await retry).toEqual({ replayed: true });
    expect(runs).toBe(1);
  });

  it('a failed upload advances nothing: its retry runs it again, and its successor still waits for it', async () => {
    const p = new UploadPipeline(new FakeClock());
    const seen: string[] = [];
    const second = p.upload(2, 1, async () => void seen.push('2'));
    await expect(p.upload(1, 1, async () => Promise.reject(new Error('upstream gone')))).rejects.toThrow('upstream gone');
    expect(p.lastSeq).toBe(0);
    expect(seen).toEqual([]);
    await p.upload(1, 1, async () => void seen.push('1'));
    await second;
    expect(seen).toEqual(['1', '2']);
  });

  it('an upload whose predecessor never comes gives up after the wait with WAIT (503), and close ends the rest with GONE', async () => {
    const clock = new FakeClock();
    const p = new UploadPipeline(clock);
    const stuck = p.upload(3, 1, async () => undefined);
    const outcome = stuck.then(
      () => 'ok',
      (e: MeekError) => e.code,
    );
    await clock.advance(PIPELINE_WAIT_MS);
    expect(await outcome).toBe('WAIT');
    const later = p.upload(2, 1, async () => undefined).catch((e: MeekError) => e.code);
    p.close();
    expect(await later).toBe('GONE');
    await expect(p.upload(1, 1, async () => undefined)).rejects.toMatchObject({ code: 'GONE' });
  });
});

describe('DownstreamBuffer offsets (v2)', () => {
  it('reads from any retained offset without removing, and forgets only what is acknowledged', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), (chunks, picks) => {
        const buf = new DownstreamBuffer(1 << 30);
        buf.push(chunks);
        const all = concat(chunks);
        expect(buf.end).toBe(all.length);
        for (const pick of picks) {
          const from = buf.start + (pick % (buf.end - buf.start + 1));
          const max = 1 + (pick % 300);
          const got = concat(buf.read(from, max));
          expect([...got]).toEqual([...all.subarray(from, Math.min(from + max, all.length))]);
          buf.ack(buf.start + (pick % 7)); // acknowledgements move forward only
        }
        buf.ack(0); // an old one changes nothing
        expect(buf.size).toBe(buf.end - buf.start);
        buf.ack(Number.MAX_SAFE_INTEGER);
        expect(buf.size).toBe(0);
        expect(buf.start).toBe(all.length);
      }),
    );
  });

  it('the producer pauses while unacknowledged bytes fill the limit and goes on at the acknowledgement', () => {
    const buf = new DownstreamBuffer(1000);
    let drains = 0;
    buf.onDrain = () => drains++;
    expect(buf.push([bytes(1000)])).toBe(false);
    buf.read(0, 1000); // sent, not yet acknowledged: still held
    expect(drains).toBe(0);
    buf.ack(500);
    expect(drains).toBe(1);
    expect(buf.size).toBe(500);
  });

  it('take hands out a view, not a copy, when one chunk holds the answer', () => {
    const buf = new DownstreamBuffer(1 << 20);
    const chunk = bytes(65536);
    buf.push([chunk]);
    const out = buf.take(65536);
    expect(out.buffer).toBe(chunk.buffer);
    expect(buf.size).toBe(0);
  });
});

/** A scripted v2 edge: answers each request with `answer`, recording what it was asked. */
function harness(answer: (req: MeekRequest, n: number) => Promise<MeekResponse> | MeekResponse, extra: Partial<PipelinedOptions> = {}) {
  const clock = new FakeClock(seeded(3));
  const requests: MeekRequest[] = [];
  const received: Uint8Array[] = [];
  const errors: MeekError[] = [];
  const modes: string[] = [];
  const session = new PipelinedMeekSession({
    clock,
    roundTrip: async (req) => {
      requests.push(req);
      return answer(req, requests.length);
    },
    onData: (b) => received.push(b.slice()),
    onClose: (e) => errors.push(e),
    onMode: (m) => modes.push(m),
    ...extra,
  });
  return { clock, session, requests, received, errors, modes };
}

function v2Answer(body: Uint8Array, headers: Record<string, string> = {}, stream?: AsyncIterable<Uint8Array>): MeekResponse {
  const h: Record<string, string> = { 'x-meek-version': '2', 'x-meek-window': '8', 'x-meek-retain': '4096', ...headers };
  return { status: 200, body, serverMaxBody: 262144, header: (n) => h[n] ?? null, ...(stream ? { stream } : {}) };
}

const IDLE_MINUTES = 10;

/** The requests made over IDLE_MINUTES of fake time after `warmupMs` (the schedule settling), and their rate a minute. */
async function idleRequests(clock: FakeClock, requests: MeekRequest[], warmupMs: number): Promise<{ perMinute: number; made: MeekRequest[] }> {
  await clock.advance(warmupMs);
  const before = requests.length;
  await clock.advance(IDLE_MINUTES * 60_000);
  const made = requests.slice(before);
  return { perMinute: made.length / IDLE_MINUTES, made };
}

describe('PipelinedMeekSession', () => {
  it('sends writes made while a poll is held at once, several in flight, in seq order', async () => {
    const held: Array<() => void> = [];
    const { session, requests, clock } = harness((req) => {
      if (req.v2?.down === 'poll' && req.seq === null) return new Promise<MeekResponse>((r) => held.push(() => r(v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' }))));
      return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
    }, { streaming: false });
    session.setActive(true);
    session.write(bytes(10));
    await clock.settle();
    expect(requests[0]).toMatchObject({ seq: 1, v2: { down: 'poll', ack: 0 } });
    // The first answer confirmed v2; a poll is now held, and new writes do not wait behind it.
    await clock.settle();
    expect(requests.at(-1)?.v2?.down).toBe('poll');
    for (let i = 0; i < 3; i++) session.write(bytes(300_000, i)); // 900,000 bytes: four uploads of at most 256 KiB
    await clock.settle();
    const uploads = requests.filter((r) => r.seq !== null && r.seq > 1);
    expect(uploads.map((r) => r.seq)).toEqual([2, 3, 4, 5]);
    expect(uploads.every((r) => r.v2?.down === null)).toBe(true);
    expect(held.length).toBe(1);
    session.close();
  });

  it('drops bytes it already has and resumes a cut stream from its acknowledgement', async () => {
    const data = bytes(5000, 9);
    let streams = 0;
    const { session, requests, received, clock } = harness(async (req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      if (req.v2?.down !== 'stream') return v2Answer(new Uint8Array(0));
      streams++;
      const from = req.v2.ack;
      // The first stream is cut after 3000 bytes; the second resends from an older offset (1000 before the ack).
      const start = streams === 1 ? 0 : Math.max(0, from - 1000);
      const end = streams === 1 ? 3000 : data.length;
      async function* body() {
        yield bytes(4); // the lead
        yield data.subarray(start, end);
        if (streams === 1) throw new Error('cut by the path');
      }
      return v2Answer(new Uint8Array(0), { 'x-meek-offset': String(start), 'x-meek-lead': '4', 'x-meek-stream-max': '20000' }, body());
    });
    session.setActive(true);
    await clock.runUntil(() => concat(received).length >= data.length);
    expect([...concat(received)]).toEqual([...data]);
    const second = requests.filter((r) => r.v2?.down === 'stream')[1]!;
    expect(second.v2?.ack).toBe(3000);
    session.close();
  });

  it('a stream whose lead does not come within the probe time means a buffering path: it falls back to polling', async () => {
    const { session, requests, modes, clock } = harness((req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      if (req.v2?.down === 'stream') return new Promise<MeekResponse>(() => undefined); // a proxy holding the whole response
      return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
    });
    session.setActive(true);
    await clock.settle();
    expect(session.mode).toBe('stream');
    await clock.advance(STREAM_PROBE_MS);
    await clock.settle();
    expect(modes).toEqual(['poll']);
    expect(session.mode).toBe('poll');
    expect(requests.at(-1)?.v2?.down).toBe('poll');
    session.close();
  });

  it('an edge that answers as meek v1 ends the session with NO_V2', async () => {
    const { session, errors, clock } = harness(() => ({ status: 200, body: new Uint8Array(0), serverMaxBody: 262144, header: () => null }));
    session.write(bytes(5));
    await clock.settle();
    expect(errors.map((e) => e.code)).toEqual(['NO_V2']);
  });

  it('acknowledges on its own once a quarter of what the edge retains arrived without an upload', async () => {
    let polls = 0;
    const { session, requests, clock, received } = harness(async (req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      if (req.v2?.down === 'poll') {
        // Two answers with bytes, then polls held as a quiet edge holds them.
        if (++polls > 2) await new Promise<void>((r) => clock.setTimeout(r, req.v2?.holdMs ?? 50));
        return v2Answer(polls > 2 ? new Uint8Array(0) : bytes(1500), { 'x-meek-offset': String(req.v2.ack) });
      }
      return v2Answer(new Uint8Array(0));
    }, { streaming: false });
    session.setActive(true);
    await clock.runUntil(() => concat(received).length >= 3000);
    const ackOnly = requests.find((r) => r.seq === null && r.v2?.down === null);
    expect(ackOnly?.v2?.ack).toBeGreaterThanOrEqual(1024);
    session.close();
  });

  it('an idle polling session asks for holds that grow to 5 s, and its mean interval is the schedule\'s cap: 12 requests a minute', async () => {
    const { session, requests, clock } = harness(async (req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      // The edge holds the poll for as long as it was asked to.
      await new Promise<void>((r) => clock.setTimeout(r, req.v2?.holdMs ?? 50));
      return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
    }, { streaming: false });
    session.setActive(true);
    const { perMinute } = await idleRequests(clock, requests, 120_000);
    // Jittered ±POLL_JITTER around the cap: the part of a delay above MAX_HOLD_MS is waited out
    // by the client, so the mean interval is MAX_POLL_DELAY_MS (12 a minute), not shorter.
    expect(perMinute).toBeLessThanOrEqual((60_000 / MAX_POLL_DELAY_MS) * 1.04);
    expect(perMinute).toBeGreaterThanOrEqual(60_000 / (MAX_POLL_DELAY_MS * (1 + POLL_JITTER)));
    expect(Math.max(...requests.map((r) => r.v2?.holdMs ?? 0))).toBeLessThanOrEqual(MAX_HOLD_MS);
    session.close();
  });

  it('a write ends the wait after an empty answer: the next down request leaves at once', async () => {
    const { session, requests, clock } = harness((req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      // A path that answers every poll at once, empty: the client waits out each interval itself.
      return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
    }, { streaming: false });
    session.setActive(true);
    await clock.advance(60_000); // the schedule is at its cap: the client is waiting up to 6.5 s
    const polls = () => requests.filter((r) => r.v2?.down === 'poll').length;
    const before = polls();
    await clock.advance(10);
    expect(polls()).toBe(before); // waiting
    session.write(bytes(20));
    await clock.settle();
    expect(requests.some((r) => r.seq !== null && r.seq > 1 && r.body.length === 20)).toBe(true);
    expect(polls()).toBe(before + 1);
    expect(requests.filter((r) => r.v2?.down === 'poll').at(-1)?.v2?.holdMs).toBe(INITIAL_POLL_DELAY_MS); // the backoff starts over
    session.close();
  });
});

describe('PipelinedMeekSession going quiet', () => {
  it('an idle streaming session opens one stream per X-Meek-Stream-Max − 1 s: 60 ÷ 21 a minute with 22 s', async () => {
    const streamMax = 22_000;
    const { session, requests, clock } = harness(async (req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      if (req.v2?.down !== 'stream') return v2Answer(new Uint8Array(0));
      // As the edge: a stream that stays silent until its time is up.
      async function* body() {
        yield bytes(4);
        await new Promise<void>((r) => clock.setTimeout(r, streamMax));
      }
      return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0', 'x-meek-lead': '4', 'x-meek-stream-max': String(streamMax) }, body());
    });
    session.setActive(true);
    const { perMinute, made } = await idleRequests(clock, requests, 60_000);
    expect(perMinute).toBeLessThanOrEqual(60_000 / (streamMax - STREAM_ROTATE_EARLY_MS) + 1 / IDLE_MINUTES);
    expect(perMinute).toBeGreaterThanOrEqual(60_000 / streamMax);
    expect(made.every((r) => r.v2?.down === 'stream')).toBe(true);
    session.close();
  });

  it('a streaming session whose streams have all closed stops asking once a stream brings nothing', async () => {
    const { session, requests, clock } = harness(async (req) => {
      if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
      if (req.v2?.down === 'stream') {
        // The first stream brings 100 bytes; every stream ends after 22 s.
        const fresh = req.v2.ack === 0;
        async function* body() {
          yield bytes(4);
          if (fresh) yield bytes(100);
          await new Promise<void>((r) => clock.setTimeout(r, 22_000));
        }
        return v2Answer(new Uint8Array(0), { 'x-meek-offset': String(req.v2.ack), 'x-meek-lead': '4', 'x-meek-stream-max': '22000' }, body());
      }
      return v2Answer(new Uint8Array(0));
    });
    session.setActive(true);
    await clock.advance(60_000);
    const whileActive = requests.length;
    expect(whileActive).toBeLessThanOrEqual(1 + 4); // the first request and ≤ 3 streams a minute (one overlap)
    session.setActive(false);
    await clock.advance(60_000);
    const settled = requests.length;
    await clock.advance(120_000);
    expect(requests.length).toBe(settled);
    session.close();
  });

  it('a lane’s end marker is not traffic: with its streams closed, a session on lanes stops asking too', async () => {
    const { session, requests, clock } = harness(
      async (req) => {
        if (req.seq === 1) return v2Answer(new Uint8Array(0), { 'x-meek-offset': '0' });
        if (req.v2?.down === 'stream') {
          // As the edge: the first lane 0 brings 100 bytes; every lane ends with its end marker after 22 s.
          const fresh = req.v2.ack === 0 && req.v2.lane === 0;
          async function* body() {
            yield bytes(4);
            if (fresh) yield concat([segmentHeader(0, 100), bytes(100)]);
            await new Promise<void>((r) => clock.setTimeout(r, 22_000));
            yield LANE_END;
          }
          return v2Answer(new Uint8Array(0), { 'x-meek-lane': String(req.v2.lane), 'x-meek-lead': '4', 'x-meek-stream-max': '22000' }, body());
        }
        return v2Answer(new Uint8Array(0));
      },
      { lanes: 2 },
    );
    session.setActive(true);
    await clock.advance(60_000);
    expect(requests.filter((r) => r.v2?.lane === 1)).toEqual([]); // 100 bytes are no bulk transfer
    session.setActive(false);
    await clock.advance(60_000);
    const settled = requests.length;
    await clock.advance(120_000);
    expect(requests.length).toBe(settled);
    expect(session.stats.bytesDown).toBe(100);
    session.close();
  });
});
