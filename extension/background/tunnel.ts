/**
 * Which transport carries a new connection, and why (PROTOCOL.md §4). `auto` asks the edge what
 * it offers (discovery), tries WebTransport first — connections wait for the first handshake, at
 * most 3 s — and falls back to meek when the handshake fails or the session dies; it tries
 * WebTransport again after the configured delay, in the background, while meek carries on.
 * `webtransport` never falls back; `meek` never tries.
 *
 * Transports, discovery and the clock are passed in (TunnelDeps), so these rules are tested with
 * stand-ins under a clock the test moves; worker.ts passes the real ones.
 */
import type { Clock } from '../../shared/clock.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import { DeferredEnd } from '../../shared/remux/deferred-end.ts';
import { INITIAL_WINDOW, ResetCode } from '../../shared/remux/frame.ts';
import type { PipeEnd } from '../../shared/remux/pipe.ts';
import type { PassageSettings } from '../../shared/settings.ts';
import type { TransportName } from '../lib/api.ts';
import type { Discovery, Offer } from './discovery.ts';
import type { SessionTransport, Transport, TransportState } from './transport.ts';

/** How long a WebTransport handshake may take before meek takes over. */
export const HANDSHAKE_TIMEOUT_MS = 3000;
/** The advertised certificate hashes are fetched again this often (they rotate every ~10 days). */
export const DISCOVERY_REFRESH_MS = 24 * 60 * 60 * 1000;

export interface TunnelDeps {
  meek(settings: PassageSettings): Transport;
  webtransport(offer: Offer, settings: PassageSettings, handshakeTimeoutMs: number): SessionTransport;
  discover(settings: PassageSettings): Promise<Discovery>;
  clock: Clock;
}

export interface TunnelStatus {
  transport: TransportName;
  why: string;
  reachable: boolean | null;
  error: string | null;
  rttMs: number | null;
  detail: string | null;
  problem: TransportState['problem'];
  /** WebTransport was tried and failed (blocked, or the edge has none up): meek carries the tunnel meanwhile. */
  fallback: boolean;
}

export class Tunnel {
  private readonly meek: Transport;
  private wt: SessionTransport | null = null;
  private wtUp = false;
  /** A WebTransport attempt failed since the last success. */
  private wtFailed = false;
  /** Until the first handshake settles, new connections wait for it instead of taking meek. */
  private waiting: Array<{ end: DeferredEnd; destination: Destination }> | null = [];
  private why = 'starting';
  private retryTimer: unknown = null;
  private refreshTimer: unknown = null;
  private offer: Offer | null = null;
  private attempting = false;
  private closed = false;

  constructor(
    private readonly settings: PassageSettings,
    private readonly deps: TunnelDeps,
  ) {
    this.meek = deps.meek(settings);
    if (settings.transport === 'meek') {
      this.settle('meek: chosen in the options');
      return;
    }
    void this.attempt();
    this.scheduleRefresh();
  }

  /** Hashes rotate: ask again daily, and try again then if WebTransport is still down. */
  private scheduleRefresh(): void {
    this.refreshTimer = this.deps.clock.setTimeout(() => {
      if (this.closed) return;
      void (this.wtUp ? this.refreshOffer() : this.attempt());
      this.scheduleRefresh();
    }, DISCOVERY_REFRESH_MS);
  }

  /** Discovery, then a handshake: at start, after each retry delay, and daily while WebTransport is down. */
  private async attempt(): Promise<void> {
    if (this.attempting || this.closed || this.wtUp) return;
    this.attempting = true;
    try {
      const missing = await this.refreshOffer();
      if (this.closed || this.wtUp) return;
      if (!missing) await this.tryWebTransport();
      // The edge said it has none: meek until the daily check says otherwise.
      else if (missing.edgeSaidNo) this.settle(`${this.settings.transport === 'auto' ? 'meek: ' : ''}${missing.why}`);
      else this.fallBack(`WebTransport unknown: ${missing.why}`);
    } finally {
      this.attempting = false;
    }
  }

