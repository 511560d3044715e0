/**
 * Which transport carries a new connection, and why (PROTOCOL.md §4). `auto` asks the edge what
 * it offers (discovery) and tries its session transports in order — WebTransport, then WebRTC
 * through TURN — each handshake given at most 3 s; meek, which needs no handshake, carries the
 * tunnel whenever none of them is up. Connections wait for the first handshake tried; once it
 * fails they take meek while the next is tried, and new connections move to that one when it
 * comes up. A session that dies falls back to meek; the order is tried again after the configured
 * delay, in the background, while meek carries on. A session that is up is kept until it ends.
 * `webtransport` and `turn` use that one transport and never fall back; `meek` never tries.
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
import type { Discovery } from './discovery.ts';
import type { TurnOffer, WebTransportOffer } from './offers.ts';
import type { SessionTransport, Transport, TransportState } from './transport.ts';

/** How long a WebTransport or TURN handshake may take before the next transport is tried. */
export const HANDSHAKE_TIMEOUT_MS = 3000;
/** The edge is asked again this often: certificate hashes rotate (every ~10 days), TURN credentials expire. */
export const DISCOVERY_REFRESH_MS = 24 * 60 * 60 * 1000;

export type SessionKind = 'webtransport' | 'turn';
const LABEL: Record<SessionKind, string> = { webtransport: 'WebTransport', turn: 'TURN' };

export interface TunnelDeps {
  meek(settings: PassageSettings): Transport;
  webtransport(offer: WebTransportOffer, settings: PassageSettings, handshakeTimeoutMs: number): SessionTransport;
  turn(offer: TurnOffer, settings: PassageSettings, handshakeTimeoutMs: number): SessionTransport;
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
  /** A session transport was tried and failed (blocked, or the edge has none up): meek carries the tunnel meanwhile. */
  fallback: boolean;
}

/** What the session transports are tried in, for a transport setting. */
function orderFor(transport: PassageSettings['transport']): SessionKind[] {
  if (transport === 'auto') return ['webtransport', 'turn'];
  return transport === 'meek' ? [] : [transport];
}

export class Tunnel {
  private readonly meek: Transport;
  private readonly order: SessionKind[];
  /** The session transport carrying new connections, when one is up. */
  private up: { kind: SessionKind; transport: SessionTransport } | null = null;
  /** The one being tried now. */
  private trying: SessionTransport | null = null;
  /** A try failed since the last success. */
  private failed = false;
  /** Until the first handshake settles, new connections wait for it instead of taking meek. */
  private waiting: Array<{ end: DeferredEnd; destination: Destination }> | null = [];
  private why = 'starting';
  private retryTimer: unknown = null;
  private refreshTimer: unknown = null;
  private offers: Discovery = { webtransport: null, turn: null, unreachable: null };
  private attempting = false;
  private closed = false;

  constructor(
    private readonly settings: PassageSettings,
    private readonly deps: TunnelDeps,
  ) {
    this.meek = deps.meek(settings);
    this.order = orderFor(settings.transport);
    if (this.order.length === 0) {
      this.settle('meek: chosen in the options');
      return;
    }
    void this.attempt();
    this.scheduleRefresh();
  }

  private get fallsBack(): boolean {
    return this.settings.transport === 'auto';
  }

  /** What will be tried again, in words ("WebTransport and TURN"): what the edge last offered, or every kind when that is unknown. */
  private get tried(): string {
    const offered = this.order.filter((k) => this.offers[k]);
    return (offered.length > 0 ? offered : this.order).map((k) => LABEL[k]).join(' and ');
  }

  /** Hashes rotate and credentials expire: ask again daily, and try again then if nothing is up. */
  private scheduleRefresh(): void {
    this.refreshTimer = this.deps.clock.setTimeout(() => {
      if (this.closed) return;
      void (this.up ? this.refreshOffers() : this.attempt());
      this.scheduleRefresh();
    }, DISCOVERY_REFRESH_MS);
  }

  private async refreshOffers(): Promise<void> {
    this.offers = await this.deps.discover(this.settings);
  }

