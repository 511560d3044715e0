import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeConfigLink, encodeConfigLink, type PassageSettings } from '../../shared/config-link.ts';
import { edgeUrlProblem } from '../../extension/lib/edge-url.ts';
import { SettingsError } from '../../shared/errors.ts';

const settings: fc.Arbitrary<PassageSettings> = fc.record({
  edgeUrl: fc.webUrl(),
  authToken: fc.string(),
  bridgePort: fc.integer({ min: 1, max: 65535 }),
  pairingToken: fc.string(),
  transport: fc.constantFrom('auto', 'webtransport', 'meek'),
  sessions: fc.integer({ min: 1, max: 8 }),
  guardWebRtc: fc.boolean(),
  webtransportHashes: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')), { maxLength: 4 }),
  webtransportRetrySeconds: fc.integer({ min: 1, max: 86_400 }),
});

describe('passage:// config link', () => {
  it('round-trips every setting', () => {
    fc.assert(
      fc.property(settings, (s) => {
        expect(decodeConfigLink(encodeConfigLink(s))).toEqual(s);
      }),
    );
  });

  it('drops unknown or ill-typed fields and refuses what is not a link', () => {
    const link = encodeConfigLink({
      bridgePort: 70000,
      sessions: 99,
      transport: 'carrier-pigeon',
      evil: 1,
      webtransportHashes: ['abc', 'A'.repeat(64)],
      webtransportRetrySeconds: 0,
    } as never);
    expect(decodeConfigLink(link)).toEqual({});
    for (const bad of ['', 'passage://config/', 'https://example.org', 'passage://config/!!!', 'passage://config/' + 'A'.repeat(9000)]) {
      expect(() => decodeConfigLink(bad)).toThrow(SettingsError);
    }
    fc.assert(
      fc.property(fc.string(), (junk) => {
        try {
          decodeConfigLink('passage://config/' + junk);
        } catch (e) {
          expect(e).toBeInstanceOf(SettingsError);
        }
      }),
    );
  });
});

describe('edge URL rule', () => {
  it('wants https unless the edge is on this machine', () => {
    expect(edgeUrlProblem('https://edge.example.net/m/')).toBeNull();
    expect(edgeUrlProblem('http://127.0.0.1:8080/')).toBeNull();
    expect(edgeUrlProblem('http://localhost:8080/')).toBeNull();
    expect(edgeUrlProblem('http://[::1]:8080/')).toBeNull();
    expect(edgeUrlProblem('http://edge.example.net/')).toMatch(/https/);
    expect(edgeUrlProblem('http://127.0.0.1.evil.net/')).toMatch(/https/);
    expect(edgeUrlProblem('ftp://edge.example.net/')).toMatch(/https/);
    expect(edgeUrlProblem('https://user:pw@edge.example.net/')).toMatch(/credentials/);
    expect(edgeUrlProblem('not a url')).toMatch(/not a URL/);
  });
});
