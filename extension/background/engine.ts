/**
 * The tunnel engine in the service worker: every stream the bridge opens (one per browser
 * connection) is joined to a stream on the transport to the edge, FIN and RESET carried both
 * ways. Settings and rules come from IndexedDB and are re-applied whenever the worker starts.
 */
import { pipeStreams, type PipeEnd } from '../../shared/remux/pipe.ts';
import { ResetCode } from '../../shared/remux/frame.ts';
import type { MuxStream } from '../../shared/remux/stream.ts';
import type { PassageSettings } from '../../shared/config-link.ts';
import { siteOf, coveredBy, type Rules } from '../lib/pac.ts';
import { edgeUrlProblem } from '../lib/edge-url.ts';
import { BridgeLink } from './bridge-link.ts';
import { Tunnel } from './tunnel.ts';
import { applyProxy } from './proxy-settings.ts';
import { DEFAULT_RULES, DEFAULT_SETTINGS, load, save, type SiteCounters } from './store.ts';

export interface EngineStatus {
  linked: boolean;
  linkRttMs: number | null;
  linkError: string | null;
  transport: 'webtransport' | 'meek' | 'none';
  transportWhy: string;
  edgeReachable: boolean | null;
  edgeError: string | null;
  rttMs: number | null;
  bytesUp: number;
  bytesDown: number;
  openStreams: number;
  rules: Rules;
  settingsError: string | null;
  proxyError: string | null;
}

export class Engine {
  settings: PassageSettings = DEFAULT_SETTINGS;
  rules: Rules = DEFAULT_RULES;
  counters: Record<string, SiteCounters> = {};
  private tunnel: Tunnel | null = null;
  private transportKey = '';
  private readonly link = new BridgeLink((s) => this.onBrowserStream(s));
  private started: Promise<void> | null = null;
  private settingsError: string | null = null;
  private proxyError: string | null = null;
  private openStreams = 0;
  private saveTimer: ReturnType<typeof setTimeout> | null = null;

  /** Idempotent: loads state, applies the PAC, links to the bridge. Called by every wake-up event. */
  start(): Promise<void> {
    this.started ??= this.boot().catch((e) => {
      this.started = null;
      this.settingsError = `could not read settings: ${(e as Error).message}`;
    });
    return this.started;
  }

  private async boot(): Promise<void> {
    const [settings, rules, counters] = await Promise.all([load('settings'), load('rules'), load('counters')]);
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.rules = { ...DEFAULT_RULES, ...rules };
    this.counters = counters ?? {};
    this.settingsError = null;
    await this.apply();
  }

  /** Re-applies the PAC and (re)links after any change of rules or settings. */
  async apply(): Promise<void> {
    try {
      await applyProxy(this.rules, this.settings.bridgePort, this.settings.edgeUrl, this.settings.guardWebRtc);
      this.proxyError = null;
    } catch (e) {
      this.proxyError = `could not apply the proxy settings: ${(e as Error).message}`;
    }
    this.link.connect(this.settings.bridgePort, this.settings.pairingToken);
    const s = this.settings;
    const key = JSON.stringify([s.edgeUrl, s.authToken, s.sessions, s.transport, s.webtransportHashes, s.webtransportRetrySeconds]);
    if (key !== this.transportKey) {
      this.tunnel?.close();
      this.tunnel = edgeUrlProblem(s.edgeUrl) ? null : new Tunnel(s);
      this.transportKey = key;
    }
  }

  noteProxyError(details: string): void {
    this.proxyError = details;
  }

  private onBrowserStream(browser: MuxStream): void {
    const tunnel = this.tunnel;
    if (!tunnel) return browser.reset(ResetCode.UNREACHABLE);
    let toEdge: PipeEnd;
    try {
      toEdge = tunnel.open(browser.destination);
    } catch {
      // No transport can take it now (WebTransport only and down, or meek out of streams).
      return browser.reset(ResetCode.UNREACHABLE);
    }
    const site = this.siteFor(browser.destination.host);
    const counter = (this.counters[site] ??= { up: 0, down: 0, streams: 0, rttMs: null });
    counter.streams++;
    this.openStreams++;
    pipeStreams(browser, toEdge, {
      onBytes: (up, down) => {
        counter.up += up;
        counter.down += down;
        counter.rttMs = tunnel.rttMs;
        this.scheduleSave();
      },
      onClose: () => {
        this.openStreams--;
      },
    });
  }

  private siteFor(host: string): string {
    const h = host.toLowerCase();
    return this.rules.sites.find((s) => coveredBy(h, s)) ?? siteOf(h) ?? h;
  }

  private scheduleSave(): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = null;
      void save('counters', this.counters).catch(() => undefined);
    }, 2000);
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
      edgeReachable: t?.reachable ?? null,
      edgeError: t?.error ?? null,
      rttMs: t?.rttMs ?? null,
      bytesUp,
      bytesDown,
      openStreams: this.openStreams,
      rules: this.rules,
      settingsError: this.settingsError,
      proxyError: this.proxyError,
    };
  }

  async setRules(rules: Rules): Promise<void> {
    this.rules = rules;
    await save('rules', rules);
    await this.apply();
  }

  /** Saves settings after checking them; what this version cannot honour is refused with a reason. */
  async setSettings(settings: PassageSettings): Promise<void> {
    const problem = edgeUrlProblem(settings.edgeUrl);
    if (problem) throw new Error(problem);
    if (!['auto', 'webtransport', 'meek'].includes(settings.transport)) throw new Error('the transport must be auto, webtransport or meek');
    const retry = settings.webtransportRetrySeconds;
    if (!Number.isInteger(retry) || retry < 1 || retry > 86_400) throw new Error('the WebTransport retry delay must be 1–86400 seconds');
    if (!Number.isInteger(settings.sessions) || settings.sessions < 1 || settings.sessions > 8) throw new Error('parallel sessions must be 1–8');
    if (!Number.isInteger(settings.bridgePort) || settings.bridgePort < 1 || settings.bridgePort > 65535) throw new Error('the bridge port must be 1–65535');
    this.settings = settings;
    await save('settings', settings);
    await this.apply();
  }
}
