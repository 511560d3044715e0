/**
 * What the popup and the options page may ask of the worker (through comlink). The pages hold
 * no tunnel state: everything goes through here.
 */
import { decodeConfigLink, encodeConfigLink } from '../../shared/config-link.ts';
import { SettingsError } from '../../shared/errors.ts';
import type { PassageApi } from '../lib/api.ts';
import { siteOf } from '../lib/pac.ts';
import type { Engine } from './engine.ts';

export function createApi(engine: Engine): PassageApi {
  const ready = () => engine.start();
  return {
    async status() {
      await ready();
      return { ...engine.status(), counters: engine.counters };
    },

    async tab(tabId) {
      await ready();
      const tab = tabId !== null ? await chrome.tabs.get(tabId).catch(() => null) : (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0] ?? null;
      const url = tab?.url ?? tab?.pendingUrl ?? null;
      const site = url ? siteOf(url) : null;
      return { id: tab?.id ?? null, url, site, proxied: site !== null && engine.rules.sites.includes(site) };
    },

    async setSite(input, on) {
      await ready();
      const site = siteOf(input);
      if (!site) throw new SettingsError('INVALID_SETTING', `"${input}" is not a site name`);
      const sites = engine.rules.sites.filter((s) => s !== site);
      if (on) sites.push(site);
      await engine.setRules({ ...engine.rules, sites: sites.sort() });
      return site;
    },

    async setEnabled(enabled) {
      await ready();
      await engine.setRules({ ...engine.rules, enabled });
    },

    async setAllSites(allSites) {
      await ready();
      await engine.setRules({ ...engine.rules, allSites });
    },

    async settings() {
      await ready();
      return engine.settings;
    },

    async saveSettings(patch) {
      await ready();
      await engine.setSettings({ ...engine.settings, ...patch });
    },

    async exportConfig() {
      await ready();
      return encodeConfigLink(engine.settings);
    },

    async importConfig(link) {
      await ready();
      await engine.setSettings({ ...engine.settings, ...decodeConfigLink(link) });
    },
  };
}
