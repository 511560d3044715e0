import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { embeddedV4, hostAddresses, isRefusedAddress, ownAddresses, refusalReason, resolveAllowed } from '../../server/exit/policy.ts';
import { parseIPv4, parseIPv6 } from '../../shared/ip.ts';

/** The refused IPv4 ranges, written out octet by octet, independently of the implementation. */
function refusedV4(a: number, b: number, c: number): boolean {
  return (
    a === 0 || // 0/8
    a === 10 || // 10/8
    (a === 100 && b >= 64 && b <= 127) || // 100.64/10
    a === 127 || // 127/8
    (a === 169 && b === 254) || // 169.254/16
    (a === 172 && b >= 16 && b <= 31) || // 172.16/12
    (a === 192 && b === 0 && (c === 0 || c === 2)) || // 192.0.0/24, 192.0.2/24
    (a === 192 && b === 88 && c === 99) || // 192.88.99/24
    (a === 198 && b === 51 && c === 100) || // 198.51.100/24
    (a === 203 && b === 0 && c === 113) || // 203.0.113/24
    (a === 192 && b === 168) || // 192.168/16
    (a === 198 && (b === 18 || b === 19)) || // 198.18/15
    a >= 224 // 224/4 multicast, 240/4 reserved incl. broadcast
  );
}

const octet = fc.nat(255);
const v4Tuple = fc.tuple(octet, octet, octet, octet);
const hex = (n: number) => n.toString(16);
const hi = (a: number, b: number) => hex((a << 8) | b);

