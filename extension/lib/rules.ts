/**
 * The rules that decide which sites go through the tunnel (pure; the PAC, the popup, the options
 * page and the rule tester all use this one reading). A rule is text in one of a few forms:
 *
 *   example.org, *.example.org, domain:example.org   the site and every name under it
 *   full:www.example.org                              that one name only
 *   keyword:example                                   every name containing the word
 *
 * Names are kept in ASCII (IDN as punycode, which is what the browser hands a PAC) and shown in
 * Unicode. Exclusions use the same forms and win over everything: an excluded name is never
 * tunneled. Names the browser never proxies (localhost, IP literals) are refused.
 */
import punycode from 'punycode/punycode.js';

export type RuleKind = 'domain' | 'full' | 'keyword';

export interface Rule {
  kind: RuleKind;
  /** ASCII, lower-case: a host name, or for `keyword` a run of name characters. */
  value: string;
}

/** What the extension keeps (IndexedDB) and hands to the PAC. */
export interface Rules {
  /** Passage on or off as a whole. */
  enabled: boolean;
  /** Every site through the tunnel (except exclusions and the always-direct hosts). */
  allSites: boolean;
  /** Rules for names to tunnel, in their stored text (`ruleText`). */
  sites: string[];
  /** Rules for names never to tunnel. */
  exclusions: string[];
}

export const EMPTY_RULES: Rules = { enabled: true, allSites: false, sites: [], exclusions: [] };

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const KEYWORD = /^[a-z0-9_.-]{1,63}$/;

