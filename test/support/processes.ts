/**
 * The real companion as tests meet it: `node bin/passage.js …` in a child process, ready once it
 * prints its `listening on` line. Every child is killed when the test file ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { existsSync } from 'node:fs';

/** The repository root, whether this file runs from test/ or compiled from build/test/. */
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export const ROOT = findRoot();
const BIN = path.join(ROOT, 'bin/passage.js');
const children = new Set<ChildProcess>();

export interface Companion {
  child: ChildProcess;
  url: string;
  port: number;
  /** The edge's operator listener (/healthz, /metrics); '' for a bridge. */
  adminUrl: string;
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts `passage <args>` and waits for its ready lines (`passage <what> listening on URL`; an
 * edge's admin line too). An edge whose args name no `--admin-listen` gets port 0 for it: no
 * test holds a fixed port.
 */
export function startCompanion(args: string[], env: Record<string, string> = {}): Promise<Companion> {
  const hasEdge = args[0] !== 'bridge';
  if (hasEdge && !args.includes('--admin-listen')) args = [...args, '--admin-listen', '127.0.0.1:0'];
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout.push(d);
      buffered += d;
      const m = /listening on (https?:\/\/\S+)/.exec(buffered);
      const admin = /passage admin listening on (http:\/\/\S+)/.exec(buffered);
      if (m && (admin || !hasEdge)) {
        const url = m[1]!;
        resolve({
          child,
          url,
          adminUrl: admin?.[1] ?? '',
          port: Number(new URL(url).port),
          stdout,
          stderr,
          exited,
          // SIGINT stops at once; SIGTERM would drain an edge (its sessions moved first, up to --drain-timeout).
          stop(signal: NodeJS.Signals = 'SIGINT') {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`passage ${args.join(' ')} exited (${code}) before ready:\n${stderr.join('')}`)));
  });
}

/** Runs `passage <args>` to completion (an edge's admin listener on port 0 unless the args name one). */
export function runCompanion(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  if (args[0] === 'edge' && !args.includes('--admin-listen')) args = [...args, '--admin-listen', '127.0.0.1:0'];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Stops a child the test started (SIGTERM) and waits until it has exited; nothing when it already has. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
export async function cpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

/** Resident set size of a process, from /proc (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** One sample of an edge's Prometheus metrics (`adminUrl`: its admin listener): `name` with `label` (e.g. `{direction="up"}`), 0 when absent. */
export async function edgeCounter(adminUrl: string, name: string, label = ''): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + label + ' '));
  return Number(line?.split(' ').at(-1) ?? 0);
}

/** Streams an edge opened per transport, from its Prometheus metrics. */
export async function streamsOpened(adminUrl: string): Promise<{ meek: number; webtransport: number; webrtc: number }> {
  const count = (t: string) => edgeCounter(adminUrl, 'passage_edge_streams_opened_total', `{transport="${t}"}`);
  return { meek: await count('meek'), webtransport: await count('webtransport'), webrtc: await count('webrtc') };
}
