/**
 * The pairing token the extension presents on its link: generated on first start, kept in the
 * companion's config folder (mode 600) across restarts, printed by `npm start`.
 */
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export function defaultConfigDir(env: Record<string, string | undefined> = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(homedir(), '.config'), 'passage');
}

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

/** The extension id Chromium derives from a manifest `key` (base64 SPKI DER). */
export function extensionIdFromKey(keyBase64: string): string {
  const hex = createHash('sha256').update(Buffer.from(keyBase64, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}
