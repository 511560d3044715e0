import { describe, expect, it } from 'vitest';
import { ConfigError, EDGE_DEFAULTS, parseEdgeConfig, parseHostPort, type EdgeOptionValues } from '../../server/edge/config.ts';

const base: EdgeOptionValues = { ...EDGE_DEFAULTS };
const parse = (over: Partial<EdgeOptionValues>, env: Record<string, string> = {}) => parseEdgeConfig({ ...base, ...over }, env);

describe('edge config', () => {
  it('has the documented defaults', () => {
    const c = parse({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, mode: 'remux', path: '/', maxBody: 262144, holdoffMs: 50, idleTimeoutMs: 120_000, maxSessions: 1000, maxStreams: 256, dialTimeoutMs: 10_000, allowPrivate: false, authToken: null, tls: null });
  });

  it('parses host:port forms and port 0', () => {
    expect(parseHostPort('[::1]:0', 'x', true)).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('example.org:443', 'x', false)).toEqual({ host: 'example.org', port: 443 });
    for (const bad of ['nohost', ':80', 'a:65536', '::1:80', 'a:b']) expect(() => parseHostPort(bad, 'x', true)).toThrow(ConfigError);
    expect(() => parseHostPort('a:0', 'x', false)).toThrow(ConfigError);
  });

  it('refuses a non-loopback listener without a token unless told it is insecure', () => {
    expect(() => parse({ listen: '0.0.0.0:8080' })).toThrow(/auth-token/);
    expect(parse({ listen: '0.0.0.0:8080', insecureNoAuth: true }).authToken).toBeNull();
    expect(parse({ listen: '0.0.0.0:8080' }, { PASSAGE_AUTH_TOKEN: 'from-the-env' }).authToken).toBe('from-the-env');
    expect(parse({ listen: '[::1]:1' }).host).toBe('::1');
  });

  it('rejects values it cannot honour, loudly', () => {
    const bad: Array<Partial<EdgeOptionValues>> = [
      { mode: 'fast' },
      { mode: 'raw' },
      { upstream: '127.0.0.1:1' },
      { path: 'meek' },
      { path: '/meek' },
      { maxBody: '1000' },
      { maxBody: '99999999999' },
      { holdoff: '-1' },
      { idleTimeout: '0' },
      { maxStreams: '70000' },
      { dialTimeout: 'soon' },
      { authToken: 'short' },
      { cert: '/nonexistent' },
      { cert: '/nonexistent', key: '/nonexistent' },
      { logLevel: 'loud' },
      { testResolve: ['nameonly'] },
      { testDropEvery: '1' },
    ];
    for (const over of bad) expect(() => parse(over), JSON.stringify(over)).toThrow(ConfigError);
  });

  it('takes raw mode with an upstream and test-only overrides', () => {
    const c = parse({ mode: 'raw', upstream: '127.0.0.1:9', testResolve: ['Blocked.Test=127.0.0.1'], testDropEvery: '4' });
    expect(c.upstream).toEqual({ host: '127.0.0.1', port: 9 });
    expect(c.testResolve.get('blocked.test')).toBe('127.0.0.1');
    expect(c.testDropEvery).toBe(4);
  });
});
