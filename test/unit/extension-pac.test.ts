/** The rules module and the PAC built from it: the same decision for every host, fast with 10,000 rules, and nothing a rule says can inject code. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import vm from 'node:vm';
import { buildPac } from '../../extension/lib/pac.ts';
import { EMPTY_RULES, decide, displayHost, displayRule, importList, matches, normalizeRules, parseRule, RuleError, ruleText, siteOf, type Rules } from '../../extension/lib/rules.ts';

const bridge = { host: '127.0.0.1', port: 8081 };
const alwaysDirect = ['edge.example.net', '127.0.0.1'];
const PROXY = 'PROXY 127.0.0.1:8081';

/** Runs the PAC the way a browser would: a sandbox with only FindProxyForURL's arguments. */
function pacOf(pac: string): (host: string) => string {
  const ctx = vm.createContext({});
  vm.runInContext(pac, ctx);
  const find = vm.runInContext('FindProxyForURL', ctx) as (url: string, host: string) => string;
  return (host) => find(`https://${host}/`, host);
}

const rules = (over: Partial<Rules>): Rules => ({ ...EMPTY_RULES, ...over });

describe('rules', () => {
  it('reads what people type: a site, *.site, domain:, full:, keyword:, URLs, Unicode names', () => {
    expect(parseRule('example.org')).toEqual({ kind: 'domain', value: 'example.org' });
    expect(parseRule('*.Example.org')).toEqual({ kind: 'domain', value: 'example.org' });
    expect(parseRule('https://www.example.org:8443/path?q')).toEqual({ kind: 'domain', value: 'example.org' });
    expect(parseRule('domain:news.example.org.')).toEqual({ kind: 'domain', value: 'news.example.org' });
    expect(parseRule('full:www.example.org')).toEqual({ kind: 'full', value: 'www.example.org' });
    expect(parseRule('keyword:Tube')).toEqual({ kind: 'keyword', value: 'tube' });
    expect(parseRule('bücher.test')).toEqual({ kind: 'domain', value: 'xn--bcher-kva.test' });
    expect(parseRule('.рф'.slice(1))).toEqual({ kind: 'domain', value: 'xn--p1ai' });
    expect(displayRule('xn--bcher-kva.test')).toBe('bücher.test');
    expect(displayRule('full:xn--p1ai')).toBe('full:рф');
    expect(displayHost('www.xn--p1ai')).toBe('www.рф');
  });

  it('refuses what is no rule, and what the browser always sends direct, with words saying why', () => {
    for (const bad of ['', 'http://', 'a b.test', 'chrome://settings', '-bad-.test', 'keyword:a b', 'full:', '*.', 'exa*mple.org'])
      expect(() => parseRule(bad), bad).toThrow(RuleError);
    for (const direct of ['localhost', 'app.localhost', '127.0.0.1', '10.1.2.3']) expect(() => parseRule(direct), direct).toThrow(/always goes direct/);
    expect(() => parseRule('[::1]')).toThrow(RuleError);
    expect(siteOf('1.2.3.4')).toBeNull();
  });

  it('decides: off, always direct, exclusions over everything, then rules, temporary rules, every-site mode', () => {
    const r = rules({ sites: ['example.org', 'keyword:tube'], exclusions: ['full:ads.example.org'] });
    expect(decide('www.example.org', r)).toEqual({ tunnel: true, why: 'rule', rule: 'example.org' });
    expect(decide('ads.example.org', r)).toEqual({ tunnel: false, why: 'excluded', rule: 'full:ads.example.org' });
    expect(decide('mytube.test', r)).toEqual({ tunnel: true, why: 'rule', rule: 'keyword:tube' });
    expect(decide('other.test', r, ['other.test'])).toEqual({ tunnel: true, why: 'temporary', rule: 'other.test' });
    expect(decide('other.test', r)).toEqual({ tunnel: false, why: 'no-rule', rule: null });
    expect(decide('other.test', { ...r, allSites: true })).toEqual({ tunnel: true, why: 'every-site', rule: null });
    expect(decide('ads.example.org', { ...r, allSites: true }).tunnel).toBe(false);
    expect(decide('edge.example.net', { ...r, allSites: true }, [], alwaysDirect)).toEqual({ tunnel: false, why: 'always-direct', rule: null });
    expect(decide('www.example.org', { ...r, enabled: false })).toEqual({ tunnel: false, why: 'off', rule: null });
  });

  it('keeps one spelling of each rule', () => {
    expect(normalizeRules(['*.b.test', 'b.test', 'www.b.test', 'B.TEST.', 'not a rule', 'full:x.test'])).toEqual(['b.test', 'full:x.test']);
    fc.assert(fc.property(fc.domain(), (d) => normalizeRules([ruleText(parseRule(d))]).length === 1));
  });
});

