import { describe, expect, it } from 'vitest';
import { parseBridgeConfig } from '../../server/bridge/config.ts';

const SHIPPED = 'a'.repeat(32);
const base = { listen: '127.0.0.1:0', configDir: '/tmp/x', logLevel: 'warn' };

describe('bridge options: which extensions may link', () => {
  it('by default the shipped Chromium extension and any Firefox install', () => {
    const c = parseBridgeConfig(base, SHIPPED);
    expect([...c.allowedExtensions]).toEqual([SHIPPED]);
    expect(c.allowedFirefox).toBeNull();
  });

  it('--allow-extension takes Chromium ids and Firefox UUIDs, each pinning its own browser', () => {
    const uuid = '0B7E3A52-6C1D-4F8E-9A27-5D3C1E8B4F60';
    const firefoxOnly = parseBridgeConfig({ ...base, allowExtension: [uuid] }, SHIPPED);
    expect([...firefoxOnly.allowedExtensions]).toEqual([SHIPPED]);
    expect([...firefoxOnly.allowedFirefox!]).toEqual([uuid.toLowerCase()]);
    const chromiumOnly = parseBridgeConfig({ ...base, allowExtension: ['b'.repeat(32)] }, SHIPPED);
    expect([...chromiumOnly.allowedExtensions]).toEqual(['b'.repeat(32)]);
    expect(chromiumOnly.allowedFirefox).toBeNull();
  });

  it('refuses at start-up what is neither', () => {
    for (const bad of ['q'.repeat(32), 'a'.repeat(31), '0b7e3a52-6c1d-4f8e-9a27-5d3c1e8b4f6', 'moz-extension://0b7e3a52-6c1d-4f8e-9a27-5d3c1e8b4f60', ''])
      expect(() => parseBridgeConfig({ ...base, allowExtension: [bad] }, SHIPPED)).toThrow(/--allow-extension wants/);
  });
});