  /** Asks the edge for its WebTransport URL and hashes; what is missing when there is no offer. */
  private async refreshOffer(): Promise<{ why: string; edgeSaidNo: boolean } | null> {
    const result = await this.deps.discover(this.settings);
    if (result.offer) this.offer = result.offer;
    // Not being able to ask keeps an earlier offer; the edge saying "none" withdraws it.
    else if (result.edgeSaidNo) this.offer = null;
    return this.offer ? null : { why: result.why, edgeSaidNo: result.edgeSaidNo };
  }

  private async tryWebTransport(): Promise<void> {
    const offer = this.offer;
    if (!offer || this.closed || this.wt) return;
    const wt = this.deps.webtransport(offer, this.settings, HANDSHAKE_TIMEOUT_MS);
    this.wt = wt;
    try {
      await wt.ready;
    } catch (e) {
      if (this.wt === wt) this.wt = null;
      return this.fallBack(`WebTransport failed: ${(e as Error).message}`);
    }
    if (this.closed || this.wt !== wt) return wt.close();
    this.wtUp = true;
    this.wtFailed = false;
    this.settle(`WebTransport: QUIC to ${new URL(offer.url).host}`);
    void wt.closed.then((reason) => {
      if (this.wt !== wt || this.closed) return;
      this.wt = null;
      this.wtUp = false;
      this.fallBack(`WebTransport session ended: ${reason}`);
    });
  }

  private fallBack(reason: string): void {
    if (this.closed) return;
    this.wtFailed = true;
    const retryS = this.settings.webtransportRetrySeconds;
    const auto = this.settings.transport === 'auto';
    this.settle(`${auto ? 'meek: ' : ''}${reason}; trying WebTransport again in ${retryS} s`);
    if (this.retryTimer !== null) this.deps.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = null;
      void this.attempt();
    }, retryS * 1000);
  }

  /** Records the current choice and releases connections that waited for it. */
  private settle(why: string): void {
    this.why = why;
    const waiting = this.waiting;
    this.waiting = null;
    for (const w of waiting ?? []) {
      try {
        w.end.bind(this.openNow(w.destination));
      } catch {
        w.end.fail(ResetCode.UNREACHABLE);
      }
    }
  }

  private openNow(destination: Destination): PipeEnd {
    if (this.wtUp && this.wt) return this.wt.open(destination);
    if (this.settings.transport === 'webtransport') throw new Error(this.why);
    return this.meek.open(destination);
  }

  /** A pipe end toward `destination` on the chosen transport; throws when there is none. */
  open(destination: Destination): PipeEnd {
    if (this.waiting) {
      const end = new DeferredEnd(INITIAL_WINDOW);
      this.waiting.push({ end, destination });
      return end;
    }
    return this.openNow(destination);
  }

  /** The transport now carrying new connections, or null when none can. */
  private get active(): TransportState | null {
    if (this.wtUp && this.wt) return this.wt.state;
    return this.settings.transport === 'webtransport' ? null : this.meek.state;
  }

  /** Its round trip (read for every chunk a site moves, so no status object is built for it). */
  get rttMs(): number | null {
    return this.active?.rttMs ?? null;
  }

  status(): TunnelStatus {
    const active = this.active;
    return {
      transport: this.wtUp ? 'webtransport' : active ? 'meek' : 'none',
      why: this.why,
      reachable: active?.reachable ?? null,
      error: active?.error ?? null,
      rttMs: active?.rttMs ?? null,
      detail: active?.detail ?? null,
      problem: active?.problem ?? null,
      fallback: !this.wtUp && this.wtFailed,
    };
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) this.deps.clock.clearTimeout(this.retryTimer);
    if (this.refreshTimer !== null) this.deps.clock.clearTimeout(this.refreshTimer);
    this.retryTimer = this.refreshTimer = null;
    for (const w of this.waiting ?? []) w.end.fail(ResetCode.CANCELLED);
    this.waiting = null;
    this.wt?.close();
    this.meek.close();
  }
}