describe('PAC generator', () => {
  it('proxies a site and its subdomains through the bridge alone, everything else DIRECT', () => {
    const find = pacOf(buildPac({ rules: rules({ sites: ['blocked.test'] }), bridge, alwaysDirect })!);
    for (const h of ['blocked.test', 'www.blocked.test', 'a.b.blocked.test', 'BLOCKED.TEST.']) expect(find(h), h).toBe(PROXY);
    for (const h of ['notblocked.test', 'blocked.test.evil.com', 'open.test']) expect(find(h), h).toBe('DIRECT');
    expect(buildPac({ rules: rules({ sites: ['blocked.test'] }), bridge, alwaysDirect })).not.toMatch(/PROXY [^"]*;\s*DIRECT|dnsResolve/);
  });

  it('keeps the edge and the bridge DIRECT even in all-sites mode, and exclusions too', () => {
    const find = pacOf(buildPac({ rules: rules({ allSites: true, exclusions: ['bank.test'] }), bridge, alwaysDirect })!);
    expect(find('anything.org')).toBe(PROXY);
    expect(find('edge.example.net')).toBe('DIRECT');
    expect(find('127.0.0.1')).toBe('DIRECT');
    expect(find('www.bank.test')).toBe('DIRECT');
  });

  it('is null (proxy cleared) when off or when nothing is chosen', () => {
    expect(buildPac({ rules: rules({ enabled: false, sites: ['a.test'] }), bridge, alwaysDirect })).toBeNull();
    expect(buildPac({ rules: rules({ exclusions: ['a.test'] }), bridge, alwaysDirect })).toBeNull();
    expect(buildPac({ rules: rules({}), bridge, alwaysDirect, temporary: ['t.test'] })).not.toBeNull();
  });

  it('decides exactly as decide() for any rules and host, and hostile rule strings cannot inject code', () => {
    const label = fc.stringMatching(/^[a-z0-9]{1,6}$/);
    const host = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
    const ruleArb = fc.oneof(
      host,
      host.map((h) => `*.${h}`),
      host.map((h) => `full:${h}`),
      label.map((w) => `keyword:${w}`),
      fc.constantFrom('__proto__', 'constructor', 'full:__proto__', 'keyword:__proto__', 'localhost'),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 8 }), fc.array(ruleArb, { maxLength: 3 }), fc.array(ruleArb, { maxLength: 2 }), fc.boolean(), fc.oneof(host, fc.domain(), fc.constant('__proto__')), (sites, exclusions, temporary, allSites, h) => {
        const r = rules({ sites, exclusions, allSites });
        const pac = buildPac({ rules: r, bridge, alwaysDirect: [], temporary });
        const want = decide(h, r, temporary).tunnel ? PROXY : 'DIRECT';
        expect(pac === null ? 'DIRECT' : pacOf(pac)(h)).toBe(want);
      }),
      { numRuns: 300 },
    );
    const pac = buildPac({ rules: rules({ sites: ['"];evil();//.test', 'ok.test', 'keyword:");evil("'] }), bridge, alwaysDirect: [] })!;
    expect(pac).not.toContain('evil');
  });

  it('stays a lookup per label with 10,000 rules', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => `site${i}.example${i % 97}.test`);
    const pac = buildPac({ rules: rules({ sites: many, exclusions: ['full:site5.example5.test'] }), bridge, alwaysDirect })!;
    const find = pacOf(pac);
    expect(find('www.site9999.example8.test')).toBe(PROXY);
    expect(find('site5.example5.test')).toBe('DIRECT');
    expect(find('site10000.example9.test')).toBe('DIRECT');
    expect(pac.length).toBeLessThan(1024 * 1024);
  });
});

describe('rule lists', () => {
  it('reads gfwlist / AutoProxy, plain and base64, with exceptions; regular expressions are counted as skipped', () => {
    const list = ['[AutoProxy 0.2.9]', '! comment', '||blocked.test', '|https://www.news.test/path', '.cdn.test', 'plain.test/some/path', '@@||ok.blocked.test', '/^https?:\\/\\/[^\\/]+example\\.test/', '||bücher.test'].join('\n');
    const want = { format: 'gfwlist', sites: ['blocked.test', 'cdn.test', 'news.test', 'plain.test', 'xn--bcher-kva.test'], exclusions: ['ok.blocked.test'], skipped: 1 };
    expect(importList(list)).toEqual(want);
    const base64 = btoa(String.fromCharCode(...new TextEncoder().encode(list))).replace(/(.{64})/g, '$1\n');
    expect(importList(base64)).toEqual(want);
  });

  it('reads v2fly domain-list-community: domain:, full:, keyword:, bare names, attributes and comments; regexp: and include: skipped', () => {
    const list = ['# a comment', 'domain:a.test', 'full:www.b.test @ads', 'keyword:tube', 'c.test # trailing', 'regexp:^x.*$', 'include:other'].join('\n');
    expect(importList(list)).toEqual({ format: 'v2fly', sites: ['a.test', 'c.test', 'full:www.b.test', 'keyword:tube'], exclusions: [], skipped: 2 });
  });

  it('reads one name per line, and survives any text', () => {
    expect(importList('a.test\nb.test\n\nnot a site\n')).toEqual({ format: 'plain', sites: ['a.test', 'b.test'], exclusions: [], skipped: 1 });
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const r = importList(text);
        for (const t of [...r.sites, ...r.exclusions]) expect(() => parseRule(t)).not.toThrow();
      }),
    );
  });

  it('matches() is the rule semantics: a domain covers its subdomains, full only itself, keyword a substring', () => {
    expect(matches('a.b.test', { kind: 'domain', value: 'b.test' })).toBe(true);
    expect(matches('ab.test', { kind: 'domain', value: 'b.test' })).toBe(false);
    expect(matches('www.b.test', { kind: 'full', value: 'b.test' })).toBe(false);
    expect(matches('xtubey.test', { kind: 'keyword', value: 'tube' })).toBe(true);
  });
});
