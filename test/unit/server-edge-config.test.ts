import { describe, expect, it } from 'vitest';
import { ConfigError, isLoopbackHost, parseHostPort } from '../../server/common/config-values.ts';
import { EDGE_DEFAULTS, parseEdgeConfig, type EdgeOptionValues } from '../../server/edge/config.ts';

const base: EdgeOptionValues = { ...EDGE_DEFAULTS };
const parse = (over: Partial<EdgeOptionValues>, env: Record<string, string> = {}) => parseEdgeConfig({ ...base, ...over }, env);

describe('edge config', () => {
  it('meek v2: streams live 22 s and padding is on unless told otherwise', () => {
    expect(parse({})).toMatchObject({ streamMaxMs: 22_000, padding: true });
    expect(parse({ streamMax: '5', padding: 'off' })).toMatchObject({ streamMaxMs: 5000, padding: false });
  });

  it('has the documented defaults', () => {
    const c = parse({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, mode: 'remux', path: '/', maxBody: 262144, holdoffMs: 50, idleTimeoutMs: 120_000, maxSessions: 1000, maxStreams: 256, dialTimeoutMs: 10_000, allowPrivate: false, authToken: null, tls: null });
  });

  it('parses host:port forms and port 0', () => {
    expect(parseHostPort('[::1]:0', 'x', true)).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('example.org:443', 'x', false)).toEqual({ host: 'example.org', port: 443 });
    for (const bad of ['nohost', ':80', 'a:65536', '::1:80', 'a:b', '[1::2::3]:80', 'a b:80', 'host:80 ', '']) expect(() => parseHostPort(bad, 'x', true), bad).toThrow(ConfigError);
    expect(() => parseHostPort('a:0', 'x', false)).toThrow(ConfigError);
  });

  it('refuses a non-loopback listener without a token unless told it is insecure', () => {
    expect(() => parse({ listen: '0.0.0.0:8080' })).toThrow(/auth-token/);
    expect(parse({ listen: '0.0.0.0:8080', insecureNoAuth: true }).authToken).toBeNull();
    expect(parse({ listen: '0.0.0.0:8080' }, { PASSAGE_AUTH_TOKEN: 'from-the-env' }).authToken).toBe('from-the-env');
    expect(() => parse({ listen: '0.0.0.0:8080' }, { PASSAGE_AUTH_TOKEN: '' }), 'an empty env token is no token').toThrow(/auth-token/);
    expect(parse({ listen: '0.0.0.0:8080', authToken: 'from-the-flag' }, { PASSAGE_AUTH_TOKEN: 'from-the-env' }).authToken).toBe('from-the-flag');
    expect(parse({ listen: '[::1]:1' }).host).toBe('::1');
    for (const listen of ['127.0.0.1:0', '127.9.9.9:0', 'localhost:0', '[::1]:0', '[0:0:0:0:0:0:0:1]:0']) expect(parse({ listen }).authToken, listen).toBeNull();
    for (const listen of ['[::]:0', '192.168.1.2:0', 'example.org:0', '[::ffff:127.0.0.1]:0']) expect(() => parse({ listen }), listen).toThrow(/auth-token/);
  });

  it('knows loopback listen addresses', () => {
    for (const h of ['127.0.0.1', '127.255.255.254', 'localhost', 'LOCALHOST', '::1', '0::1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '128.0.0.1', 'localhost.example', '::2', '10.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('rejects values it cannot honour, loudly', () => {
    const bad: Array<Partial<EdgeOptionValues>> = [
      { padding: 'yes' },
      { padding: '' },
      { streamMax: '0' },
      { streamMax: '301' },
      { streamMax: '2.5' },
      { mode: 'fast' },
      { mode: 'raw' },
      { upstream: '127.0.0.1:1' },
      { path: 'meek' },
      { path: '/meek' },
      { path: '//' },
      { path: '/../' },
      { path: '/a/./' },
      { path: '/m?x/' },
      { maxBody: '1000' },
      { maxBody: '99999999999' },
      { holdoff: '-1' },
      { idleTimeout: '0' },
      { maxStreams: '70000' },
      { dialTimeout: 'soon' },
      { authToken: 'short' },
      { authToken: 'has a space in it' },
      { authToken: 'line\nbreak-token' },
      { upstream: '' },
      { mode: 'raw', upstream: '127.0.0.1:0' },
      { maxBody: '1023' },
      { maxBody: String(16 * 1024 * 1024 + 1) },
      { maxBody: '1e6' },
      { maxSessions: '0' },
      { listen: '127.0.0.1:99999' },
      { listen: '127.0.0.1' },
      { cert: '/nonexistent' },
      { cert: '/nonexistent', key: '/nonexistent' },
      { logLevel: 'loud' },
      { resolve: ['nameonly'] },
      { resolve: ['a.test=not-an-ip'] },
      { resolve: ['a.test=1.2.3.4=5'] },
      { wtListen: '127.0.0.1' },
      { wtListen: '127.0.0.1:70000' },
      { wtListen: '127.0.0.1:0', mode: 'raw', upstream: '127.0.0.1:1' },
      { wtListen: '0.0.0.0:443', authToken: 'long-enough-token' },
      { wtListen: '192.0.2.1:443' },
      { wtAdvertise: 'https://a.example/' },
      { wtListen: '127.0.0.1:0', wtAdvertise: 'http://a.example/' },
      { wtListen: '127.0.0.1:0', wtAdvertise: 'https://a.example' },
      { wtListen: '127.0.0.1:0', wtAdvertise: 'https://a.example/?token=x' },
    ];
    for (const over of bad) expect(() => parse(over), JSON.stringify(over)).toThrow(ConfigError);
  });

  it('configures WebTransport only when asked, and with what it needs', () => {
    expect(parse({}).webtransport).toBeNull();
    expect(parse({ wtListen: '127.0.0.1:0' }).webtransport).toEqual({ host: '127.0.0.1', port: 0, advertise: null });
    expect(parse({ wtListen: '[::1]:4433' }).webtransport).toEqual({ host: '::1', port: 4433, advertise: null });
    const off = parse({ wtListen: '0.0.0.0:443', wtAdvertise: 'https://edge.example.net:443/m/', authToken: 'long-enough-token' });
    expect(off.webtransport).toEqual({ host: '0.0.0.0', port: 443, advertise: 'https://edge.example.net:443/m/' });
    expect(parse({ configDir: '/tmp/x' }).configDir).toBe('/tmp/x');
  });

  it('offers WebRTC through TURN only with a TURN URL and its secret; --rtc-address names one IP of this host', () => {
    const secret = { PASSAGE_TURN_SECRET: 's'.repeat(16) };
    expect(parse({}).turn).toBeNull();
    expect(parse({ turn: ['turn:turn.test:3478?transport=udp', 'turn:turn2.test'] }, secret).turn).toEqual({
      urls: ['turn:turn.test:3478?transport=udp', 'turn:turn2.test'],
      secret: 's'.repeat(16),
      ttlSeconds: 3600,
      address: null,
    });
    expect(parse({ turn: ['turn:turn.test:3478'], rtcAddress: '127.0.0.1' }, secret).turn?.address).toBe('127.0.0.1');
    expect(parse({ turn: ['turn:turn.test:3478'], rtcAddress: '::1' }, secret).turn?.address).toBe('::1');
    for (const bad of ['turn.test', '127.0.0.1:3478', '300.1.1.1', '']) expect(() => parse({ turn: ['turn:turn.test:3478'], rtcAddress: bad }, secret), bad).toThrow(/--rtc-address wants an IP address/);
    expect(() => parse({ rtcAddress: '127.0.0.1' })).toThrow(/--rtc-address only applies with --turn/);
    expect(() => parse({ turn: ['turn:turn.test:3478'] })).toThrow(/shared secret/);
    expect(() => parse({ turn: ['http://turn.test/'] }, secret)).toThrow(/--turn wants/);
    // Over TCP and TLS as well as UDP; DTLS (turns: over UDP) is not a thing browsers speak.
    for (const url of ['turns:turn.test:443', 'turns:turn.test:443?transport=tcp', 'turn:turn.test:3478?transport=tcp', 'turns:turn.test']) expect(parse({ turn: [url] }, secret).turn?.urls, url).toEqual([url]);
    for (const url of ['turns:turn.test:443?transport=udp', 'turn:turn.test:3478?transport=sctp', 'turns://turn.test']) expect(() => parse({ turn: [url] }, secret), url).toThrow(/--turn wants/);
    // The shim that carries TCP and TLS to the edge's peer is IPv4 only.
    expect(() => parse({ turn: ['turns:turn.test:443'], rtcAddress: '::1' }, secret)).toThrow(/needs an IPv4 --rtc-address/);
    expect(parse({ turn: ['turns:turn.test:443'], rtcAddress: '127.0.0.1' }, secret).turn?.address).toBe('127.0.0.1');
  });

  it('accepts the bounds it documents', () => {
    expect(parse({ maxBody: '1024' }).maxBody).toBe(1024);
    expect(parse({ maxBody: String(16 * 1024 * 1024), sessionBuffer: String(128 * 1024 * 1024) }).maxBody).toBe(16 * 1024 * 1024);
    expect(parse({ path: '/m/' }).path).toBe('/m/');
    expect(parse({ path: '/a.b/c~d/' }).path).toBe('/a.b/c~d/');
    expect(parse({ holdoff: '0' }).holdoffMs).toBe(0);
    expect(parse({ allowPrivate: true, logLevel: 'silent' })).toMatchObject({ allowPrivate: true, logLevel: 'silent' });
    expect(parse({}).resolve.size).toBe(0);
  });

  it('takes raw mode with an upstream and --resolve overrides', () => {
    const c = parse({ mode: 'raw', upstream: '127.0.0.1:9', resolve: ['Blocked.Test=127.0.0.1'] });
    expect(c.upstream).toEqual({ host: '127.0.0.1', port: 9 });
    expect(c.resolve.get('blocked.test')).toBe('127.0.0.1');
  });
});
