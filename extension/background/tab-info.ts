/** A tab as the popup, the toolbar and the shortcut see it: its site and where its host goes now. */
import type { TabInfo } from '../lib/api.ts';
import { hostOf, siteOf } from '../lib/rules.ts';
import type { Engine } from './engine.ts';

export function tabInfo(engine: Pick<Engine, 'decide'>, tab: chrome.tabs.Tab | null): TabInfo {
  const url = tab?.url ?? tab?.pendingUrl ?? null;
  const site = url ? siteOf(url) : null;
  const host = url ? hostOf(url) : null;
  const decision = host ? engine.decide(host) : null;
  return { id: tab?.id ?? null, url, site, decision, proxied: decision?.tunnel ?? false };
}
