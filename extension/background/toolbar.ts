/**
 * The toolbar button per tab: its icon's colour says whether this tab's site goes through
 * Passage (green), direct (grey), should go through but cannot now (red, with "!"), or Passage
 * is off; its title names the rule that decided.
 */
import type { EngineStatus, SiteCounters, TabInfo } from '../lib/api.ts';
import { t } from '../lib/i18n.ts';
import { currentProblem } from '../lib/problems.ts';
import { displayHost, displayRule } from '../lib/rules.ts';

export type ToolbarState = 'tunnel' | 'direct' | 'failing' | 'off';

/** The state and title for a tab (pure, so the popup's words and the button's agree). */
export function toolbarFor(s: EngineStatus, tab: TabInfo, counters: Record<string, SiteCounters>, now: number): { state: ToolbarState; title: string } {
  if (!s.rules.enabled) return { state: 'off', title: t('titleOff') };
  const site = tab.site ? displayHost(tab.site) : '';
  if (!tab.decision?.tunnel) return { state: 'direct', title: site ? t('titleDirect', site) : 'Passage' };
  const problem = currentProblem(s, tab, counters, now, displayHost);
  if (problem) return { state: 'failing', title: t('titleFailing', site, t(problem.key, ...problem.subs)) };
  const rule = tab.decision.rule ? displayRule(tab.decision.rule) : t('everySite');
  return { state: 'tunnel', title: t('titleTunnel', site, rule) };
}

export async function paintTab(tabId: number, state: ToolbarState, title: string): Promise<void> {
  const path = { 16: `icons/${state}-16.png`, 32: `icons/${state}-32.png` };
  await Promise.all([
    chrome.action.setIcon({ tabId, path }),
    chrome.action.setTitle({ tabId, title }),
    chrome.action.setBadgeText({ tabId, text: state === 'failing' ? '!' : '' }),
    chrome.action.setBadgeBackgroundColor({ tabId, color: '#be281e' }),
  ]).catch(() => undefined); // the tab may have closed meanwhile
}
