/**
 * `npm run bench`: prints every figure Passage claims, as a table and as JSON.
 * Each comparison runs in the same process and run as its reference, interleaved, median of 3.
 */
import { benchCodec } from './codec-throughput.ts';
import { benchRemux, benchYamux, type MuxBenchResult } from './mux-throughput.ts';
import { benchEdgeThroughput, benchIdleSessions } from './edge-throughput.ts';
import { benchEdgeLoad } from './edge-load.ts';
import { benchShape } from './shape-classifier.ts';
import { benchScaleOut } from './scale-out.ts';
import { benchPacLookup } from './pac-lookup.ts';

interface Row {
  section: string;
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function muxSection(rows: Row[]): Promise<void> {
  const STREAMS = 8;
  const BYTES = 32 * 1024 * 1024;
  for (const copying of [false, true]) {
    const ours: MuxBenchResult[] = [];
    const theirs: MuxBenchResult[] = [];
    for (let i = 0; i < 3; i++) {
      theirs.push(await benchYamux(STREAMS, BYTES, copying));
      ours.push(await benchRemux(STREAMS, BYTES, copying));
    }
    const a = median(ours.map((r) => r.mbPerSecond));
    const b = median(theirs.map((r) => r.mbPerSecond));
    const pipe = copying ? 'copying pipe' : 'zero-copy pipe';
    rows.push({ section: 'mux 8×32 MiB', name: `passage remux (${pipe})`, value: a, unit: 'MB/s' });
    rows.push({ section: 'mux 8×32 MiB', name: `yamux 7.0.4 (${pipe})`, value: b, unit: 'MB/s' });
    rows.push({ section: 'mux 8×32 MiB', name: `ratio passage/yamux (${pipe})`, value: a / b, unit: '×', note: 'target ≥ 1.2' });
  }
}

function codecSection(rows: Row[]): void {
  for (const size of [1024, 16 * 1024, 65535]) {
    const r = median([0, 1, 2].map(() => benchCodec(size, 256 * 1024 * 1024).mbPerSecond));
    rows.push({ section: 'codec encode+decode', name: `${size}-byte frames`, value: r, unit: 'MB/s' });
  }
}

/** Tor's meek v0.38 measured on these machines the same way (docs: the edge issue). */
const TOR_MEEK = { up0: 4.4, down0: 94, up50: 0.78, down50: 0.92 };

async function edgeSection(rows: Row[]): Promise<void> {
  for (const r of await benchEdgeThroughput()) {
    const name = `${r.direction === 'up' ? 'upload' : 'download'}, ${r.sessions} session${r.sessions > 1 ? 's' : ''}, +${r.rttMs} ms RTT`;
    const tor = r.rttMs ? (r.direction === 'up' ? TOR_MEEK.up50 : TOR_MEEK.down50) : r.direction === 'up' ? TOR_MEEK.up0 : TOR_MEEK.down0;
    const notes = [`Tor meek ${tor} MB/s → ×${(r.mbPerSecond / tor).toFixed(1)}`];
    if (r.boundMbPerSecond) notes.unshift(`bound ${r.boundMbPerSecond.toFixed(1)} MB/s → ${((100 * r.mbPerSecond) / r.boundMbPerSecond).toFixed(0)} % (target ≥ 70 %)`);
    rows.push({ section: 'edge meek/remux', name, value: r.mbPerSecond, unit: 'MB/s', note: notes.join('; ') });
  }
  const idle = await benchIdleSessions(1000);
  rows.push({ section: 'edge memory', name: 'RSS with 1,000 idle sessions', value: idle.withSessions / 2 ** 20, unit: 'MiB', note: `idle edge ${(idle.baseline / 2 ** 20).toFixed(0)} MiB; target < 150 MiB` });
}

async function loadSection(rows: Row[]): Promise<void> {
  const { quiet, attacked } = await benchEdgeLoad();
  const section = 'edge load 1,000 sessions × 10 streams';
  const pairs: Array<[keyof typeof quiet, string, string]> = [
    ['rssMiB', 'edge RSS', 'MiB'],
    ['cpuPercent', 'edge CPU', '%'],
    ['downloadMBs', 'legitimate client download', 'MB/s'],
    ['pingMs', 'legitimate client ping-pong (median)', 'ms'],
  ];
  for (const [key, name, unit] of pairs) {
    rows.push({ section, name: `${name}, quiet`, value: quiet[key], unit });
    rows.push({ section, name: `${name}, under all attacks`, value: attacked[key], unit, note: `×${(attacked[key] / quiet[key]).toFixed(2)} of quiet` });
  }
}

const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)}`;

async function shapeSection(rows: Row[]): Promise<void> {
  const section = 'shape: tunnelled TLS vs plain HTTP, 300 + 300 connections, random forest';
  const results = await benchShape(300);
  const off = results.find((r) => r.shaping === 'off')!;
  for (const r of results) {
    const how = `shaping ${r.shaping}`;
    rows.push({ section, name: `AUC, ${how}`, value: r.auc, unit: '', note: 'a censor\'s ideal is 0.5' });
    rows.push({ section, name: `detected at 1 % false positives, ${how}`, value: 100 * r.detectAt1, unit: '%' });
    rows.push({ section, name: `outer bytes per connection, ${how}`, value: r.wirePerConnection, unit: 'B', note: r === off ? '' : `×${(r.wirePerConnection / off.wirePerConnection).toFixed(2)} of shaping off` });
    rows.push({ section, name: `first answer byte, plain HTTP, ${how}`, value: r.firstByteMs.plain, unit: 'ms', note: r === off ? '' : `${signed(r.firstByteMs.plain - off.firstByteMs.plain)} ms against off` });
    rows.push({ section, name: `first answer byte, TLS, ${how}`, value: r.firstByteMs.tls, unit: 'ms', note: r === off ? '' : `${signed(r.firstByteMs.tls - off.firstByteMs.tls)} ms against off` });
  }
}

async function scaleSection(rows: Row[]): Promise<void> {
  const results = await benchScaleOut();
  const one = results[0]!;
  for (const r of results) {
    const section = `scale-out: ${r.sessions} meek v2 sessions through HAProxy (TLS), ${r.edges} edge${r.edges > 1 ? 's' : ''}`;
    rows.push({ section, name: 'download, aggregate', value: r.downMBs, unit: 'MB/s', note: r === one ? '' : `×${(r.downMBs / one.downMBs).toFixed(2)} of 1 edge` });
    rows.push({ section, name: 'upload, aggregate', value: r.upMBs, unit: 'MB/s', note: r === one ? '' : `×${(r.upMBs / one.upMBs).toFixed(2)} of 1 edge` });
    rows.push({ section, name: 'edges RSS, together', value: r.edgesRssMiB, unit: 'MiB', note: `HAProxy ${r.haproxyRssMiB.toFixed(0)} MiB` });
    const mean = r.spread.reduce((a, b) => a + b, 0) / r.spread.length;
    rows.push({ section, name: 'sessions per edge, largest ÷ mean', value: Math.max(...r.spread) / mean, unit: '×', note: `sessions per edge: ${r.spread.join(', ')}` });
    rows.push({ section, name: 'edge CPU, all edges', value: r.edgeCpu.reduce((a, b) => a + b, 0), unit: 's', note: `per edge ${r.edgeCpu.map((c) => c.toFixed(1)).join(', ')} s; HAProxy ${r.haproxyCpu.toFixed(1)} s; 2 cores shared with the client` });
  }
}

function pacSection(rows: Row[]): void {
  const r = benchPacLookup();
  const section = `PAC with ${r.rules.toLocaleString('en')} rules`;
  rows.push({ section, name: 'lookup, median', value: r.medianMicros, unit: 'µs', note: 'target < 10 µs' });
  rows.push({ section, name: 'lookup, 99th percentile of rounds', value: r.p99Micros, unit: 'µs' });
  rows.push({ section, name: 'PAC script size', value: r.pacBytes / 1024, unit: 'KiB' });
}

const SECTIONS: Record<string, (rows: Row[]) => Promise<void> | void> = {
  codec: codecSection,
  mux: muxSection,
  edge: edgeSection,
  load: loadSection,
  shape: shapeSection,
  scale: scaleSection,
  pac: pacSection,
};

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const rows: Row[] = [];
  for (const [name, run] of Object.entries(SECTIONS)) {
    if (only.length && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}…\n`);
    await run(rows);
  }
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const width = Math.max(...rows.map((r) => r.section.length + r.name.length + 3));
  console.log(`${'benchmark'.padEnd(width)}  ${'value'.padStart(10)}  unit   note`);
  for (const r of rows) {
    console.log(`${`${r.section} · ${r.name}`.padEnd(width)}  ${fmt(r.value).padStart(10)}  ${r.unit.padEnd(5)}  ${r.note ?? ''}`);
  }
  console.log(JSON.stringify({ machine: { node: process.version, cpus: 2 }, results: rows }, null, 2));
  // The browser figures need Chromium and several minutes (idle polling is measured over 3).
  console.log('Chromium end to end (page load, download, idle polls): npm run bench:e2e');
}

await main();
