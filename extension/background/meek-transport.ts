/**
 * The meek transport in the extension: several meek sessions in parallel, each carrying a ReMux
 * opener; the round trip is the browser's own `fetch`, so the TLS the censor sees is Chromium's.
 * Sessions speak meek v2 (PROTOCOL.md §1.1: pipelined uploads, a streaming download where the
 * path allows, padding); an edge that answers as v1 gets v1 sessions from then on. New streams go
 * to the session with the fewest; a session that ends (410, a final status, retries exhausted)
 * resets its streams and is replaced on demand.
 */
import { meekRequestHeaders, type MeekRequest, type MeekResponse } from '../../shared/meek/round-trip.ts';
import { createMeekMux, type MeekMux } from '../../shared/meek/meek-mux.ts';
import type { MeekMode } from '../../shared/meek/pipelined-session.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import type { MeekError } from '../../shared/errors.ts';
import type { Transport, TransportState } from './transport.ts';

export interface MeekTransportOptions {
  edgeUrl: string;
  authToken: string;
  parallel: number;
  /** Try streaming downloads (else poll from the start). */
  streaming: boolean;
  padding: boolean;
}

/** A fetch response body as the async iterable the session reads (cancelled when the loop stops). */
async function* chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    void reader.cancel().catch(() => undefined);
  }
}

export class MeekTransport implements Transport {
  private lanes: MeekMux[] = [];
  private version: 1 | 2 = 2;
  /** Set once a session found that the path buffers responses: later sessions poll from the start. */
  private buffered = false;
  readonly state: TransportState = { name: 'meek', reachable: null, rttMs: null, error: null, sessions: 0, detail: null, problem: null };

  constructor(private readonly o: MeekTransportOptions) {}

  private roundTrip = async (req: MeekRequest): Promise<MeekResponse> => {
    try {
      const res = await fetch(this.o.edgeUrl, {
        method: 'POST',
        headers: meekRequestHeaders(req, this.o.authToken),
        body: req.body as Uint8Array<ArrayBuffer>,
        signal: req.signal as globalThis.AbortSignal,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
      const max = Number(res.headers.get('x-meek-max-body'));
      this.state.reachable = true;
      // Every meek answer carries X-Meek-Max-Body (PROTOCOL.md §1); a 200 without it is the edge's
      // cover site, which is what a missing or wrong auth token gets.
      if (res.status === 200 && !res.headers.has('x-meek-max-body')) {
        void res.body?.cancel().catch(() => undefined);
        this.state.problem = 'token';
        this.state.error = 'the edge did not take the auth token';
        return { status: 401, serverMaxBody: null, header: () => null, body: new Uint8Array(0) };
      }
      const base = { status: res.status, serverMaxBody: Number.isFinite(max) && max > 0 ? max : null, header: (n: string) => res.headers.get(n) };
      this.state.problem = null;
      this.state.error = res.status === 200 ? null : `the edge answered ${res.status}`;
      if (req.v2?.down === 'stream' && res.status === 200 && res.body) return { ...base, body: new Uint8Array(0), stream: chunks(res.body) };
      return { ...base, body: new Uint8Array(await res.arrayBuffer()) };
    } catch (e) {
      if (req.signal?.aborted) throw e; // a request the session ended itself says nothing about the edge
      this.state.reachable = false;
      this.state.problem = 'unreachable';
      this.state.error = `edge unreachable: ${(e as Error).message}`;
      throw e;
    }
  };

  private describe(): void {
    const modes = this.lanes.map((l) => l.session.mode);
    if (this.version === 1) this.state.detail = 'polling: the edge speaks meek v1 only';
    else if (modes.includes('stream')) this.state.detail = 'streaming downloads';
    else if (this.buffered) this.state.detail = 'polling: this network holds streamed responses back';
    else this.state.detail = this.o.streaming ? null : 'polling (set in the options)';
  }

  private newLane(): MeekMux {
    const lane: MeekMux = createMeekMux({
      roundTrip: this.roundTrip,
      version: this.version,
      streaming: this.o.streaming && !this.buffered,
      padding: this.o.padding,
      onMode: (mode: MeekMode) => {
        if (mode === 'poll') this.buffered = true;
        this.describe();
      },
      onRoundTrip: ({ rttMs }) => (this.state.rttMs = rttMs),
      onClose: (error: MeekError) => {
        // An older edge: what it said is not an error of the path, and the next session is v1.
        if (error.code === 'NO_V2') this.version = 1;
        else this.state.error = error.message;
        this.lanes = this.lanes.filter((l) => l !== lane);
        this.state.sessions = this.lanes.length;
        this.describe();
      },
    });
    this.lanes.push(lane);
    this.state.sessions = this.lanes.length;
    this.describe();
    return lane;
  }

  /** A stream to `destination` on the least busy session (a session idle long enough for the edge to end it is replaced). */
  open(destination: Destination): MuxStream {
    for (const stale of this.lanes.filter((l) => l.stale)) this.retire(stale);
    const usable = this.lanes.filter((l) => !l.session.isClosed && l.mux.canOpen);
    let lane: MeekMux;
    if (usable.length < this.o.parallel) lane = this.newLane();
    else lane = usable.reduce((a, b) => (b.mux.streamCount < a.mux.streamCount ? b : a));
    return lane.mux.open(destination);
  }

  private retire(lane: MeekMux): void {
    this.lanes = this.lanes.filter((l) => l !== lane);
    this.state.sessions = this.lanes.length;
    lane.session.close();
    lane.mux.destroy(undefined, ResetCode.CANCELLED);
  }

  close(): void {
    for (const l of this.lanes) {
      l.session.close();
      l.mux.destroy(undefined, ResetCode.CANCELLED);
    }
    this.lanes = [];
    this.state.sessions = 0;
  }
}
