/** The extension's answer to the bridge's 407: its credential for its own bridge, once per request, and nothing for anyone else. */
import { describe, expect, it } from 'vitest';
import { PROXY_USER } from '../../shared/bridge-credential.ts';
import { ProxyAuth } from '../../extension/background/proxy-auth.ts';

const settings = { bridgePort: 8081, pairingToken: 'paired-token-0123456789' };
const challenge = (over: Partial<{ requestId: string; isProxy: boolean; host: string; port: number }> = {}) => ({
  requestId: over.requestId ?? '1',
  isProxy: over.isProxy ?? true,
  challenger: { host: over.host ?? '127.0.0.1', port: over.port ?? 8081 },
});

describe('ProxyAuth', () => {
  it('gives its own bridge the credential the bridge checks', () => {
    expect(new ProxyAuth().answer(challenge(), settings)).toEqual({ authCredentials: { username: PROXY_USER, password: settings.pairingToken } });
    expect(PROXY_USER).toBe('passage');
    expect(new ProxyAuth().answer(challenge({ host: 'localhost' }), settings)).toMatchObject({ authCredentials: {} });
  });

  it('never answers a site, another proxy, or another port: the browser handles those', () => {
    const auth = new ProxyAuth();
    expect(auth.answer(challenge({ isProxy: false }), settings)).toEqual({});
    expect(auth.answer(challenge({ host: 'proxy.example' }), settings)).toEqual({});
    expect(auth.answer(challenge({ port: 3128 }), settings)).toEqual({});
  });

  it('answers a request once: a second challenge means a wrong token, and is cancelled instead of looping', () => {
    const auth = new ProxyAuth();
    expect(auth.answer(challenge({ requestId: '7' }), settings)).toHaveProperty('authCredentials');
    expect(auth.answer(challenge({ requestId: '7' }), settings)).toEqual({ cancel: true });
    expect(auth.answer(challenge({ requestId: '8' }), settings)).toHaveProperty('authCredentials');
    // Memory stays bounded: past a thousand ids the set starts afresh.
    for (let i = 0; i < 1000; i++) auth.answer(challenge({ requestId: `r${i}` }), settings);
    expect(auth.answer(challenge({ requestId: '7' }), settings)).toHaveProperty('authCredentials');
  });

  it('not paired yet: cancelled (the popup says why)', () => {
    expect(new ProxyAuth().answer(challenge(), { ...settings, pairingToken: '' })).toEqual({ cancel: true });
  });
});
