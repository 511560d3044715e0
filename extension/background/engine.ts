/**
 * The tunnel engine in the service worker: every stream the bridge opens (one per browser
 * connection) is joined to a stream on the transport to the edge, FIN and RESET carried both
 * ways. Settings and rules come from IndexedDB and are re-applied whenever the worker starts.
 */
import type { Clock } from '../../shared/clock.ts';
import type { Destination } from '../../shared/eagersocks.ts';
import { pipeStreams, type PipeEnd } from '../../shared/remux/pipe.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import { checkSettings, DEFAULT_SETTINGS, edgeUrlProblem, type PassageSettings } from '../../shared/settings.ts';
import type { ConnectionEntry, EngineStatus, SiteCounters } from '../lib/api.ts';
import { alwaysDirectHosts, decide, normalizeRules, siteOf, type Decision, type Rules } from '../lib/rules.ts';
import type { LinkState } from './bridge-link.ts';
import { DEFAULT_RULES, type SessionStore, type Store } from './store.ts';
import type { TunnelStatus } from './tunnel.ts';

/** How long byte counters wait before they are written (they change with every chunk). */
const SAVE_DELAY_MS = 2000;
/** The connection log keeps this many (memory only). */
export const CONNECTION_LOG_SIZE = 300;
/** RESET codes that say why a site could not be reached through the edge (PROTOCOL.md §2). */
const SITE_FAILURES: ReadonlySet<number> = new Set([ResetCode.UNREACHABLE, ResetCode.POLICY, ResetCode.TIMEOUT, ResetCode.CONNECTION_RESET, ResetCode.NAME_NOT_RESOLVED]);

export interface EngineDeps {
  store: Store;
  /** Applies the PAC and the WebRTC guard to the browser. */
  applyProxy(rules: Rules, bridgePort: number, edgeUrl: string, guardWebRtc: boolean, temporary: readonly string[]): Promise<unknown>;
  /** Temporary rules (until the browser restarts); none kept when absent. */
  session?: SessionStore;
  /** The link to the bridge; it hands every browser connection to `onStream`. */
  link(onStream: (stream: MuxStream) => void): { connect(port: number, token: string): void; readonly state: LinkState };
  /** The transports to the edge for these settings. */
  tunnel(settings: PassageSettings): { open(destination: Destination): PipeEnd; readonly rttMs: number | null; status(): TunnelStatus; close(): void };
  clock: Clock;
}

export class Engine {
  settings: PassageSettings = DEFAULT_SETTINGS;
  rules: Rules = DEFAULT_RULES;
  /** Rules until the browser restarts. */
  temporary: string[] = [];
  counters: Record<string, SiteCounters> = {};
  private tunnel: ReturnType<EngineDeps['tunnel']> | null = null;
  private transportKey = '';
  private readonly link: ReturnType<EngineDeps['link']>;
  private started: Promise<void> | null = null;
  private settingsError: string | null = null;
  private booted = false;
  private proxyError: string | null = null;
  private openStreams = 0;
  private saveTimer: unknown = null;
  /** Called when what the toolbar shows may have changed (rules, a site's failure). */
  onChange: (() => void) | null = null;
  /** Newest last; at most CONNECTION_LOG_SIZE. */
  private log: ConnectionEntry[] = [];
  /** Open tunneled connections by host, so that a rule change ends the ones it sends direct. */
  private readonly live = new Map<{ host: string }, () => void>();

  constructor(private readonly deps: EngineDeps) {
    this.link = deps.link((s) => this.onBrowserStream(s));
  }

  /** Idempotent: loads state, applies the PAC, links to the bridge. Called by every wake-up event. */
  start(): Promise<void> {
    this.started ??= this.boot().catch((e) => {
      this.started = null;
      this.settingsError = `could not read settings: ${(e as Error).message}`;
    });
    return this.started;
  }

  private async boot(): Promise<void> {
    const { store } = this.deps;
    const [settings, rules, counters, temporary] = await Promise.all([store.load('settings'), store.load('rules'), store.load('counters'), this.deps.session?.loadTemporary() ?? []]);
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.rules = { ...DEFAULT_RULES, ...rules };
    this.temporary = normalizeRules(temporary);
    this.counters = counters ?? {};
    this.settingsError = null;
    this.booted = true;
    await this.apply();
  }

  /** Re-applies the PAC and (re)links after any change of rules or settings. */
  async apply(): Promise<void> {
    try {
      await this.deps.applyProxy(this.rules, this.settings.bridgePort, this.settings.edgeUrl, this.settings.guardWebRtc, this.temporary);
      this.proxyError = null;
    } catch (e) {
      this.proxyError = `could not apply the proxy settings: ${(e as Error).message}`;
    }
    this.link.connect(this.settings.bridgePort, this.settings.pairingToken);
    const s = this.settings;
    // Every setting the tunnel reads: a change of any of them takes effect at once.
    const key = JSON.stringify([s.edgeUrl, s.authToken, s.sessions, s.transport, s.webtransportHashes, s.webtransportRetrySeconds, s.meekStreaming, s.padding]);
    if (key !== this.transportKey) {
      this.tunnel?.close();
      this.tunnel = edgeUrlProblem(s.edgeUrl) ? null : this.deps.tunnel(s);
      this.transportKey = key;
    }
  }

  /** The stored settings and rules are in force (false before the first read, and while it fails). */
  get loaded(): boolean {
    return this.booted;
  }

  /** Browser connections open through the tunnel now. */
  get busy(): boolean {
    return this.openStreams > 0;
  }