/** The ASCII form of a host name as typed or shown (Unicode, upper case, a trailing dot), or null. */
export function asciiHost(name: string): string | null {
  let host = name.trim().replace(/\.$/, '');
  if (!host || host.length > 253 || /[\s/?#@:[\]\\%]/.test(host)) return null;
  if (/[^\x00-\x7f]/.test(host)) {
    try {
      host = new URL(`http://${host}/`).hostname; // IDNA (UTS #46) as the browser does it
    } catch {
      return null;
    }
  }
  host = host.toLowerCase();
  if (host.length > 253 || !host.split('.').every((l) => LABEL.test(l))) return null;
  if (/^\d+(\.\d+){3}$/.test(host)) return null; // an IPv4 literal: a PAC on it would bypass the edge's resolution
  if (host === 'localhost' || host.endsWith('.localhost')) return null; // always direct in every browser
  return host;
}

/** A host name in Unicode for people (punycode labels decoded; undecodable ones left as they are). */
export function displayHost(host: string): string {
  return host
    .split('.')
    .map((label) => {
      if (!label.startsWith('xn--')) return label;
      try {
        return punycode.toUnicode(label);
      } catch {
        return label;
      }
    })
    .join('.');
}

/** The host (ASCII) of an http(s) URL or of a host name as typed; null for anything else. */
export function hostOf(input: string): string | null {
  let host = input.trim();
  if (!host) return null;
  if (host.includes('://')) {
    try {
      const url = new URL(host);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
      host = url.hostname;
    } catch {
      return null;
    }
  }
  return asciiHost(host);
}

/**
 * The site a URL or a host name stands for, as a `domain` rule stores it: no port, no leading
 * "www."; null for what cannot be a site.
 */
export function siteOf(input: string): string | null {
  return hostOf(input)?.replace(/^www\./, '') ?? null;
}

/** The hosts that never go through the tunnel: the edge itself (the worker's own fetches follow the PAC) and the bridge. */
/** A URL's host as the rules see it: an IPv6 literal without its brackets. */
export function urlHost(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

export function alwaysDirectHosts(edgeUrl: string): string[] {
  let edgeHost = '';
  try {
    edgeHost = urlHost(edgeUrl);
  } catch {
    // An unparsable edge URL is reported by the engine; the chosen sites stay protected.
  }
  return [edgeHost, '127.0.0.1', 'localhost'].filter(Boolean);
}

/** Whether any host goes through the tunnel under these rules (else the browser is left alone). */
export function tunnelsAny(rules: Rules, temporary: readonly string[] = []): boolean {
  return rules.enabled && (rules.allSites || [...rules.sites, ...temporary].some((text) => readable(text) !== null));
}

/** Why `text` is not a rule, in words for the person who typed it. */
export class RuleError extends Error {}

/** Reads a rule as a person types it or a list holds it. */
export function parseRule(text: string): Rule {
  const t = text.trim();
  const colon = /^(domain|full|keyword):(.*)$/i.exec(t);
  if (colon) {
    const kind = colon[1]!.toLowerCase() as RuleKind;
    const value = colon[2]!.trim();
    if (kind === 'keyword') {
      const word = value.toLowerCase();
      if (!KEYWORD.test(word)) throw new RuleError(`"${value}" is not a keyword (letters, digits, "-", "_" and "." only)`);
      return { kind, value: word };
    }
    const host = kind === 'full' ? asciiHost(value) : siteOf(value);
    if (!host) throw new RuleError(`"${value}" is not a site name`);
    return { kind, value: host };
  }
  const wildcard = t.startsWith('*.') ? t.slice(2) : t;
  const site = siteOf(wildcard);
  if (!site) {
    if (/^(localhost|.*\.localhost|\d+(\.\d+){3})\.?$/i.test(wildcard)) throw new RuleError(`"${t}" always goes direct: the browser never sends it through a proxy`);
    throw new RuleError(`"${t}" is not a site name (examples: example.org, *.example.org, bücher.test)`);
  }
  return { kind: 'domain', value: site };
}

/** The stored text of a rule (one spelling per rule, so a list holds it once). */
export function ruleText(rule: Rule): string {
  return rule.kind === 'domain' ? rule.value : `${rule.kind}:${rule.value}`;
}

/** A stored rule as people read it (Unicode). */
export function displayRule(text: string): string {
  const rule = parseRule(text);
  return rule.kind === 'keyword' ? ruleText(rule) : ruleText({ ...rule, value: displayHost(rule.value) });
}

/** Whether `host` (ASCII, as the browser has it) falls under `rule`. */
export function matches(host: string, rule: Rule): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (rule.kind === 'full') return h === rule.value;
  if (rule.kind === 'keyword') return h.includes(rule.value);
  return h === rule.value || h.endsWith('.' + rule.value);
}

/** Which way a name goes, and the rule (stored text) or reason that decided it. */
export interface Decision {
  tunnel: boolean;
  why: 'off' | 'always-direct' | 'excluded' | 'rule' | 'temporary' | 'every-site' | 'no-rule';
  rule: string | null;
}

/** The rule `text` stands for, or null when this version cannot read it (skipped, never guessed at). */
export function readable(text: string): Rule | null {
  try {
    return parseRule(text);
  } catch {
    return null;
  }
}

const firstMatch = (host: string, texts: readonly string[]) =>
  texts.find((t) => {
    const rule = readable(t);
    return rule !== null && matches(host, rule);
  }) ?? null;

/** The decision the PAC makes for `host` (the PAC is generated from the same rules: test/unit checks they agree). */
export function decide(host: string, rules: Rules, temporary: readonly string[] = [], alwaysDirect: readonly string[] = []): Decision {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (!rules.enabled) return { tunnel: false, why: 'off', rule: null };
  if (alwaysDirect.some((d) => d.toLowerCase() === h)) return { tunnel: false, why: 'always-direct', rule: null };
  const excluded = firstMatch(h, rules.exclusions);
  if (excluded) return { tunnel: false, why: 'excluded', rule: excluded };
  const rule = firstMatch(h, rules.sites);
  if (rule) return { tunnel: true, why: 'rule', rule };
  const temp = firstMatch(h, temporary);
  if (temp) return { tunnel: true, why: 'temporary', rule: temp };
  if (rules.allSites) return { tunnel: true, why: 'every-site', rule: null };
  return { tunnel: false, why: 'no-rule', rule: null };
}

/** `texts` read as rules, each in its stored spelling, without repeats; the ones that are not rules are left out. */
export function normalizeRules(texts: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    const rule = readable(t);
    if (rule) out.add(ruleText(rule));
  }
  return [...out].sort();
}

export interface ImportedList {
  format: 'gfwlist' | 'v2fly' | 'plain';
  sites: string[];
  exclusions: string[];
  /** Lines that hold something Passage cannot express (regular expressions, URL paths it cannot keep, includes). */
  skipped: number;
}

/** gfwlist ships base64-encoded: the decoded text when `text` is that, else `text`. */
function maybeBase64(text: string): string {
  const compact = text.replace(/\s+/g, '');
  if (compact.length < 16 || !/^[A-Za-z0-9+/]+=*$/.test(compact) || text.includes('.')) return text;
  try {
    const bytes = Uint8Array.from(atob(compact), (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return text;
  }
}

/** An AutoProxy (gfwlist) line's host, when it names one: `||host`, `|http://host/…`, `.host`, `host/path`. */
function autoProxyHost(body: string): string | null {
  let b = body;
  if (b.startsWith('||')) b = b.slice(2);
  else if (b.startsWith('|')) {
    b = b.slice(1);
    const m = /^[a-z]+:\/\/([^/:?#]+)/i.exec(b);
    if (!m) return null;
    b = m[1]!;
  } else if (b.startsWith('.')) b = b.slice(1);
  b = b.replace(/^\*\./, '').split(/[/^:?#]/)[0]!;
  if (b.includes('*')) return null;
  return siteOf(b);
}

/**
 * A rule list as published: gfwlist / AutoProxy (optionally base64), v2fly domain-list-community
 * (`domain:`, `full:`, `keyword:`, bare names; attributes and comments dropped), or one name per line.
 */
export function importList(raw: string): ImportedList {
  const text = maybeBase64(raw);
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const autoProxy = /^\[AutoProxy/i.test(lines[0] ?? '') || lines.some((l) => l.startsWith('||') || l.startsWith('@@'));
  const v2fly = !autoProxy && lines.some((l) => /^(domain|full|keyword|regexp|include):/i.test(l));
  const sites = new Set<string>();
  const exclusions = new Set<string>();
  let skipped = 0;
  for (const line of lines) {
    if (autoProxy) {
      if (line.startsWith('!') || line.startsWith('[')) continue;
      const exclude = line.startsWith('@@');
      const body = exclude ? line.slice(2) : line;
      if (body.startsWith('/') && body.endsWith('/')) {
        skipped++;
        continue;
      }
      const host = autoProxyHost(body);
      if (!host) {
        skipped++;
        continue;
      }
      (exclude ? exclusions : sites).add(host);
      continue;
    }
    const entry = line.replace(/#.*$/, '').replace(/\s+@\S+/g, '').trim();
    if (!entry) continue;
    if (v2fly && /^(regexp|include):/i.test(entry)) {
      skipped++;
      continue;
    }
    try {
      sites.add(ruleText(parseRule(entry)));
    } catch {
      skipped++;
    }
  }
  return { format: autoProxy ? 'gfwlist' : v2fly ? 'v2fly' : 'plain', sites: [...sites].sort(), exclusions: [...exclusions].sort(), skipped };
}
