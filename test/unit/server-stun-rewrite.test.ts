/**
 * The ICE shim's two STUN edits: a zero tiebreaker lifted to 1 and a mapped address put right,
 * each signed again only after the old signature verified. The signing helper below is checked
 * against RFC 5769's sample request first, so the messages it builds are real STUN.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { liftZeroTiebreaker, rewriteMappedAddress } from '../../server/webrtc/stun-rewrite.ts';
import { attrValue as attr, readXorMapped, signedStun, tiebreaker, verifies, xorMappedValue as xorAddress } from '../support/stun-messages.ts';

const stun = (type: number, txid: Buffer, attrs: Array<[number, Buffer]>, key: string) => signedStun(type, attrs, key, txid);
const PWD = 'U9rsBowWsAFYyeEU1so/+i';
const TXID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
const check = (role: number, tb: bigint, key = PWD) =>
  stun(0x0001, TXID, [[0x0006, Buffer.from('YHeD:whsO')], [0xc057, Buffer.from([0, 1, 0, 0x32])], [role, tiebreaker(tb)], [0x0025, Buffer.alloc(0)], [0x0024, Buffer.from([0x6e, 0, 1, 0xff])]], key);

describe('STUN rewriting for the ICE shim', () => {
  // RFC 5769's sample messages (§2.1, §2.2), password VOkJxbRl1RmTxUk/WvJxBt.
  const RFC_PWD = 'VOkJxbRl1RmTxUk/WvJxBt';
  const RFC_REQUEST = Buffer.from(
    '000100582112a442b7e7a701bc34d686fa87dfae' + '802200105354554e207465737420636c69656e74' + '002400046e0001ff' +
      '80290008932ff9b151263b36' + '000600096576746a3a68367659202020' + '000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2' + '80280004e57a3bcf',
    'hex',
  );
  const RFC_RESPONSE = Buffer.from(
    '0101003c2112a442b7e7a701bc34d686fa87dfae' + '8022000b7465737420766563746f7220' + '0020000800' + '01a147e112a643' +
      '000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7' + '80280004c07d4c96',
    'hex',
  );

  it('known answers from RFC 5769: the test signer verifies the sample request; a rewritten sample response, put back, is the RFC\'s bytes', () => {
    expect(verifies(RFC_REQUEST, RFC_PWD)).toBe(true);
    expect(liftZeroTiebreaker(RFC_REQUEST, RFC_PWD)).toBeNull(); // its tiebreaker is not 0
    const moved = rewriteMappedAddress(RFC_RESPONSE, RFC_PWD, { address: '203.0.113.9', port: 443 })!;
    expect(readXorMapped(moved)).toEqual({ address: '203.0.113.9', port: 443 });
    expect(verifies(moved, RFC_PWD)).toBe(true);
    // The RFC states the response's mapped address: 192.0.2.1 port 32853.
    expect(readXorMapped(RFC_RESPONSE)).toEqual({ address: '192.0.2.1', port: 32853 });
    expect(rewriteMappedAddress(moved, RFC_PWD, { address: '192.0.2.1', port: 32853 })!.equals(RFC_RESPONSE)).toBe(true);
  });

  it('a check with a tiebreaker of 0 (either role) gets 1 and a signature that verifies; nothing else changes', () => {
    for (const role of [0x802a, 0x8029]) {
      const m = check(role, 0n);
      const out = liftZeroTiebreaker(m, PWD)!;
      expect(out).not.toBeNull();
      expect(attr(out, role)!.readBigUInt64BE()).toBe(1n);
      expect(verifies(out, PWD)).toBe(true);
      expect(out.length).toBe(m.length);
      expect(out.equals(check(role, 1n))).toBe(true);
    }
  });

  it('leaves alone a nonzero tiebreaker, a forged or differently keyed check, and what is not a binding request', () => {
    expect(liftZeroTiebreaker(check(0x802a, 0x149f30ebe42e6930n), PWD)).toBeNull();
    expect(liftZeroTiebreaker(check(0x802a, 0n, 'another password'), PWD)).toBeNull(); // no signing oracle
    const forged = check(0x802a, 0n);
    forged[forged.length - 30]! ^= 1; // inside MESSAGE-INTEGRITY
    expect(liftZeroTiebreaker(forged, PWD)).toBeNull();
    const unsigned = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42]), TXID, Buffer.from('802a0008', 'hex'), Buffer.alloc(8)]);
    expect(liftZeroTiebreaker(unsigned, PWD)).toBeNull();
    const response = stun(0x0101, TXID, [[0x802a, tiebreaker(0n)]], PWD);
    expect(liftZeroTiebreaker(response, PWD)).toBeNull();
  });

  it('puts the true source into a binding success response, signed again', () => {
    const m = stun(0x0101, TXID, [[0x0020, xorAddress('127.0.0.1', 40001)], [0x8022, Buffer.from('libjuice')]], PWD);
    const out = rewriteMappedAddress(m, PWD, { address: '192.0.2.7', port: 61653 })!;
    expect(readXorMapped(out)).toEqual({ address: '192.0.2.7', port: 61653 });
    expect(verifies(out, PWD)).toBe(true);
    expect(rewriteMappedAddress(m, 'another password', { address: '192.0.2.7', port: 1 })).toBeNull();
    expect(rewriteMappedAddress(check(0x802a, 0n), PWD, { address: '192.0.2.7', port: 1 })).toBeNull(); // a request
    const v6 = Buffer.alloc(20);
    v6[1] = 0x02;
    expect(rewriteMappedAddress(stun(0x0101, TXID, [[0x0020, v6]], PWD), PWD, { address: '192.0.2.7', port: 1 })).toBeNull();
  });

  it('any bytes, truncations and flipped bytes: never a throw, and nothing re-signed that did not verify', () => {
    const valid = check(0x802a, 0n);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const b = Buffer.from(bytes);
        const a = liftZeroTiebreaker(b, PWD);
        const r = rewriteMappedAddress(b, PWD, { address: '10.0.0.1', port: 9 });
        expect(a === null || verifies(a, PWD)).toBe(true);
        expect(r === null || verifies(r, PWD)).toBe(true);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length - 1 }), (n) => {
        expect(liftZeroTiebreaker(valid.subarray(0, n), PWD)).toBeNull();
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length - 9 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const m = Buffer.from(valid);
        m[at]! ^= x;
        // A flip anywhere the signature covers (all but the fingerprint) is refused; one in the
        // header's type or length is not a check at all.
        expect(liftZeroTiebreaker(m, PWD)).toBeNull();
      }),
    );
  });

  it('arbitrary checks with a zero tiebreaker: lifted, the rest byte for byte as sent', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.array(fc.tuple(fc.constantFrom(0x0006, 0x0024, 0x8022, 0xc057, 0x0025), fc.uint8Array({ maxLength: 40 })), { maxLength: 5 }),
        fc.constantFrom(0x802a, 0x8029),
        fc.string({ minLength: 1, maxLength: 40 }),
        (txid, extra, role, key) => {
          const attrs: Array<[number, Buffer]> = [...extra.map(([t, v]) => [t, Buffer.from(v)] as [number, Buffer]), [role, tiebreaker(0n)]];
          const m = stun(0x0001, Buffer.from(txid), attrs, key);
          const out = liftZeroTiebreaker(m, key)!;
          const want = stun(0x0001, Buffer.from(txid), [...attrs.slice(0, -1), [role, tiebreaker(1n)]], key);
          expect(out.equals(want)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
