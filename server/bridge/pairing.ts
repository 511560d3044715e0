/**
 * The pairing token the extension presents on its link: generated on first start, kept in the
 * companion's config folder (mode 600) across restarts, printed by `npm start`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

export function loadOrCreatePairingToken(configDir: string): string {
  const file = path.join(configDir, 'pairing-token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{16,}$/.test(token)) return token;
  }
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(18).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}
