/**
 * shared/ runs unchanged in Deno (the WebTransport edge will run it there): the real Deno binary
 * from the pinned npm package type-checks and runs a program that uses the mux, EagerSocks, the
 * meek client pairing and QPACK.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/processes.ts';

const DENO = path.join(ROOT, 'node_modules', '.bin', 'deno');

describe('shared/ in Deno', () => {
  it('type-checks and runs with Deno 2.9.6', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-deno-'));
    const program = path.join(dir, 'main.ts');
    const shared = (p: string) => JSON.stringify(path.join(ROOT, 'shared', p));
    writeFileSync(
      program,
      `import { Mux } from ${shared('remux/mux.ts')};
import { decodeDestination } from ${shared('eagersocks.ts')};
import { createMeekMux } from ${shared('meek/meek-mux.ts')};
import { decodeFieldSection, encodeFieldSection } from ${shared('h3/qpack.ts')};
const out: Uint8Array[] = [];
const mux = new Mux({ role: 'opener', sink: { write: (c) => (out.push(...c), true) } });
mux.open({ type: 'domain', host: 'example.org', port: 443 }).write(new TextEncoder().encode('hi'));
await Promise.resolve();
const dest = decodeDestination(out[0]!.subarray(4))!.destination;
const fields = decodeFieldSection(encodeFieldSection([[':status', '200']]));
console.log(JSON.stringify({ frames: out.length, host: dest.host, fields, meek: typeof createMeekMux }));
`,
    );
    const env = { ...process.env, DENO_DIR: path.join(dir, 'cache'), NO_COLOR: '1' };
    execFileSync(DENO, ['check', '--no-config', '--no-remote', program], { env, stdio: 'pipe' });
    const output = execFileSync(DENO, ['run', '--no-config', '--no-remote', '--no-prompt', program], { env, encoding: 'utf8' });
    expect(JSON.parse(output)).toEqual({ frames: 1, host: 'example.org', fields: [[':status', '200']], meek: 'function' });
  });
});
