/**
 * `passage` alone, what `npm start` runs: the extension built when stale, then an edge and a
 * bridge on loopback, and the lines a new user needs (where the builds are, the pairing token, a link).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { encodeConfigLink } from '../../shared/config-link.ts';
import type { BridgeOptionValues } from '../bridge/config.ts';
import { createLogger } from '../common/log.ts';
import { packageRoot } from '../common/paths.ts';
import { EDGE_DEFAULTS, parseEdgeConfig } from '../edge/config.ts';
import type { RunningWebTransport } from '../webtransport/webtransport-edge.ts';
import { bridgeLines, startBridgeCommand } from './bridge.ts';
import { startEdge } from './edge.ts';
import { buildExtension, extensionIsStale } from './extension-build.ts';

export type StartOptionValues = BridgeOptionValues & { edgeListen: string; bridgeListen: string; wtListen: string; adminListen: string; webtransport: boolean; build: boolean };

/** The ready line of the WebTransport endpoint, with the hash a client pins. */
export function webtransportLine(wt: RunningWebTransport): string {
  const { url, certificateHashes } = wt.discovery();
  const pin = certificateHashes.length > 0 ? ` (certificate sha-256 ${certificateHashes[0]})` : '';
  return `passage webtransport listening on ${url}${pin}\n`;
}

export async function startDemo(opts: StartOptionValues): Promise<{ logger: Logger; closers: Array<{ close(): Promise<void> }>; lines: string }> {
  const root = packageRoot();
  if (opts.build && extensionIsStale(root)) {
    process.stderr.write('passage: building the extension into dist/ and dist-firefox/ …\n');
    buildExtension(root);
  }
  const edgeConfig = parseEdgeConfig(
    { ...EDGE_DEFAULTS, listen: opts.edgeListen, adminListen: opts.adminListen, logLevel: opts.logLevel, configDir: opts.configDir, ...(opts.webtransport ? { wtListen: opts.wtListen } : {}) },
    process.env,
  );
  const edge = await startEdge(edgeConfig, createLogger(edgeConfig.logLevel, 'passage-edge'));
  let started: Awaited<ReturnType<typeof startBridgeCommand>>;
  try {
    started = await startBridgeCommand({ ...opts, listen: opts.bridgeListen });
  } catch (e) {
    await edge.close();
    throw e;
  }
  const { bridge, token, tokenFile, logger } = started;
  const link = encodeConfigLink({
    edgeUrl: `${edge.url}/`,
    bridgePort: bridge.port,
    pairingToken: token,
    authToken: edgeConfig.authToken ?? '',
    webtransportHashes: edge.webtransport?.discovery().certificateHashes ?? [],
  });
  const lines = [
    `passage edge listening on ${edge.url}`,
    ...(edge.webtransport ? [webtransportLine(edge.webtransport).trimEnd()] : []),
    `passage admin listening on ${edge.adminUrl}`,
    `passage bridge listening on ${bridge.url}`,
    '',
    `Load the extension: chrome://extensions → Developer mode → Load unpacked → ${path.join(root, 'dist')}`,
    `  or in Firefox: about:debugging → This Firefox → Load Temporary Add-on → ${path.join(root, 'dist-firefox', 'manifest.json')}`,
    bridgeLines(bridge.url, token, tokenFile).trimEnd(),
    `Or paste this config link into Passage's options (Import): ${link}`,
    '',
  ].join('\n');
  return { logger, closers: [bridge, edge], lines };
}