describe('destination policy: ranges', () => {
  it('refuses the first and last address of every refused range', () => {
    const edges = [
      '0.0.0.0', '0.255.255.255', '10.0.0.0', '10.255.255.255', '100.64.0.0', '100.127.255.255',
      '127.0.0.0', '127.0.0.1', '127.255.255.255', '169.254.0.0', '169.254.169.254', '169.254.255.255',
      '172.16.0.0', '172.31.255.255', '192.0.0.0', '192.0.0.255', '192.168.0.0', '192.168.255.255',
      '198.18.0.0', '198.19.255.255', '224.0.0.0', '239.255.255.255', '240.0.0.0', '255.255.255.255',
      '10.1.2.3',
      '::', '::1', 'fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fd12:3456::1', 'fe80::', 'fe80::1',
      'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fec0::1', 'ff00::', 'ff02::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      '64:ff9b:1::1', '0:0:0:0:0:0:0:1', 'FE80::1',
      '192.0.2.0', '192.0.2.255', '198.51.100.0', '198.51.100.255', '203.0.113.0', '203.0.113.255', '192.88.99.0', '192.88.99.255',
      '2001:db8::', '2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '100::', '100::ffff:ffff:ffff:ffff',
    ];
    for (const ip of edges) expect(refusalReason(ip), ip).not.toBeNull();
  });

  it('allows the public addresses just outside them', () => {
    const outside = [
      '1.0.0.0', '9.255.255.255', '11.0.0.0', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.0',
      '169.253.255.255', '169.255.0.0', '172.15.255.255', '172.32.0.0', '192.0.1.0', '192.167.255.255',
      '192.169.0.0', '198.17.255.255', '198.20.0.0', '223.255.255.255', '1.1.1.1', '8.8.8.8', '93.184.216.34',
      '2606:4700::1111', '2001:4860:4860::8888', 'fbff:ffff::1', 'fe00::1', 'fb00::',
      '64:ff9b:2::1', '192.0.3.0', '192.0.1.255', '198.51.99.255', '198.51.101.0', '203.0.112.255', '203.0.114.0',
      '192.88.98.255', '192.88.100.0', '2001:db9::1', '2001:db7:ffff::1', '100:0:0:1::',
    ];
    for (const ip of outside) expect(refusalReason(ip), ip).toBeNull();
  });

  it("refuses the edge host's own addresses in any spelling, and only those", () => {
    const own = ownAddresses(['203.0.114.7', '2606:4700::abcd', 'fe80::1%eth0']);
    for (const ip of ['203.0.114.7', '::ffff:203.0.114.7', '::ffff:cb00:7207', '64:ff9b::203.0.114.7', '2606:4700:0::abcd', '2606:4700:0:0:0:0:0:ABCD']) {
      expect(refusalReason(ip, own), ip).toMatch(/this-host/);
    }
    for (const ip of ['203.0.114.8', '2606:4700::abce']) expect(refusalReason(ip, own), ip).toBeNull();
    expect(hostAddresses().v4.has(parseIPv4('127.0.0.1')!)).toBe(true);
  });

  it('names the reason', () => {
    expect(refusalReason('127.0.0.1')).toBe('loopback');
    expect(refusalReason('10.1.2.3')).toBe('private');
    expect(refusalReason('100.64.0.1')).toBe('cgnat');
    expect(refusalReason('::ffff:127.0.0.1')).toBe('loopback (embedded IPv4)');
    expect(refusalReason('localhost')).toBe('not-an-address');
  });

  it('agrees with the independent model on random IPv4 addresses', () => {
    fc.assert(
      fc.property(v4Tuple, ([a, b, c, d]) => {
        const ip = `${a}.${b}.${c}.${d}`;
        expect(isRefusedAddress(ip), ip).toBe(refusedV4(a, b, c));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('destination policy: IPv4 inside IPv6', () => {
  it('sees through the mapped forms (dotted and hex) and the other embeddings', () => {
    const refused = [
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::FFFF:7F00:0001', '0:0:0:0:0:ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:a00:1',
      '::ffff:169.254.169.254', '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', // SIIT
      '::127.0.0.1', '::7f00:1', // IPv4-compatible
      '64:ff9b::127.0.0.1', '64:ff9b::a00:1', // NAT64
      '2002:7f00:1::1', '2002:c0a8:101::1', '2002:a9fe:a9fe::', // 6to4
      '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo, client 127.0.0.1 (inverted)
    ];
    for (const ip of refused) expect(isRefusedAddress(ip), ip).toBe(true);
    for (const ip of ['::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808', '2002:808:808::1', '::ffff:0:8.8.8.8']) {
      expect(isRefusedAddress(ip), ip).toBe(false);
    }
  });

  it('judges every embedding of a random IPv4 as the IPv4 itself', () => {
    fc.assert(
      fc.property(v4Tuple, fc.nat(0xffff), ([a, b, c, d], tail) => {
        const dotted = `${a}.${b}.${c}.${d}`;
        const [w6, w7] = [hi(a, b), hi(c, d)];
        const inv = (x: number, y: number) => hex(((x << 8) | y) ^ 0xffff);
        const forms = [
          `::ffff:${dotted}`, `::ffff:${w6}:${w7}`, `::ffff:0:${dotted}`, `64:ff9b::${dotted}`, `64:ff9b::${w6}:${w7}`,
          `2002:${w6}:${w7}::${hex(tail)}`, `2001:0:4136:e378:8000:63bf:${inv(a, b)}:${inv(c, d)}`,
        ];
        const expected = refusedV4(a, b, c);
        for (const ip of forms) expect(isRefusedAddress(ip), ip).toBe(expected);
        // ::a.b.c.d: the compatible form; ::0.0.0.0 and ::0.0.0.1 are :: and ::1, refused either way.
        expect(isRefusedAddress(`::${dotted}`), `::${dotted}`).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('extracts nothing from ordinary global addresses', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x2400, max: 0x2fff }), fc.array(fc.nat(0xffff), { minLength: 7, maxLength: 7 }), (first, rest) => {
        const words = [first, ...rest];
        expect(embeddedV4(words)).toBeNull();
        expect(isRefusedAddress(words.map(hex).join(':'))).toBe(false);
      }),
    );
  });
});

describe('address parsing', () => {
  it('round-trips random IPv6 words through full, compressed and dotted text', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 }), (words) => {
        const full = words.map(hex).join(':');
        expect(parseIPv6(full)).toEqual(words);
        expect(parseIPv6(full.toUpperCase())).toEqual(words);
        // Compress the first run of zero words, if any.
        const z = words.indexOf(0);
        if (z >= 0) {
          let end = z;
          while (end < 8 && words[end] === 0) end++;
          const text = `${words.slice(0, z).map(hex).join(':')}::${words.slice(end).map(hex).join(':')}`;
          expect(parseIPv6(text), text).toEqual(words);
        }
        const w6 = words[6]!;
        const w7 = words[7]!;
        const dotted = `${words.slice(0, 6).map(hex).join(':')}:${w6 >> 8}.${w6 & 255}.${w7 >> 8}.${w7 & 255}`;
        expect(parseIPv6(dotted), dotted).toEqual(words);
      }),
    );
  });

  it('accepts exactly what node:net accepts (zone ids aside), over an address-shaped alphabet', () => {
    const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF:.:::..'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 46 }), (s) => {
        expect(parseIPv4(s) !== null, s).toBe(isIP(s) === 4);
        expect(parseIPv6(s) !== null, s).toBe(isIP(s) === 6);
      }),
      { numRuns: 20_000 },
    );
    // Near-misses: address-like tokens (hex groups, decimals with stray zeros, separators) glued together.
    const token = fc.oneof(
      fc.nat(0x1ffff).map(hex),
      fc.nat(300).map(String),
      fc.nat(99).map((n) => `0${n}`),
      fc.constantFrom(':', '::', '.', ':', '.', 'ffff'),
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 16 }).map((t) => t.join('')), (s) => {
        expect(parseIPv4(s) !== null, s).toBe(isIP(s) === 4);
        expect(parseIPv6(s) !== null, s).toBe(isIP(s) === 6);
      }),
      { numRuns: 20_000 },
    );
    for (const s of ['::ffff:127.0.0.1', '1::', '::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', '1::2:3:4:5:6:7']) {
      expect(parseIPv6(s), s).not.toBeNull();
    }
    for (const s of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':1::', '1:::2', '::ffff:127.0.0.01', '12345::', 'fe80::1%eth0', '[::1]', '1.2.3.4']) {
      expect(parseIPv6(s), s).toBeNull();
    }
    for (const s of ['01.2.3.4', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.-1', ' 1.2.3.4']) expect(parseIPv4(s), s).toBeNull();
  });

  it('treats hostile text as refused and never throws', () => {
    fc.assert(fc.property(fc.string(), (s) => void isRefusedAddress(s)));
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => void isRefusedAddress(s)));
    for (const s of ['', 'localhost', '1.2.3', '::ffff:', '1::2::3', '[::1]', 'fe80::1%eth0', '0x7f000001', '2130706433', '127.1', '127.0.0.1 ']) {
      expect(isRefusedAddress(s), JSON.stringify(s)).toBe(true);
    }
  });
});

