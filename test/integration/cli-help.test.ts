/** The CLI as a user meets it: `node bin/passage.js …` (and `npx passage`), help, validation, signals. */
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { ROOT, runCompanion, startCompanion } from '../support/processes.ts';
import { listen } from '../support/servers.ts';

const EDGE_OPTIONS: Array<[option: string, shownDefault: string | null]> = [
  ['--listen', '127.0.0.1:8080'],
  ['--mode', 'remux'],
  ['--upstream', null],
  ['--path', '/'],
  ['--max-body', '262144'],
  ['--holdoff', '50'],
  ['--idle-timeout', '120'],
  ['--auth-token', null],
  ['--insecure-no-auth', null],
  ['--max-sessions', '1000'],
  ['--max-streams', '256'],
  ['--dial-timeout', '10'],
  ['--allow-private', null],
  ['--cert', null],
  ['--key', null],
  ['--wt-listen', null],
  ['--wt-advertise', null],
  ['--config-dir', null],
  ['--resolve', null],
  ['--log-level', 'info'],
];

describe('passage --help', () => {
  it('lists the commands', async () => {
    const { code, stdout } = await runCompanion(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: passage/);
    for (const command of ['edge', 'bridge', 'start']) expect(stdout).toMatch(new RegExp(`^\\s+${command} `, 'm'));
  });

  it('documents every edge option with its default, and hides the test-only ones', async () => {
    const { code, stdout } = await runCompanion(['edge', '--help']);
    expect(code).toBe(0);
    // Commander wraps long descriptions; join the lines of each option's entry.
    const entries = stdout.split(/\n(?=\s{2}-)/).map((e) => e.replace(/\s+/g, ' '));
    for (const [option, shown] of EDGE_OPTIONS) {
      const entry = entries.find((e) => e.trim().startsWith(option + ' ') || e.trim() === option || e.trim().startsWith(option + ','));
      expect(entry, option).toBeDefined();
      if (shown !== null) expect(entry, option).toContain(`default: ${shown})`);
    }
    expect(stdout).toContain('PASSAGE_AUTH_TOKEN');
    expect(stdout).not.toContain('--test-');
  });

  it('runs as `npx passage` from the repository root (npm exec finds the root package\'s own bin)', async () => {
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn('npx', ['--offline', 'passage', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.once('exit', (code) => resolve({ code, stdout }));
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: passage/);
  });
});

describe('start-up validation', () => {
  it('fails loudly, with a message and a non-zero exit, on every kind of bad value', async () => {
    const cases: Array<[args: string[], message: RegExp]> = [
      [['edge', '--max-body', '12'], /--max-body must be between 1024 and 16777216/],
      [['edge', '--max-body', '16777217'], /--max-body/],
      [['edge', '--holdoff', 'soon'], /--holdoff must be a whole number/],
      [['edge', '--idle-timeout', '0'], /--idle-timeout/],
      [['edge', '--max-sessions', '-1'], /--max-sessions/],
      [['edge', '--max-streams', '70000'], /--max-streams/],
      [['edge', '--dial-timeout', '1.5'], /--dial-timeout/],
      [['edge', '--mode', 'fast'], /Allowed choices are raw, remux/],
      [['edge', '--mode', 'raw'], /--mode raw needs --upstream/],
      [['edge', '--upstream', '127.0.0.1:9'], /--upstream only applies to --mode raw/],
      [['edge', '--mode', 'raw', '--upstream', 'nowhere'], /--upstream must be HOST:PORT/],
      [['edge', '--path', '/meek'], /--path must start and end with "\/"/],
      [['edge', '--listen', 'localhost'], /--listen must be HOST:PORT/],
      [['edge', '--listen', '127.0.0.1:70000'], /port out of range/],
      [['edge', '--auth-token', 'short'], /at least 8 characters/],
      [['edge', '--cert', 'cert.pem'], /--cert and --key go together/],
      [['edge', '--cert', '/nonexistent/cert.pem', '--key', '/nonexistent/key.pem'], /cannot read certificate or key/],
      [['edge', '--log-level', 'loud'], /Allowed choices are fatal, error/],
      [['edge', '--bogus'], /unknown option '--bogus'/],
      [['edge', '--resolve', 'nameonly'], /--resolve wants NAME=IP/],
      [['bridge', '--listen', '0.0.0.0:0'], /loopback only/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCompanion(args)));
    results.forEach(({ code, stdout, stderr }, i) => {
      const [args, message] = cases[i]!;
      expect(code, args.join(' ')).not.toBe(0);
      expect(stderr, args.join(' ')).toMatch(message);
      expect(stdout, args.join(' ')).not.toMatch(/listening on/);
    });
  });

  it('refuses a non-loopback listener without a token (an open relay)', async () => {
    for (const [args, env] of [
      [['edge', '--listen', '0.0.0.0:0'], {}],
      [['edge', '--listen', '[::]:0'], {}],
      [['edge', '--listen', '0.0.0.0:0'], { PASSAGE_AUTH_TOKEN: '' }],
    ] as Array<[string[], Record<string, string>]>) {
      const { code, stderr } = await runCompanion(args, env);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(/refusing to listen on .* without --auth-token \(or PASSAGE_AUTH_TOKEN\); --insecure-no-auth overrides/);
    }
  });

  it('says clearly when the address is taken', async () => {
    const taken = await listen(() => {});
    try {
      const { code, stderr } = await runCompanion(['edge', '--listen', `127.0.0.1:${taken.port}`]);
      expect(code).toBe(2);
      expect(stderr).toMatch(/^passage: listen EADDRINUSE/m);
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace for an operator's mistake
    } finally {
      await taken.close();
    }
  });

  it('says clearly when the WebTransport UDP port is taken, in one line', async () => {
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-udp-'));
    try {
      const { code, stderr } = await runCompanion(['edge', '--listen', '127.0.0.1:0', '--wt-listen', `127.0.0.1:${taken.address().port}`, '--config-dir', dir, '--log-level', 'silent']);
      expect(code).toBe(2);
      expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^passage: listen EADDRINUSE: .*127\\.0\\.0\\.1:${taken.address().port}/udp`))]);
    } finally {
      taken.close();
    }
  });
});

describe('edge lifecycle', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`prints exactly its ready lines on stdout, logs to stderr, and exits 0 on ${signal}`, async () => {
      const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--log-level', 'info']);
      expect(edge.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await edge.stop(signal)).toBe(0);
      expect(edge.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(edge.stdout.join('')).toBe(`passage edge listening on ${edge.url}\npassage admin listening on ${edge.adminUrl}\n`);
      const logs = edge.stderr.join('').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
      expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['edge ready', 'shutting down']));
    });
  }

  it('never logs the auth token', async () => {
    const token = 'cli-secret-token-1234';
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--log-level', 'trace'], { PASSAGE_AUTH_TOKEN: token });
    const res = await fetch(`${edge.url}/`, { method: 'POST', headers: { 'x-meek-auth': 'wrong-token-value', 'x-session-id': 'abcdefgh12' } });
    expect(await res.text()).toContain('<title>Field notes</title>'); // a wrong token gets the cover
    await edge.stop();
    const output = edge.stdout.join('') + edge.stderr.join('');
    expect(output).not.toContain(token);
    expect(output).not.toContain('wrong-token-value');
  });
});
