/**
 * IP address text → numbers, strictly: what EagerSocks encodes, the edge's policy and the listen
 * checks compare. Pure (shared/), so the extension, the edge and the tests parse alike.
 * Stricter than node:net's isIP on purpose (no zone ids, no leading zeros).
 */

/** Strict dotted-decimal IPv4 (no leading zeros, which some resolvers read as octal) → u32. */
export function parseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const b = Number(p);
    if (b > 255) return null;
    n = n * 256 + b;
  }
  return n;
}

/**
 * RFC 4291 text (`::`, a dotted IPv4 tail) → 8 words, or null. A `%zone` is not accepted: the
 * edge never dials a scoped address, and a name that resolves to one is checked as resolved.
 */
export function parseIPv6(text: string): number[] | null {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let body = text;
  let tail: number[] = [];
  if (body.includes('.')) {
    const cut = body.lastIndexOf(':');
    const v4 = parseIPv4(body.slice(cut + 1));
    if (v4 === null || cut < 0) return null;
    tail = [v4 >>> 16, v4 & 0xffff];
    body = body.slice(0, cut + 1) + '0:0'; // placeholder words, replaced by the tail below
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !rest) return null;
  const count = head.length + rest.length;
  if (halves.length === 2 ? count > 7 : count !== 8) return null;
  const words = [...head, ...new Array<number>(8 - count).fill(0), ...rest];
  if (tail.length) words.splice(6, 2, ...tail);
  return words;
}

/** 16 bytes of an IPv6 address as RFC 5952 text: lower-case, no leading zeros, the longest run of two or more zero words as `::`. */
export function formatIPv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
