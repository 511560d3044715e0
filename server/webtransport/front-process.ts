/**
 * Starts, supervises and restarts the WebTransport front (front/main.ts) in the pinned Deno
 * (npm `deno`, docs/PLATFORM.md). A front that dies is restarted on the same port with a growing
 * delay (reset once it has stayed up a while); `restart` replaces it gracefully (new certificate).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import type { Logger } from 'pino';
import { packageRoot } from '../common/paths.ts';

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 2000;
const BACKOFF_MS = [250, 500, 1000, 2000, 5000, 10_000];
/** A front that stayed up this long starts its backoff over. */
const STABLE_MS = 30_000;
/** QUIC connections one peer address may hold at the front (PROTOCOL.md §4). */
export const MAX_CONNECTIONS_PER_ADDRESS = 8;
/** A QUIC connection with no WebTransport session this long after its handshake is closed. */
export const CONNECT_DEADLINE_MS = 5000;

export interface FrontFiles {
  certFile: string;
  keyFile: string;
  linkPath: string;
  /** Deno's compile cache: private to this edge, so a read-only home (systemd) does not matter. */
  cacheDir: string;
}

function denoBinary(): string {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('deno/package.json'));
  const exe = path.join(dir, process.platform === 'win32' ? 'deno.exe' : 'deno');
  if (existsSync(exe)) return exe;
  // npm skipped the package's postinstall: its own resolver finds the platform binary.
  return (require(path.join(dir, 'install_api.cjs')) as { runInstall(): string }).runInstall();
}

export class FrontProcess {
  private child: ChildProcess | null = null;
  private port: number;
  private stopping = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Times the front was started again after dying (tests and metrics read it). */
  restarts = 0;

  constructor(
    private readonly host: string,
    port: number,
    private readonly files: FrontFiles,
    /** QUIC connections the front accepts at once; more are refused before the handshake. */
    private readonly maxConnections: number,
    private readonly logger: Logger,
  ) {
    this.port = port;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Starts the front; resolves with the UDP port it listens on. */
  async start(): Promise<number> {
    this.port = await this.spawnOnce();
    return this.port;
  }

  private spawnOnce(): Promise<number> {
    const entry = path.join(packageRoot(), 'server', 'webtransport', 'front', 'main.ts');
    const { certFile, keyFile, linkPath, cacheDir } = this.files;
    const args = [
      'run',
      '--quiet',
      '--no-config',
      '--no-remote',
      '--no-npm',
      '--no-lock',
      '--no-prompt',
      '--unstable-net',
      '--allow-net',
      `--allow-read=${certFile},${keyFile},${linkPath}`,
      `--allow-write=${linkPath}`,
      entry,
      JSON.stringify({ host: this.host, port: this.port, certFile, keyFile, linkPath, maxConnections: this.maxConnections, maxPerAddress: MAX_CONNECTIONS_PER_ADDRESS, connectDeadlineMs: CONNECT_DEADLINE_MS }),
    ];
    const child = spawn(denoBinary(), args, {
      // stdin stays open and unused: when this process dies, however, the front sees it end and stops.
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, DENO_DIR: cacheDir, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    });
    this.child = child;
    readline.createInterface({ input: child.stderr! }).on('line', (line) => this.logger.info({ front: line }, 'webtransport front'));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the WebTransport front did not start'));
      }, READY_TIMEOUT_MS);
      let ready = false;
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        const failed = /^bind-failed (\S+) (.*)$/.exec(line);
        if (failed && !ready) {
          clearTimeout(timer);
          // Shaped like Node's own listen errors, so the CLI reports it in one line as it does for TCP.
          return reject(Object.assign(new Error(`listen ${failed[1]}: ${failed[2]} ${this.host}:${this.port}/udp (WebTransport)`), { code: failed[1], syscall: 'listen' }));
        }
        const m = /^ready (\d+)$/.exec(line);
        if (!m || ready) return;
        ready = true;
        clearTimeout(timer);
        const startedAt = Date.now();
        child.once('exit', () => {
          if (Date.now() - startedAt >= STABLE_MS) this.failures = 0;
        });
        this.logger.info({ pid: child.pid }, 'webtransport front ready');
        resolve(Number(m[1]));
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`the WebTransport front exited before it was ready (${signal ?? code})`));
        // A front stopped on purpose was unlinked from `child` first; only a death restarts.
        const died = this.child === child;
        if (died) this.child = null;
        if (ready && died && !this.stopping) {
          this.logger.warn({ code, signal }, 'webtransport front died; restarting');
          this.scheduleRestart();
        }
      });
    });
  }

  private scheduleRestart(): void {
    if (this.restartTimer || this.stopping) return;
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)]!;
    this.failures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.restarts++;
      this.spawnOnce().catch((e: Error) => {
        this.logger.error({ err: e.message }, 'webtransport front failed to start');
        this.scheduleRestart();
      });
    }, delay);
  }

  /** Replaces the front gracefully (GOAWAY to its clients), e.g. to serve a new certificate. */
  async restart(): Promise<void> {
    await this.stopChild();
    if (!this.stopping) await this.spawnOnce();
  }

  private stopChild(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    this.child = null;
    return new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  async close(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.stopChild();
  }
}
