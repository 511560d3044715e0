/**
 * The contract between the extension's pages (popup, options) and its background: what they may
 * ask (comlink calls) and the shapes of the answers. The background implements it; the pages
 * import only this, never the background's modules.
 */
import type { PassageSettings } from '../../shared/settings.ts';
import type { Decision, Rules } from './rules.ts';

export interface SiteCounters {
  up: number;
  down: number;
  streams: number;
  /** The tunnel's round trip when this site's bytes last moved. */
  rttMs: number | null;
  /** The edge's last refusal of a connection to this site (a RESET code, PROTOCOL.md §2), until one succeeds again. */
  failure?: { code: number; at: number } | null;
}

/** One browser connection as the connection log keeps it: never a byte of payload. */
export interface ConnectionEntry {
  at: number;
  /** The rule or site it counted under, and where it went. */
  site: string;
  host: string;
  port: number;
  transport: TransportName;
  up: number;
  down: number;
  outcome: 'open' | 'closed' | 'reset';
  /** The RESET code, and which side sent it: the edge (or the tunnel) or the browser. */
  code: number | null;
  by: 'edge' | 'browser' | null;
}

export type TransportName = 'webtransport' | 'turn' | 'meek' | 'none';

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
  /** What is wrong, as codes the popup puts in words: the bridge link's, and the edge's. */
  linkProblem: 'not-paired' | 'not-running' | 'refused' | 'closed' | null;
  edgeProblem: 'unreachable' | 'token' | null;
  /** WebTransport (or TURN) failed and meek carries the tunnel meanwhile. */
  webtransportFallback: boolean;
  /** The transport the options choose (auto, or one alone). */
  transportChoice: PassageSettings['transport'];
  rttMs: number | null;
  bytesUp: number;
  bytesDown: number;
  openStreams: number;
  rules: Rules;
  /** Rules until the browser restarts. */
  temporary: string[];
  settingsError: string | null;
  proxyError: string | null;
}

export interface TabInfo {
  id: number | null;
  url: string | null;
  /** The site a rule for this tab would name (ASCII), null when it is no web site. */
  site: string | null;
  /** Where the tab's host goes now, by which rule — what the PAC decides. */
  decision: Decision | null;
  proxied: boolean;
}

/** Which list a rule goes in. */
export type RuleList = 'sites' | 'temporary' | 'exclusions';

export interface ImportSummary {
  format: 'gfwlist' | 'v2fly' | 'plain';
  /** New rules (already present ones not counted). */
  added: number;
  excluded: number;
  skipped: number;
}

export interface PassageApi {
  status(): Promise<EngineStatus & { counters: Record<string, SiteCounters> }>;
  /** The tab a popup is about (`?tab=ID`, or the active tab when absent). */
  tab(tabId: number | null): Promise<TabInfo>;
  /**
   * Puts a rule in a list (`sites` by default) or takes it out of every list it is in; answers
   * the rule as stored. A rule goes in one list at a time.
   */
  setSite(input: string, on: boolean, list?: RuleList): Promise<string>;
  /**
   * The popup's switch and the shortcut: this tab's site through the tunnel or not, whatever
   * decided it (a rule, an exclusion, every-site mode); answers the tab as it is then.
   */
  switchTab(tabId: number | null, on: boolean, temporary: boolean): Promise<TabInfo>;
  /** Where a URL or host name would go now, and by which rule. */
  testUrl(input: string): Promise<{ host: string; decision: Decision }>;
  /** A rule list's text (gfwlist, v2fly or plain) added to the rules. */
  importRules(text: string): Promise<ImportSummary>;
  /** The same, fetched from a URL first. */
  importRulesFrom(url: string): Promise<ImportSummary>;
  setEnabled(enabled: boolean): Promise<void>;
  setAllSites(allSites: boolean): Promise<void>;
  settings(): Promise<PassageSettings>;
  saveSettings(patch: Partial<PassageSettings>): Promise<void>;
  /** Requests of a tab's tunneled page that failed on hosts going direct (they may need tunneling too). */
  failedResources(tabId: number): Promise<Array<{ host: string; error: string; at: number }>>;
  /** The connection log, newest first (memory only: gone with the worker). */
  connections(): Promise<ConnectionEntry[]>;
  clearConnections(): Promise<void>;
  /** A passage:// link with what another computer needs (edge URL, WebTransport hashes, transport; the edge token only when asked) — never the pairing token. */
  exportShareLink(includeEdgeToken: boolean): Promise<string>;
  /** Imports a passage:// link; answers the settings it changed (none: nothing to import). */
  importConfig(link: string): Promise<string[]>;
  /** Every setting and rule, as a backup file's text. */
  backup(): Promise<string>;
  /** Restores a backup file; answers what it changed. */
  restore(text: string): Promise<string[]>;
}
