/**
 * What the popup says is wrong, in order: only the first that holds is shown, with its next step
 * (pure: the status and the tab in, a message key and its words out; the pages translate it).
 */
import type { EngineStatus, SiteCounters, TabInfo } from './api.ts';
import { ResetCode } from '../../shared/remux/frame.ts';

export interface Problem {
  key: string;
  subs: string[];
}

/** How long the edge's refusal of a site stays on screen without a newer connection to it. */
export const SITE_FAILURE_SHOWN_MS = 5 * 60_000;

const SITE_MESSAGES: Record<number, string> = {
  [ResetCode.POLICY]: 'problemSitePolicy',
  [ResetCode.UNREACHABLE]: 'problemSiteUnreachable',
  [ResetCode.TIMEOUT]: 'problemSiteTimeout',
  [ResetCode.CONNECTION_RESET]: 'problemSiteReset',
  [ResetCode.NAME_NOT_RESOLVED]: 'problemSiteName',
};

export function currentProblem(s: EngineStatus, tab: TabInfo | null, counters: Record<string, SiteCounters>, now: number, showSite: (ascii: string) => string): Problem | null {
  if (s.settingsError) return { key: 'problemSettings', subs: [s.settingsError] };
  const tunneled = tab?.decision?.tunnel ?? false;
  if (!s.linked) {
    if (s.linkProblem === 'not-paired') return { key: 'problemNotPaired', subs: [] };
    if (s.linkProblem === 'refused') return { key: 'problemRefused', subs: [] };
    if (s.linkProblem === 'not-running') return { key: 'problemNotRunning', subs: [] };
    if (s.linkProblem === 'closed') return { key: 'problemLinkClosed', subs: [] };
  }
  if (s.edgeProblem === 'token') return { key: 'problemEdgeToken', subs: [] };
  if (s.edgeProblem === 'unreachable' || s.edgeReachable === false) return { key: 'problemEdgeUnreachable', subs: [] };
  if (s.proxyError) return { key: 'problemProxy', subs: [s.proxyError] };
  // "WebTransport only" or "TURN only" and it failed: nothing carries the tunnel.
  if (s.transport === 'none' && s.webtransportFallback) return { key: s.transportChoice === 'turn' ? 'problemTurnOnly' : 'problemWebTransportOnly', subs: [] };
  const rule = tab?.decision?.rule ?? tab?.site ?? null;
  const failure = tunneled && rule ? counters[rule]?.failure : null;
  if (failure && now - failure.at < SITE_FAILURE_SHOWN_MS && SITE_MESSAGES[failure.code]) return { key: SITE_MESSAGES[failure.code]!, subs: [showSite(tab!.site ?? rule!)] };
  return null;
}
