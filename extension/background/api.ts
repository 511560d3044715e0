/**
 * What the popup and the options page may ask of the worker (through comlink). The pages hold
 * no tunnel state: everything goes through here.
 */
import { decodeConfigLink, encodeConfigLink, type PassageSettings } from '../../shared/config-link.ts';
import { siteOf } from '../lib/pac.ts';
import type { Engine, EngineStatus } from './engine.ts';

export interface TabInfo {
  id: number | null;
  url: string | null;
  site: string | null;
  proxied: boolean;
}

export function createApi(engine: Engine) {
  const ready = () => engine.start();
  return {
    async status(): Promise<EngineStatus & { counters: Engine['counters'] }> {
      await ready();
      return { ...engine.status(), counters: engine.counters };
    },

    /** The tab a popup is about (`?tab=ID`, or the active tab when absent). */
    async tab(tabId: number | null): Promise<TabInfo> {
      await ready();
      const tab = tabId !== null ? await chrome.tabs.get(tabId).catch(() => null) : (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0] ?? null;
      const url = tab?.url ?? tab?.pendingUrl ?? null;
      const site = url ? siteOf(url) : null;
      return { id: tab?.id ?? null, url, site, proxied: site !== null && engine.rules.sites.includes(site) };
    },

    async setSite(input: string, on: boolean): Promise<string> {
      await ready();
      const site = siteOf(input);
      if (!site) throw new Error(`"${input}" is not a site name`);
      const sites = engine.rules.sites.filter((s) => s !== site);
      if (on) sites.push(site);
      await engine.setRules({ ...engine.rules, sites: sites.sort() });
      return site;
    },

    async setEnabled(enabled: boolean): Promise<void> {
      await ready();
      await engine.setRules({ ...engine.rules, enabled });
    },

    async setAllSites(allSites: boolean): Promise<void> {
      await ready();
      await engine.setRules({ ...engine.rules, allSites });
    },

    async settings(): Promise<PassageSettings> {
      await ready();
      return engine.settings;
    },

    async saveSettings(patch: Partial<PassageSettings>): Promise<void> {
      await ready();
      await engine.setSettings({ ...engine.settings, ...patch });
    },

    async exportConfig(): Promise<string> {
      await ready();
      return encodeConfigLink(engine.settings);
    },

    async importConfig(link: string): Promise<void> {
      await ready();
      await engine.setSettings({ ...engine.settings, ...decodeConfigLink(link) });
    },
  };
}

export type PassageApi = ReturnType<typeof createApi>;
