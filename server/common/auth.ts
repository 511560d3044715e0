import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time token check. Both sides are hashed first so that neither the comparison's time
 * nor an early length mismatch tells an attacker anything about the token.
 */
export function tokenMatches(presented: string | string[] | undefined, token: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** Whether a presented token admits; `required` is false when no token is configured (all admitted). */
export type TokenCheck = ((presented: string | undefined) => boolean) & { readonly required: boolean };

/** The one check every edge entrance uses (meek, discovery, WebTransport, operator endpoints). */
export function createTokenCheck(token: string | null): TokenCheck {
  const check = (presented: string | undefined) => token === null || tokenMatches(presented, token);
  return Object.assign(check, { required: token !== null });
}

/** The token from `X-Meek-Auth` or `Authorization: Bearer …` (operators' tools send the latter). */
export function presentedToken(headers: Record<string, string | string[] | undefined>): string | undefined {
  const meek = headers['x-meek-auth'];
  if (typeof meek === 'string') return meek;
  const auth = headers['authorization'];
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7);
  return undefined;
}
