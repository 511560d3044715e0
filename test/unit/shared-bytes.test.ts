/** packMessages: the same bytes in the same order, no message over the limit, as few messages as the bytes need. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, packMessages } from '../../shared/bytes.ts';

describe('packMessages', () => {
  it('keeps every byte in order, no message above max, and uses ⌈total ÷ max⌉ messages', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 }), fc.integer({ min: 1, max: 200 }), (chunks, max) => {
        const messages = packMessages(chunks, max);
        const total = chunks.reduce((n, c) => n + c.length, 0);
        expect(concat(messages)).toEqual(concat(chunks));
        expect(messages.every((m) => m.length >= 1 && m.length <= max)).toBe(true);
        expect(messages.length).toBe(Math.ceil(total / max));
      }),
    );
  });

  it('frame headers and payloads of one flush become one message', () => {
    const header = new Uint8Array(9).fill(1);
    const payload = new Uint8Array(16 * 1024).fill(2);
    expect(packMessages([header, payload, header, payload], 64 * 1024)).toHaveLength(1);
    expect(packMessages([], 10)).toEqual([]);
    expect(() => packMessages([header], 0)).toThrow(RangeError);
  });
});
