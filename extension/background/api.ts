/**
 * What the popup and the options page may ask of the worker (through comlink). The pages hold
 * no tunnel state: everything goes through here.
 */
import { decodeConfigLink, encodeConfigLink } from '../../shared/config-link.ts';
import { SettingsError } from '../../shared/errors.ts';
import type { ImportSummary, PassageApi, RuleList } from '../lib/api.ts';
import { asciiHost, decide, importList, normalizeRules, parseRule, RuleError, ruleText, siteOf } from '../lib/rules.ts';
import type { Engine } from './engine.ts';

/** Rule lists from the network are small text files; a bigger answer is not a rule list. */
const MAX_RULE_LIST_BYTES = 8 * 1024 * 1024;

export function createApi(engine: Engine): PassageApi {
  const ready = () => engine.start();
  const alwaysDirect = () => {
    try {
      return [new URL(engine.settings.edgeUrl).hostname, '127.0.0.1'];
    } catch {
      return ['127.0.0.1'];
    }
  };
  const readRule = (input: string) => {
    try {
      return ruleText(parseRule(input));
    } catch (e) {
      if (e instanceof RuleError) throw new SettingsError('INVALID_SETTING', e.message);
      throw e;
    }
  };
  const addImported = async (text: string): Promise<ImportSummary> => {
    const list = importList(text);
    const before = new Set([...engine.rules.sites, ...engine.rules.exclusions]);
    const sites = normalizeRules([...engine.rules.sites, ...list.sites]);
    const exclusions = normalizeRules([...engine.rules.exclusions, ...list.exclusions]);
    await engine.setRules({ ...engine.rules, sites, exclusions });
    return {
      format: list.format,
      added: list.sites.filter((s) => !before.has(s)).length,
      excluded: list.exclusions.filter((s) => !before.has(s)).length,
      skipped: list.skipped,
    };
  };

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
      let host: string | null = null;
      try {
        host = url && /^https?:/.test(url) ? asciiHost(new URL(url).hostname) : null;
      } catch {
        host = null;
      }
      const decision = host ? decide(host, engine.rules, engine.temporary, alwaysDirect()) : null;
      return { id: tab?.id ?? null, url, site, decision, proxied: decision?.tunnel ?? false };
    },

    async setSite(input, on, list: RuleList = 'sites') {
      await ready();
      const rule = readRule(input);
      const drop = (texts: readonly string[]) => texts.filter((t) => t !== rule);
      const { rules } = engine;
      let sites = rules.sites;
      let exclusions = rules.exclusions;
      let temporary = engine.temporary;
      if (on) {
        // A rule is in one list at a time: tunneling a site ends its exclusion, and the reverse.
        [sites, exclusions, temporary] = [drop(sites), drop(exclusions), drop(temporary)];
        if (list === 'sites') sites = normalizeRules([...sites, rule]);
        else if (list === 'exclusions') exclusions = normalizeRules([...exclusions, rule]);
        else temporary = normalizeRules([...temporary, rule]);
      } else if (list === 'exclusions') exclusions = drop(exclusions);
      else [sites, temporary] = [drop(sites), drop(temporary)];
      if (temporary !== engine.temporary) await engine.setTemporary(temporary);
      await engine.setRules({ ...rules, sites, exclusions });
      return rule;
    },

    async testUrl(input) {
      await ready();
      const site = siteOf(input);
      let host: string | null = null;
      try {
        host = input.includes('://') ? asciiHost(new URL(input).hostname) : asciiHost(input);
      } catch {
        host = null;
      }
      if (!host || !site) throw new SettingsError('INVALID_SETTING', `"${input}" is not a web address or site name`);
      return { host, decision: decide(host, engine.rules, engine.temporary, alwaysDirect()) };
    },

    async importRules(text) {
      await ready();
      return addImported(text);
    },

    async importRulesFrom(url) {
      await ready();
      if (!/^https?:\/\//.test(url)) throw new SettingsError('INVALID_SETTING', 'a rule list is fetched from an http:// or https:// address');
      const res = await fetch(url, { cache: 'no-store', credentials: 'omit' });
      if (!res.ok) throw new SettingsError('INVALID_SETTING', `the rule list could not be fetched (the server answered ${res.status})`);
      const text = await res.text();
      if (text.length > MAX_RULE_LIST_BYTES) throw new SettingsError('INVALID_SETTING', 'that file is too large to be a rule list');
      return addImported(text);
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

    async connections() {
      await ready();
      return engine.connections();
    },

    async clearConnections() {
      await ready();
      engine.clearConnections();
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