  noteProxyError(details: string): void {
    this.proxyError = details;
  }

  private onBrowserStream(browser: MuxStream): void {
    const tunnel = this.tunnel;
    const { host, port } = browser.destination;
    const site = this.siteFor(host);
    const entry: ConnectionEntry = { at: this.deps.clock.now(), site, host, port, transport: tunnel?.status().transport ?? 'none', up: 0, down: 0, outcome: 'open', code: null, by: null };
    this.record(entry);
    const refuse = () => {
      // No transport can take it now (none configured, WebTransport only and down, meek out of streams).
      Object.assign(entry, { outcome: 'reset', code: ResetCode.UNREACHABLE, by: 'edge' });
      browser.reset(ResetCode.UNREACHABLE);
    };
    if (!tunnel) return refuse();
    let toEdge: PipeEnd;
    try {
      toEdge = tunnel.open(browser.destination);
    } catch {
      return refuse();
    }
    const counter = (this.counters[site] ??= { up: 0, down: 0, streams: 0, rttMs: null });
    counter.streams++;
    this.openStreams++;
    const key = { host };
    let closed = false;
    const close = (code: number | null, by: 'a' | 'b' | null) => {
      if (closed) return;
      closed = true;
      this.openStreams--;
      this.live.delete(key);
      entry.outcome = code === null ? 'closed' : 'reset';
      entry.code = code;
      entry.by = by === 'b' ? 'edge' : by === 'a' ? 'browser' : null;
      // The edge's reason for a site stays until bytes from it come through again.
      if (by === 'b' && code !== null && SITE_FAILURES.has(code)) {
        counter.failure = { code, at: entry.at };
        this.onChange?.();
      }
    };
    // Ended here (its rule gone): both sides are reset, which the pipe does not hear about itself.
    this.live.set(key, () => {
      browser.reset(ResetCode.CANCELLED);
      toEdge.reset(ResetCode.CANCELLED);
      close(ResetCode.CANCELLED, null);
    });
    pipeStreams(browser, toEdge, {
      onBytes: (up, down) => {
        counter.up += up;
        counter.down += down;
        entry.up += up;
        entry.down += down;
        // Bytes from the site again: the proxy error, and the edge's last refusal of this site, are over.
        if (down > 0) {
          this.proxyError = null;
          counter.failure = null;
        }
        counter.rttMs = tunnel.rttMs;
        this.scheduleSave();
      },
      onClose: close,
    });
  }

  private record(entry: ConnectionEntry): void {
    this.log.push(entry);
    if (this.log.length > CONNECTION_LOG_SIZE) this.log.splice(0, this.log.length - CONNECTION_LOG_SIZE);
  }

  /** The connection log, newest first. */
  connections(): ConnectionEntry[] {
    return this.log.map((e) => ({ ...e })).reverse();
  }

  clearConnections(): void {
    this.log = [];
  }

  /** Where `host` goes now, and by which rule: what the PAC in force decides. */
  decide(host: string): Decision {
    return decide(host, this.rules, this.temporary, alwaysDirectHosts(this.settings.edgeUrl));
  }

  /** What a connection counts under: the rule that sent it through, else its site. */
  private siteFor(host: string): string {
    const h = host.toLowerCase();
    return this.decide(h).rule ?? siteOf(h) ?? h;
  }

  private scheduleSave(): void {
    this.saveTimer ??= this.deps.clock.setTimeout(() => {
      this.saveTimer = null;
      void this.deps.store.save('counters', this.counters).catch(() => undefined);
    }, SAVE_DELAY_MS);
  }

  status(): EngineStatus {
    const t = this.tunnel?.status();
    let bytesUp = 0;
    let bytesDown = 0;
    for (const c of Object.values(this.counters)) {
      bytesUp += c.up;
      bytesDown += c.down;
    }
    return {
      linked: this.link.state.linked,
      linkRttMs: this.link.state.rttMs,
      linkError: this.link.state.error,
      transport: t?.transport ?? 'none',
      transportWhy: t?.why ?? edgeUrlProblem(this.settings.edgeUrl) ?? 'no edge configured',
      transportDetail: t?.detail ?? null,
      edgeReachable: t?.reachable ?? null,
      edgeError: t?.error ?? null,
      linkProblem: this.link.state.linked ? null : this.link.state.problem,
      edgeProblem: t?.problem ?? null,
      webtransportFallback: t?.fallback ?? false,
      transportChoice: this.settings.transport,
      rttMs: t?.rttMs ?? null,
      bytesUp,
      bytesDown,
      openStreams: this.openStreams,
      rules: this.rules,
      temporary: this.temporary,
      settingsError: this.settingsError,
      proxyError: this.proxyError,
    };
  }

  async setRules(rules: Rules): Promise<void> {
    this.rules = rules;
    await this.deps.store.save('rules', rules);
    await this.apply();
    this.endUntunneled();
    this.onChange?.();
  }

  async setTemporary(temporary: string[]): Promise<void> {
    this.temporary = normalizeRules(temporary);
    await this.deps.session?.saveTemporary(this.temporary);
    await this.apply();
    this.endUntunneled();
  }

  /** What the rules no longer send through the tunnel stops using it now (a switched-off site, Passage off). */
  private endUntunneled(): void {
    for (const [key, end] of [...this.live]) if (!this.decide(key.host).tunnel) end();
  }

  /** Saves settings after checking them; what this version cannot honour is refused with a reason. */
  async setSettings(settings: PassageSettings): Promise<void> {
    this.settings = checkSettings(settings);
    await this.deps.store.save('settings', this.settings);
    await this.apply();
  }
}
