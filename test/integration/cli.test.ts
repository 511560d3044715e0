import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCompanion } from '../support/processes.ts';

/** The default command and HTTPS; help, validation and signals are in cli-help.test.ts. */
describe('passage CLI', () => {
  it('`passage` alone (npm start) runs an edge and a bridge on loopback and prints the pairing token', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-cfg-'));
    const waitFor = async (c: { stdout: string[] }, re: RegExp) => {
      for (let i = 0; i < 1000 && !re.test(c.stdout.join('')); i++) await new Promise((r) => setTimeout(r, 20));
      return c.stdout.join('');
    };
    const c = await startCompanion(['--edge-listen', '127.0.0.1:0', '--bridge-listen', '127.0.0.1:0', '--wt-listen', '127.0.0.1:0', '--no-build', '--config-dir', dir]);
    const out = await waitFor(c, /config link/);
    expect(out).toMatch(/passage bridge listening on http:\/\/127\.0\.0\.1:\d+/);
    const token = /Pairing token: (\S+)/.exec(out)![1]!;
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(path.join(dir, 'pairing-token'), 'utf8').trim()).toBe(token);
    expect(out).toMatch(/passage:\/\/config\//);
    expect(await c.stop('SIGINT')).toBe(0);
    const again = await startCompanion(['--edge-listen', '127.0.0.1:0', '--bridge-listen', '127.0.0.1:0', '--wt-listen', '127.0.0.1:0', '--no-build', '--config-dir', dir]);
    expect(await waitFor(again, /config link/)).toContain(`Pairing token: ${token}`);
    await again.stop();
  });

  it('serves HTTPS with --cert/--key and says so in its ready line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'passage-tls-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const edge = await startCompanion(['edge', '--listen', '127.0.0.1:0', '--cert', cert, '--key', key]);
    try {
      expect(edge.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const { readFileSync } = await import('node:fs');
      const body = await new Promise<string>((resolve, reject) => {
        https.get(`${edge.url}/`, { ca: readFileSync(cert) }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve(text));
        }).on('error', reject);
      });
      expect(body).toContain('<title>Field notes</title>'); // the cover, over TLS
    } finally {
      await edge.stop();
    }
  });
});
