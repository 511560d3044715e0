/**
 * The WebTransport transport: one session to the edge over the browser's own QUIC, pinned to the
 * certificate hashes the edge advertises (PROTOCOL.md §4); every tunneled connection is one
 * bidirectional stream led by its EagerSocks header. Same surface as the meek transport: `open`
 * hands back a pipe end at once (the stream itself opens asynchronously).
 */
import { encodeDestination, type Destination } from '../../shared/eagersocks.ts';
import { DeferredEnd } from '../../shared/remux/deferred-end.ts';
import { INITIAL_WINDOW, ResetCode } from '../../shared/remux/frame.ts';
import type { PipeEnd } from '../../shared/remux/pipe.ts';
import { WebTransportStreamEnd } from './webtransport-stream.ts';

export interface WebTransportState {
  name: 'webtransport';
  reachable: boolean | null;
  rttMs: number | null;
  error: string | null;
  sessions: number;
}

const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

export class WebTransportTransport {
  readonly state: WebTransportState = { name: 'webtransport', reachable: null, rttMs: null, error: null, sessions: 0 };
  private readonly session: WebTransport;
  /** Settles with the handshake: resolves once the session is up, rejects with why it is not. */
  readonly ready: Promise<void>;
  /** Settles when an established session ends, with the reason. */
  readonly closed: Promise<string>;
  private rttTimer: ReturnType<typeof setInterval> | null = null;

  constructor(url: string, token: string, hashes: readonly string[], handshakeTimeoutMs: number) {
    const target = new URL(url);
    if (token) target.searchParams.set('token', token);
    this.session = new WebTransport(target.href, {
      serverCertificateHashes: hashes.map((h) => ({ algorithm: 'sha-256', value: hexBytes(h) })),
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.ready = Promise.race([
      this.session.ready,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no handshake within ${handshakeTimeoutMs / 1000} s`)), handshakeTimeoutMs))),
    ]).then(
      () => {
        clearTimeout(timer);
        this.state.reachable = true;
        this.state.sessions = 1;
        this.rttTimer = setInterval(() => void this.sampleRtt(), 2000);
        void this.sampleRtt();
      },
      (e: unknown) => {
        clearTimeout(timer);
        this.state.reachable = false;
        this.state.error = describe(e);
        this.close();
        throw new Error(this.state.error);
      },
    );
    this.closed = this.session.closed.then(
      (info) => `the edge closed the session${info.reason ? `: ${info.reason}` : ''}`,
      (e: unknown) => describe(e),
    );
    void this.closed.then((why) => {
      this.state.sessions = 0;
      this.state.error ??= why;
      if (this.rttTimer) clearInterval(this.rttTimer);
    });
  }

  private async sampleRtt(): Promise<void> {
    try {
      // getStats is in Chromium, not yet in TypeScript's DOM types.
      const stats = (await (this.session as WebTransport & { getStats(): Promise<{ smoothedRtt?: number }> }).getStats());
      if (typeof stats.smoothedRtt === 'number') this.state.rttMs = Math.round(stats.smoothedRtt);
    } catch {
      // no stats on a closing session
    }
  }

  /** A stream to `destination`; it resets with 0x01 if the session cannot open one. */
  open(destination: Destination): PipeEnd {
    const end = new DeferredEnd(INITIAL_WINDOW);
    const header = encodeDestination(destination);
    this.session.createBidirectionalStream().then(
      (stream) => end.bind(new WebTransportStreamEnd(stream, header)),
      () => end.fail(ResetCode.UNREACHABLE),
    );
    return end;
  }

  close(): void {
    if (this.rttTimer) clearInterval(this.rttTimer);
    try {
      this.session.close();
    } catch {
      // already closed
    }
  }
}

function describe(e: unknown): string {
  const message = (e as Error | null)?.message;
  return message ? message.replace(/^WebTransportError: /, '') : String(e);
}
