/**
 * `npm start` builds the extension into dist/ when it is missing or older than its sources, so
 * what the user loads unpacked always matches the companion.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  const s = statSync(dir);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(dir).map((n) => newest(path.join(dir, n))));
}

export function extensionIsStale(root: string): boolean {
  const built = path.join(root, 'dist', 'manifest.json');
  if (!existsSync(built)) return true;
  const sources = Math.max(...['extension', 'shared', 'manifest.json', 'vite.config.ts'].map((p) => newest(path.join(root, p))));
  return sources > statSync(built).mtimeMs;
}

export function buildExtension(root: string): void {
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('building the extension failed (see above)');
}
