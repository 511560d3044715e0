/**
 * shared/ runs unchanged in an extension worker, Node and Deno: no Node or DOM imports, and every
 * relative import names its file exactly (Deno and browsers do no extension guessing). The type
 * side of the same rule is `tsc -p tsconfig.shared.json` (no Node or DOM types) in `npm test`.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/processes.ts';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('shared/ portability', () => {
  const sources = files(path.join(ROOT, 'shared')).filter((f) => !f.endsWith('.d.ts'));

  it('imports nothing from Node, npm or the DOM', () => {
    for (const file of sources) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/g)) {
        expect(m[1]!.startsWith('.'), `${path.relative(ROOT, file)} imports ${m[1]}`).toBe(true);
      }
      expect(text, path.relative(ROOT, file)).not.toMatch(/\b(require\(|process\.|Buffer\b|window\.|document\.)/);
    }
  });

  it('names every relative import with its .ts file, which exists', () => {
    for (const file of sources) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/from\s+['"](\.[^'"]+)['"]/g)) {
        expect(m[1], `${path.relative(ROOT, file)}`).toMatch(/\.ts$/);
        expect(existsSync(path.resolve(path.dirname(file), m[1]!)), `${m[1]} from ${path.relative(ROOT, file)}`).toBe(true);
      }
    }
  });
});
