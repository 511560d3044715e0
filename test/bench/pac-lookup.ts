/**
 * The PAC's cost per lookup with 10,000 imported rules (what a gfwlist-sized list gives), as
 * Chromium's PAC runner would call FindProxyForURL: a V8 context of its own (node:vm), hosts
 * that match by their site, by a subdomain, by an exclusion and by nothing.
 */
import vm from 'node:vm';
import { buildPac } from '../../extension/lib/pac.ts';
import { EMPTY_RULES } from '../../extension/lib/rules.ts';

export interface PacLookupResult {
  rules: number;
  pacBytes: number;
  /** Median over rounds of the mean time of one lookup, microseconds. */
  medianMicros: number;
  p99Micros: number;
}

export function benchPacLookup(count = 10_000): PacLookupResult {
  const sites = Array.from({ length: count }, (_, i) => `site${i}.example${i % 211}.test`);
  const keywords = ['tube', 'gram', 'book'].map((k) => `keyword:${k}`);
  const pac = buildPac({
    rules: { ...EMPTY_RULES, sites: [...sites, ...keywords], exclusions: ['full:ads.site7.example7.test', 'bank.test'] },
    bridge: { host: '127.0.0.1', port: 8081 },
    alwaysDirect: ['edge.example.net', '127.0.0.1'],
  })!;
  const ctx = vm.createContext({});
  vm.runInContext(pac, ctx);
  const find = vm.runInContext('FindProxyForURL', ctx) as (url: string, host: string) => string;
  const hosts = Array.from({ length: 1000 }, (_, i) => {
    const n = (i * 7919) % count;
    return [`site${n}.example${n % 211}.test`, `a.b.c.site${n}.example${n % 211}.test`, 'ads.site7.example7.test', `nothing${i}.elsewhere.org`][i % 4]!;
  });
  for (let i = 0; i < 20_000; i++) find('', hosts[i % hosts.length]!); // warm up the JIT as a long-lived PAC runner is
  const rounds: number[] = [];
  for (let r = 0; r < 200; r++) {
    const start = process.hrtime.bigint();
    for (const h of hosts) find(`https://${h}/`, h);
    rounds.push(Number(process.hrtime.bigint() - start) / 1000 / hosts.length);
  }
  rounds.sort((a, b) => a - b);
  return { rules: count + keywords.length, pacBytes: pac.length, medianMicros: rounds[rounds.length >> 1]!, p99Micros: rounds[Math.floor(rounds.length * 0.99)]! };
}
