/**
 * What the popup and the options page may ask of the worker (through comlink). The pages hold
 * no tunnel state: everything goes through here.
 */
import { decodeConfigLink, encodeConfigLink } from '../../shared/config-link.ts';
import { checkSettingsPatch, type PassageSettings } from '../../shared/settings.ts';
import { SettingsError } from '../../shared/errors.ts';
import type { ImportSummary, PassageApi, RuleList, TabInfo } from '../lib/api.ts';
import { hostOf, importList, normalizeRules, parseRule, RuleError, ruleText, type Rules } from '../lib/rules.ts';
import type { Engine } from './engine.ts';
import type { FailedResources } from './failed-resources.ts';
import { tabInfo } from './tab-info.ts';

/** Rule lists from the network are small text files; a bigger answer is not a rule list. */
const MAX_RULE_LIST_BYTES = 8 * 1024 * 1024;

/** A backup file: every setting and rule (it holds the tokens: the page says to keep it private). */
interface BackupFile {
  passageBackup: number;
  settings: PassageSettings;
  rules: Rules;
}
const BACKUP_VERSION = 1;

export function createApi(engine: Engine, failed: FailedResources): PassageApi {
  const ready = () => engine.start();
  /** The settings in `patch` that differ from the current ones, and a commit that saves them. */
  const applySettingsLater = (patch: Partial<PassageSettings>) => {
    const keys = (Object.keys(patch) as Array<keyof PassageSettings>).filter((k) => JSON.stringify(patch[k]) !== JSON.stringify(engine.settings[k]));
    return { keys: keys as string[], commit: () => (keys.length ? engine.setSettings({ ...engine.settings, ...patch }) : Promise.resolve()) };
  };
  const applySettings = async (patch: Partial<PassageSettings>) => {
    const change = applySettingsLater(patch);
    await change.commit();
    return change.keys;
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

  const tabById = async (tabId: number | null): Promise<TabInfo> =>
    tabInfo(engine, tabId !== null ? await chrome.tabs.get(tabId).catch(() => null) : (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0] ?? null);

  const api: PassageApi = {
    async status() {
      await ready();
      return { ...engine.status(), counters: engine.counters };
    },

    async tab(tabId) {
      await ready();
      return tabById(tabId);
    },

    async switchTab(tabId, on, temporary) {
      await ready();
      const tab = await tabById(tabId);
      const d = tab.decision;
      if (!tab.site || !d || d.why === 'off' || d.why === 'always-direct' || on === d.tunnel) return tab;
      if (on) {
        // An excluded site is let through by ending its exclusion; in every-site mode that is all it needs.
        if (d.why === 'excluded') await api.setSite(d.rule!, false, 'exclusions');
        if (!engine.rules.allSites) await api.setSite(tab.site, true, temporary ? 'temporary' : 'sites');
      } else if (d.why === 'every-site') await api.setSite(tab.site, true, 'exclusions');
      else await api.setSite(d.rule ?? tab.site, false, d.why === 'temporary' ? 'temporary' : 'sites');
      return tabById(tabId);
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
      const host = hostOf(input);
      if (!host) throw new SettingsError('INVALID_SETTING', `"${input}" is not a web address or site name`);
      return { host, decision: engine.decide(host) };
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

    async failedResources(tabId) {
      await ready();
      return failed.list(tabId, (host) => engine.decide(host).tunnel);
    },

    async connections() {
      await ready();
      return engine.connections();
    },

    async clearConnections() {
      await ready();
      engine.clearConnections();
    },

    async exportShareLink(includeEdgeToken) {
      await ready();
      const s = engine.settings;
      return encodeConfigLink({
        edgeUrl: s.edgeUrl,
        transport: s.transport,
        webtransportHashes: s.webtransportHashes,
        ...(includeEdgeToken && s.authToken ? { authToken: s.authToken } : {}),
      });
    },

    async importConfig(link) {
      await ready();
      return applySettings(decodeConfigLink(link));
    },

    async backup() {
      await ready();
      const file: BackupFile = { passageBackup: BACKUP_VERSION, settings: engine.settings, rules: engine.rules };
      return JSON.stringify(file, null, 2);
    },

    async restore(text) {
      await ready();
      let file: Partial<BackupFile>;
      try {
        file = JSON.parse(text) as Partial<BackupFile>;
      } catch {
        throw new SettingsError('INVALID_SETTING', 'not a Passage backup file (it is not JSON)');
      }
      if (typeof file !== 'object' || file === null || file.passageBackup !== BACKUP_VERSION) throw new SettingsError('INVALID_SETTING', 'not a Passage backup file');
      const changed = applySettingsLater(checkSettingsPatch(file.settings ?? {}));
      const r = file.rules;
      const rules = {
        enabled: typeof r?.enabled === 'boolean' ? r.enabled : engine.rules.enabled,
        allSites: typeof r?.allSites === 'boolean' ? r.allSites : engine.rules.allSites,
        sites: Array.isArray(r?.sites) ? normalizeRules(r.sites.filter((x): x is string => typeof x === 'string')) : engine.rules.sites,
        exclusions: Array.isArray(r?.exclusions) ? normalizeRules(r.exclusions.filter((x): x is string => typeof x === 'string')) : engine.rules.exclusions,
      };
      const ruleChanges = (['enabled', 'allSites', 'sites', 'exclusions'] as const).filter((k) => JSON.stringify(rules[k]) !== JSON.stringify(engine.rules[k]));
      await changed.commit();
      if (ruleChanges.length) await engine.setRules(rules);
      return [...changed.keys, ...ruleChanges.map((k) => `rules.${k}`)];
    },
  };
  return api;
}
