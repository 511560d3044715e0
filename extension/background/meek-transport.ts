/**
 * The meek transport in the extension: several meek sessions in parallel (each ≈ body ÷ RTT),
 * each carrying a ReMux opener; the round trip is the browser's own `fetch`, so the TLS the
 * censor sees is Chromium's. New streams go to the session with the fewest; a session that ends
 * (410, a final status, retries exhausted) resets its streams and is replaced on demand.
 */
import type { MeekRequest, MeekResponse } from '../../shared/meek/client-session.ts';
import { createMeekMux, type MeekMux } from '../../shared/meek/meek-mux.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import type { MeekError } from '../../shared/errors.ts';
import type { Transport, TransportState } from './transport.ts';


type Lane = MeekMux;

export class MeekTransport implements Transport {
  private lanes: Lane[] = [];
  readonly state: TransportState = { name: 'meek', reachable: null, rttMs: null, error: null, sessions: 0 };

  constructor(
    private readonly edgeUrl: string,
    private readonly authToken: string,
    private readonly parallel: number,
  ) {}

  private roundTrip = async (req: MeekRequest): Promise<MeekResponse> => {
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'x-session-id': req.sessionId,
      'x-meek-max-body': String(req.acceptMaxBody),
    };
    if (req.seq !== null) headers['x-meek-seq'] = String(req.seq);
    if (this.authToken) headers['x-meek-auth'] = this.authToken;
    try {
      const res = await fetch(this.edgeUrl, {
        method: 'POST',
        headers,
        body: req.body as Uint8Array<ArrayBuffer>,
        signal: req.signal as globalThis.AbortSignal,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
      const body = new Uint8Array(await res.arrayBuffer());
      const max = Number(res.headers.get('x-meek-max-body'));
      this.state.reachable = true;
      this.state.error = res.status === 200 ? null : `the edge answered ${res.status}`;
      return { status: res.status, body, serverMaxBody: Number.isFinite(max) && max > 0 ? max : null };
    } catch (e) {
      this.state.reachable = false;
      this.state.error = `edge unreachable: ${(e as Error).message}`;
      throw e;
    }
  };

  private newLane(): Lane {
    const lane: Lane = createMeekMux({
      roundTrip: this.roundTrip,
      onRoundTrip: ({ rttMs }) => (this.state.rttMs = rttMs),
      onClose: (error: MeekError) => {
        this.state.error = error.message;
        this.lanes = this.lanes.filter((l) => l !== lane);
        this.state.sessions = this.lanes.length;
      },
    });
    this.lanes.push(lane);
    this.state.sessions = this.lanes.length;
    return lane;
  }

  /** A stream to `destination` on the least busy session (a session idle long enough for the edge to end it is replaced). */
  open(destination: Destination): MuxStream {
    for (const stale of this.lanes.filter((l) => l.stale)) this.retire(stale);
    const usable = this.lanes.filter((l) => !l.session.isClosed && l.mux.canOpen);
    let lane: Lane;
    if (usable.length < this.parallel) lane = this.newLane();
    else lane = usable.reduce((a, b) => (b.mux.streamCount < a.mux.streamCount ? b : a));
    return lane.mux.open(destination);
  }

  private retire(lane: Lane): void {
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