describe('resolveAllowed', () => {
  const overrides = new Map([['blocked.test', '127.0.0.1'], ['public.test', '93.184.216.34']]);
  const fixed = (table: Record<string, string[]>) => ({
    calls: [] as string[],
    lookupAll(name: string) {
      this.calls.push(name);
      const hit = table[name];
      return hit ? Promise.resolve(hit) : Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
    },
  });

  it('dials only the addresses that passed, and refuses when none did', async () => {
    const dns = fixed({ 'mixed.test': ['10.0.0.1', '93.184.216.34', '::1', '2606:4700::1'], 'inside.test': ['10.0.0.1', '::ffff:7f00:1'] });
    const o = { allowPrivate: false, overrides, lookupAll: (n: string) => dns.lookupAll(n) };
    await expect(resolveAllowed('mixed.test', o)).resolves.toEqual(['93.184.216.34', '2606:4700::1']);
    await expect(resolveAllowed('inside.test', o)).rejects.toMatchObject({ reason: 'policy', message: expect.stringMatching(/private, loopback/) });
    await expect(resolveAllowed('missing.test', o)).rejects.toMatchObject({ reason: 'resolve', message: expect.stringMatching(/ENOTFOUND/) });
    await expect(resolveAllowed('inside.test', { ...o, allowPrivate: true })).resolves.toEqual(['10.0.0.1', '::ffff:7f00:1']);
    expect(dns.calls).toEqual(['mixed.test', 'inside.test', 'missing.test', 'inside.test']);
  });

  it('consults test overrides first, never resolves IP literals, normalises names', async () => {
    const dns = fixed({});
    const o = { allowPrivate: false, overrides, lookupAll: (n: string) => dns.lookupAll(n) };
    await expect(resolveAllowed('Blocked.Test.', o)).rejects.toMatchObject({ reason: 'policy' });
    await expect(resolveAllowed('public.test', o)).resolves.toEqual(['93.184.216.34']);
    await expect(resolveAllowed('[::1]', o)).rejects.toMatchObject({ reason: 'policy' });
    await expect(resolveAllowed('::ffff:127.0.0.1', o)).rejects.toMatchObject({ reason: 'policy' });
    await expect(resolveAllowed('8.8.8.8', o)).resolves.toEqual(['8.8.8.8']);
    await expect(resolveAllowed('blocked.test', { ...o, allowPrivate: true })).resolves.toEqual(['127.0.0.1']);
    expect(dns.calls).toEqual([]);
  });

  it('checks what the system resolver returns for names that are numbers in disguise', async () => {
    // getaddrinfo reads these as 127.0.0.1 (inet_aton and /etc/hosts: no DNS traffic); the check is on the result.
    for (const name of ['localhost', '2130706433', '127.1', '0x7f.0.0.1']) {
      await expect(resolveAllowed(name, { allowPrivate: false, overrides: new Map() }), name).rejects.toMatchObject({ reason: 'policy' });
    }
  });
});
