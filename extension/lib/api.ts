/**
 * The contract between the extension's pages (popup, options) and its background: what they may
 * ask (comlink calls) and the shapes of the answers. The background implements it; the pages
 * import only this, never the background's modules.
 */
import type { PassageSettings } from '../../shared/settings.ts';
import type { Rules } from './pac.ts';

export interface SiteCounters {
  up: number;
  down: number;
  streams: number;
  /** The tunnel's round trip when this site's bytes last moved. */
  rttMs: number | null;
}

export type TransportName = 'webtransport' | 'meek' | 'none';

export interface EngineStatus {
  linked: boolean;
  linkRttMs: number | null;
  linkError: string | null;
  transport: TransportName;
  transportWhy: string;
  /** How the transport carries bytes now (meek: streaming or polling, and why); null: nothing to add. */
  transportDetail: string | null;
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

export interface TabInfo {
  id: number | null;
  url: string | null;
  site: string | null;
  proxied: boolean;
}

export interface PassageApi {
  status(): Promise<EngineStatus & { counters: Record<string, SiteCounters> }>;
  /** The tab a popup is about (`?tab=ID`, or the active tab when absent). */
  tab(tabId: number | null): Promise<TabInfo>;
  /** Switches a site on or off; answers the site name the input was read as. */
  setSite(input: string, on: boolean): Promise<string>;
  setEnabled(enabled: boolean): Promise<void>;
  setAllSites(allSites: boolean): Promise<void>;
  settings(): Promise<PassageSettings>;
  saveSettings(patch: Partial<PassageSettings>): Promise<void>;
  exportConfig(): Promise<string>;
  importConfig(link: string): Promise<void>;
}
