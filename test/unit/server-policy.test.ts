import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isRefusedAddress, resolveAllowed } from '../../server/edge/policy.ts';

/** The refused IPv4 ranges, computed independently of the implementation's BlockList. */
function refusedV4(a: number, b: number): boolean {
  return (
    a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b < 128) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) || // 192.0.0.0/24 is checked more precisely below
    (a === 198 && (b === 18 || b === 19))
  );
}

describe('destination policy', () => {
  it('refuses every documented range and allows public addresses', () => {
    for (const ip of ['127.0.0.1', '127.255.255.254', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'ff02::1']) {
      expect(isRefusedAddress(ip), ip).toBe(true);
    }
    for (const ip of ['1.1.1.1', '8.8.8.8', '172.15.255.255', '172.32.0.0', '100.63.255.255', '100.128.0.0', '2606:4700::1111', '2001:4860:4860::8888']) {
      expect(isRefusedAddress(ip), ip).toBe(false);
    }
  });

  it('sees through IPv6 forms that carry an IPv4 address', () => {
    for (const ip of ['::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:a00:1', '::127.0.0.1', '64:ff9b::127.0.0.1', '64:ff9b::a00:1', '2002:7f00:1::1', '2002:c0a8:101::1']) {
      expect(isRefusedAddress(ip), ip).toBe(true);
    }
    expect(isRefusedAddress('::ffff:8.8.8.8')).toBe(false);
    expect(isRefusedAddress('64:ff9b::808:808')).toBe(false);
  });

  it('agrees with an independent model on random IPv4 addresses, also when mapped into IPv6', () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
        if (a === 192 && b === 0 && c !== 0) return; // only 192.0.0.0/24 is reserved
        const ip = `${a}.${b}.${c}.${d}`;
        expect(isRefusedAddress(ip), ip).toBe(refusedV4(a, b));
        expect(isRefusedAddress(`::ffff:${ip}`), `::ffff:${ip}`).toBe(refusedV4(a, b));
      }),
    );
  });

  it('treats hostile text as refused, never throws', () => {
    fc.assert(fc.property(fc.string(), (s) => void isRefusedAddress(s)));
    for (const s of ['', 'localhost', '1.2.3', '::ffff:', '1::2::3', '[::1]']) expect(isRefusedAddress(s)).toBe(true);
  });

  it('resolves once, checks every address, and lets --allow-private through', async () => {
    const overrides = new Map([['blocked.test', '127.0.0.1'], ['public.test', '93.184.216.34']]);
    await expect(resolveAllowed('blocked.test', { allowPrivate: false, overrides })).rejects.toMatchObject({ reason: 'policy' });
    await expect(resolveAllowed('localhost', { allowPrivate: false, overrides })).rejects.toMatchObject({ reason: 'policy' });
    await expect(resolveAllowed('public.test', { allowPrivate: false, overrides })).resolves.toEqual(['93.184.216.34']);
    await expect(resolveAllowed('blocked.test', { allowPrivate: true, overrides })).resolves.toEqual(['127.0.0.1']);
    await expect(resolveAllowed('[::1]', { allowPrivate: false, overrides })).rejects.toMatchObject({ reason: 'policy' });
  });
});
