#!/usr/bin/env node
// The companion is written in TypeScript and compiled into build/ by `npm ci` (the prepare script).
import { existsSync } from 'node:fs';
const cli = new URL('../build/server/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('passage: build/ is missing: run `npm ci` (or `npm run build:server`) first\n');
  process.exit(1);
}
await import(cli.href);
