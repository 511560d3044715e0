/** Where the companion's files are: the package root, the config folder, the shipped extension's id. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, whether running from server/ (tests) or build/server/ (the CLI). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** `$XDG_CONFIG_HOME/passage`, else `~/.config/passage`: pairing token and WebTransport certificates. */
export function defaultConfigDir(env: Record<string, string | undefined> = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(homedir(), '.config'), 'passage');
}

/** The extension id Chromium derives from a manifest `key` (base64 SPKI DER). */
export function extensionIdFromKey(keyBase64: string): string {
  const hex = createHash('sha256').update(Buffer.from(keyBase64, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}

/** The shipped extension's id, from the `key` in manifest.json. */
export function shippedExtensionId(): string {
  const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'manifest.json'), 'utf8')) as { key: string };
  return extensionIdFromKey(manifest.key);
}