  /** Discovery, then each offered transport in order until one comes up: at start, after each retry delay, daily while none is up. */
  private async attempt(): Promise<void> {
    if (this.attempting || this.closed || this.up) return;
    this.attempting = true;
    try {
      await this.refreshOffers();
      if (this.closed || this.up) return;
      const notes: string[] = [];
      for (const kind of this.order) {
        const offer = this.offers[kind];
        if (!offer) continue;
        // After the first failure, waiting connections take meek while the next is tried.
        if (notes.length > 0 && this.fallsBack) this.settle(`meek: ${notes.join('; ')}; trying ${LABEL[kind]}`);
        const why = await this.tryOne(kind, offer);
        if (why === null || this.closed) return;
        notes.push(why);
      }
      if (notes.length > 0) return this.fallBack(notes.join('; '));
      const none = this.order.map((k) => LABEL[k]).join(' or ');
      if (this.offers.unreachable) return this.fallBack(`${none} unknown: ${this.offers.unreachable}`);
      // The edge itself said it has none of them: meek until the daily check says otherwise.
      this.settle(`${this.fallsBack ? 'meek: ' : ''}the edge offers no ${none}`);
    } finally {
      this.attempting = false;
    }
  }

  /** One handshake; null once the session is up, else why not. */
  private async tryOne(kind: SessionKind, offer: WebTransportOffer | TurnOffer): Promise<string | null> {
    const transport = kind === 'webtransport'
      ? this.deps.webtransport(offer as WebTransportOffer, this.settings, HANDSHAKE_TIMEOUT_MS)
      : this.deps.turn(offer as TurnOffer, this.settings, HANDSHAKE_TIMEOUT_MS);
    this.trying = transport;
    try {
      await transport.ready;
    } catch (e) {
      return `${LABEL[kind]} failed: ${(e as Error).message}`;
    } finally {
      if (this.trying === transport) this.trying = null;
    }
    if (this.closed) {
      transport.close();
      return null;
    }
    this.up = { kind, transport };
    this.failed = false;
    this.settle(kind === 'webtransport' ? `WebTransport: QUIC to ${new URL((offer as WebTransportOffer).url).host}` : 'TURN: WebRTC relayed by the TURN server');
    void transport.closed.then((reason) => {
      if (this.up?.transport !== transport || this.closed) return;
      this.up = null;
      this.fallBack(`${LABEL[kind]} session ended: ${reason}`);
    });
    return null;
  }

  private fallBack(reason: string): void {
    if (this.closed) return;
    this.failed = true;
    const retryS = this.settings.webtransportRetrySeconds;
    this.settle(`${this.fallsBack ? 'meek: ' : ''}${reason}; trying ${this.tried} again in ${retryS} s`);
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
    if (this.up) return this.up.transport.open(destination);
    if (!this.fallsBack && this.order.length > 0) throw new Error(this.why);
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
    if (this.up) return this.up.transport.state;
    return !this.fallsBack && this.order.length > 0 ? null : this.meek.state;
  }

  /** Its round trip (read for every chunk a site moves, so no status object is built for it). */
  get rttMs(): number | null {
    return this.active?.rttMs ?? null;
  }

  status(): TunnelStatus {
    const active = this.active;
    return {
      transport: this.up ? this.up.kind : active ? 'meek' : 'none',
      why: this.why,
      reachable: active?.reachable ?? null,
      error: active?.error ?? null,
      rttMs: active?.rttMs ?? null,
      detail: active?.detail ?? null,
      problem: active?.problem ?? null,
      fallback: !this.up && this.failed,
    };
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) this.deps.clock.clearTimeout(this.retryTimer);
    if (this.refreshTimer !== null) this.deps.clock.clearTimeout(this.refreshTimer);
    this.retryTimer = this.refreshTimer = null;
    for (const w of this.waiting ?? []) w.end.fail(ResetCode.CANCELLED);
    this.waiting = null;
    this.trying?.close();
    this.up?.transport.close();
    this.meek.close();
  }
}
