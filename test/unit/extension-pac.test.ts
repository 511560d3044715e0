import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import vm from 'node:vm';
import { buildPac, coveredBy, siteOf, type Rules } from '../../extension/lib/pac.ts';

const bridge = { host: '127.0.0.1', port: 8081 };
const alwaysDirect = ['edge.example.net', '127.0.0.1'];

/** Runs the PAC the way a browser would: a sandbox with only FindProxyForURL's arguments. */
function evaluate(pac: string, host: string): string {
  const ctx = vm.createContext({});
  vm.runInContext(pac, ctx);
  return vm.runInContext(`FindProxyForURL(${JSON.stringify('https://' + host + '/')}, ${JSON.stringify(host)})`, ctx) as string;
}

const rules = (over: Partial<Rules>): Rules => ({ enabled: true, allSites: false, sites: [], ...over });

describe('PAC generator', () => {
  it('proxies a site and its subdomains through the bridge alone, everything else DIRECT', () => {
    const pac = buildPac({ rules: rules({ sites: ['blocked.test'] }), bridge, alwaysDirect })!;
    expect(evaluate(pac, 'blocked.test')).toBe('PROXY 127.0.0.1:8081');
    expect(evaluate(pac, 'www.blocked.test')).toBe('PROXY 127.0.0.1:8081');
    expect(evaluate(pac, 'a.b.blocked.test')).toBe('PROXY 127.0.0.1:8081');
    expect(evaluate(pac, 'BLOCKED.TEST.')).toBe('PROXY 127.0.0.1:8081');
    expect(evaluate(pac, 'notblocked.test')).toBe('DIRECT');
    expect(evaluate(pac, 'blocked.test.evil.com')).toBe('DIRECT');
    expect(evaluate(pac, 'open.test')).toBe('DIRECT');
    expect(pac).not.toMatch(/PROXY [^"]*;\s*DIRECT|dnsResolve/);
  });

  it('keeps the edge and the bridge DIRECT even in all-sites mode', () => {
    const pac = buildPac({ rules: rules({ allSites: true }), bridge, alwaysDirect })!;
    expect(evaluate(pac, 'anything.org')).toBe('PROXY 127.0.0.1:8081');
    expect(evaluate(pac, 'edge.example.net')).toBe('DIRECT');
    expect(evaluate(pac, '127.0.0.1')).toBe('DIRECT');
  });

  it('is null (proxy cleared) when off or when nothing is chosen', () => {
    expect(buildPac({ rules: rules({ enabled: false, sites: ['a.test'] }), bridge, alwaysDirect })).toBeNull();
    expect(buildPac({ rules: rules({}), bridge, alwaysDirect })).toBeNull();
  });

  it('agrees with coveredBy for any host, and hostile site strings cannot inject code', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 5 }), fc.domain(), (raw, host) => {
        const pac = buildPac({ rules: rules({ sites: [...raw, 'example.com'] }), bridge, alwaysDirect: [] })!;
        const sites = [...raw, 'example.com'].map(siteOf).filter((s): s is string => s !== null);
        const want = sites.some((s) => coveredBy(host, s)) ? 'PROXY 127.0.0.1:8081' : 'DIRECT';
        expect(evaluate(pac, host)).toBe(want);
      }),
      { numRuns: 200 },
    );
    const pac = buildPac({ rules: rules({ sites: ['"];evil();//.test', 'ok.test'] }), bridge, alwaysDirect: [] })!;
    expect(pac).not.toContain('evil()');
  });

  it('turns what a user types or a tab shows into a site', () => {
    expect(siteOf('https://www.Example.org:8443/path?q')).toBe('example.org');
    expect(siteOf('news.example.org.')).toBe('news.example.org');
    expect(siteOf('blocked.test')).toBe('blocked.test');
    for (const bad of ['', 'http://', '1.2.3.4', '[::1]', 'a b.test', 'chrome://settings', '-bad-.test']) expect(siteOf(bad), bad).toBeNull();
  });
});
