import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeConfigLink, encodeConfigLink } from '../../shared/config-link.ts';
import { SettingsError } from '../../shared/errors.ts';
import { checkSettings, checkSettingsPatch, DEFAULT_SETTINGS, edgeUrlProblem, type PassageSettings } from '../../shared/settings.ts';

const settings: fc.Arbitrary<PassageSettings> = fc.record({
  edgeUrl: fc.webUrl({ validSchemes: ['https'] }),
  authToken: fc.stringMatching(/^[\x21-\x7e]{0,40}$/),
  bridgePort: fc.integer({ min: 1, max: 65535 }),
  pairingToken: fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/),
  transport: fc.constantFrom('auto', 'webtransport', 'meek'),
  sessions: fc.integer({ min: 1, max: 8 }),
  guardWebRtc: fc.boolean(),
  meekStreaming: fc.boolean(),
  padding: fc.boolean(),
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

  it('refuses an ill-typed setting with its reason, ignores unknown fields, refuses what is not a link', () => {
    const ill: Array<[Record<string, unknown>, RegExp]> = [
      [{ bridgePort: 70000 }, /bridge port/],
      [{ sessions: 99 }, /sessions/],
      [{ transport: 'carrier-pigeon' }, /transport/],
      [{ webtransportHashes: ['abc', 'A'.repeat(64)] }, /hashes/],
      [{ webtransportRetrySeconds: 0 }, /retry/],
      [{ edgeUrl: 'http://edge.example.net/' }, /https/],
      [{ authToken: 'has space' }, /auth token/],
      [{ pairingToken: 'x;y' }, /pairing token/],
      [{ guardWebRtc: 'yes' }, /WebRTC/],
    ];
    for (const [fields, why] of ill) expect(() => decodeConfigLink(encodeConfigLink(fields as never)), JSON.stringify(fields)).toThrow(why);
    expect(decodeConfigLink(encodeConfigLink({ sessions: 3, evil: 1 } as never))).toEqual({ sessions: 3 });
    expect(() => decodeConfigLink(encodeConfigLink({}))).toThrow(/no settings/);
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

describe('one settings validator', () => {
  it('takes the defaults and any valid whole set; a missing field is named', () => {
    expect(checkSettings(DEFAULT_SETTINGS)).toEqual(DEFAULT_SETTINGS);
    fc.assert(
      fc.property(settings, (s) => {
        expect(checkSettings(s)).toEqual(s);
      }),
    );
    const { sessions: _, ...partial } = DEFAULT_SETTINGS;
    expect(() => checkSettings(partial)).toThrow(/lack sessions/);
  });

  it('throws only SettingsError on hostile input, never passes a bad value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...Object.keys(DEFAULT_SETTINGS), 'other'), fc.anything()), (data) => {
        let patch: Partial<PassageSettings>;
        try {
          patch = checkSettingsPatch(data);
        } catch (e) {
          expect(e).toBeInstanceOf(SettingsError);
          return;
        }
        // Whatever passed is usable as it is: merged into valid settings it stays valid.
        expect(checkSettings({ ...DEFAULT_SETTINGS, ...patch })).toEqual({ ...DEFAULT_SETTINGS, ...patch });
      }),
    );
    for (const notObject of [null, 1, 'x', [1]]) expect(() => checkSettingsPatch(notObject)).toThrow(SettingsError);
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
