/**
 * `npm start` builds the extension (dist/ for Chromium, dist-firefox/ for Firefox) when either is
 * missing or older than its sources, so what the user loads unpacked always matches the companion.
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
  const built = ['dist', 'dist-firefox'].map((d) => path.join(root, d, 'manifest.json'));
  if (!built.every((f) => existsSync(f))) return true;
  const sources = Math.max(...['extension', 'shared', 'manifest.json', 'vite.config.ts', 'tools/firefox-manifest.ts'].map((p) => newest(path.join(root, p))));
  return built.some((f) => sources > statSync(f).mtimeMs);
}

export function buildExtension(root: string): void {
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  for (const mode of ['production', 'firefox']) {
    const r = spawnSync(process.execPath, [vite, 'build', '--mode', mode, '--logLevel', 'warn'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`building the extension (${mode}) failed (see above)`);
  }
}
