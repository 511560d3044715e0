import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { extensionIsStale } from '../../server/commands/extension-build.ts';

/** A checkout with sources at time 1000 s and whichever builds are asked for at `builtAt`. */
function checkout(builds: string[], builtAt = 2000): string {
  const root = mkdtempSync(path.join(tmpdir(), 'passage-build-'));
  for (const f of ['extension/background/worker.ts', 'shared/x.ts', 'manifest.json', 'vite.config.ts', 'tools/firefox-manifest.ts']) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), '');
    utimesSync(path.join(root, f), 1000, 1000);
  }
  for (const d of builds) {
    mkdirSync(path.join(root, d));
    writeFileSync(path.join(root, d, 'manifest.json'), '{}');
    utimesSync(path.join(root, d, 'manifest.json'), builtAt, builtAt);
  }
  return root;
}

describe('npm start rebuilds the extension when a build is missing or stale', () => {
  it('is fresh only when both builds are newer than every source', () => {
    expect(extensionIsStale(checkout(['dist', 'dist-firefox']))).toBe(false);
    expect(extensionIsStale(checkout(['dist']))).toBe(true);
    expect(extensionIsStale(checkout(['dist-firefox']))).toBe(true);
    expect(extensionIsStale(checkout(['dist', 'dist-firefox'], 500))).toBe(true);
    const root = checkout(['dist', 'dist-firefox']);
    utimesSync(path.join(root, 'tools/firefox-manifest.ts'), 3000, 3000);
    expect(extensionIsStale(root)).toBe(true);
  });
});
