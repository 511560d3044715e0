/**
 * deploy/ as shipped is valid for the tools that read it: HAProxy's own check (`haproxy -c`),
 * nginx's (`nginx -t`) and systemd's (`systemd-analyze verify`), each with only the machine's
 * paths put in; each check is shown to catch a broken copy too. The unit's command line starts
 * a real edge (its ports set to 0, its state in a temporary folder).
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startCompanion } from '../support/processes.ts';
import { deployFile, haproxyConfig, nginxMain, nginxSite, selfSigned, sub } from '../support/reverse-proxies.ts';

const SHIPPED_EDGES = [1, 2, 3].map((n) => ({ port: 8080 + n, adminPort: 8180 + n }));

function run(cmd: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, output: (r.stdout ?? '') + (r.stderr ?? '') };
}

describe('deploy/', () => {
  let dir: string;
  let tls: ReturnType<typeof selfSigned>;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'passage-deploy-'));
    tls = selfSigned(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const haproxyCheck = (cfg: string) => {
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, cfg);
    return run('/usr/sbin/haproxy', ['-c', '-f', file]);
  };

  it('haproxy.cfg passes `haproxy -c` (its certificate path replaced), and a broken copy does not', () => {
    const cfg = sub(deployFile('haproxy.cfg'), '/etc/haproxy/passage.pem', tls.pem);
    expect(haproxyConfig(SHIPPED_EDGES, 'bind :443 ssl crt /etc/haproxy/passage.pem')).toBe(deployFile('haproxy.cfg'));
    const good = haproxyCheck(cfg);
    expect(good.output).toMatch(/Configuration file is valid/);
    expect(good.status).toBe(0);
    expect(haproxyCheck(sub(cfg, 'hash-type consistent', 'hash-type consistant')).status).not.toBe(0);
  });

  const nginxCheck = (site: string) => {
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, nginxMain(dir, site));
    return run('/usr/sbin/nginx', ['-t', '-p', dir, '-c', conf]);
  };

  it('nginx.conf passes `nginx -t` (certificate paths and listen socket replaced), and a broken copy does not', () => {
    const site = nginxSite(SHIPPED_EDGES, `unix:${path.join(dir, 'nginx.sock')}`, tls);
    const good = nginxCheck(site);
    expect(good.output).toMatch(/test is successful/);
    expect(good.status).toBe(0);
    expect(nginxCheck(sub(site, 'hash $http_x_session_id consistent;', 'hash $http_x_session_id consistant;')).status).not.toBe(0);
  });

  const unitFor = (text: string) => {
    const unitDir = mkdtempSync(path.join(dir, 'units-'));
    writeFileSync(path.join(unitDir, 'passage-edge@.service'), text);
    return run('systemd-analyze', ['verify', path.join(unitDir, 'passage-edge@1.service')]);
  };
  const localUnit = () => sub(sub(deployFile('passage-edge@.service'), 'WorkingDirectory=/opt/passage', `WorkingDirectory=${ROOT}`), 'ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);

  it('passage-edge@.service passes `systemd-analyze verify` with no warning (paths of this checkout), and a broken copy does not', () => {
    const good = unitFor(localUnit());
    expect(good.output).toBe('');
    expect(good.status).toBe(0);
    expect(unitFor(sub(localUnit(), 'TimeoutStopSec=45', 'TimeoutStopSec=45 fortnights')).output).toMatch(/Failed to parse/);
  });

  it("the unit's command line starts a real edge: every option in it exists and is accepted together", async () => {
    const exec = /^ExecStart=\S+ bin\/passage\.js (.*)$/m.exec(deployFile('passage-edge@.service'))![1]!;
    const args = exec
      .replaceAll('%i', '1')
      .replaceAll('${PASSAGE_HOST}', 'edge.example.net')
      .split(' ')
      .map((a) => a.replace(/^127\.0\.0\.1:\d+$/, '127.0.0.1:0').replace(/^0\.0\.0\.0:\d+$/, '127.0.0.1:0').replace(/^\/var\/lib\/passage\/edge-1$/, path.join(dir, 'edge-1')));
    expect(args.filter((a) => /:\d+$/.test(a) && !a.endsWith(':0'))).toEqual([]);
    const edge = await startCompanion(args, { PASSAGE_AUTH_TOKEN: 'deploy-test-token-0123456789' });
    expect(edge.stdout.join('')).toMatch(/passage edge listening on http:\/\/127\.0\.0\.1:\d+\npassage webtransport listening on .*https:\/\/edge\.example\.net:4431\/m\//s);
    expect(await edge.stop()).toBe(0);
  });
});
