import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extensionIdFromKey } from './bridge/pairing.ts';

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

/** The shipped extension's id, from the `key` in manifest.json. */
export function shippedExtensionId(): string {
  const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'manifest.json'), 'utf8')) as { key: string };
  return extensionIdFromKey(manifest.key);
}
