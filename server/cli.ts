/**
 * `passage` — the companion. `passage edge` terminates meek; `passage bridge` is the loopback
 * proxy the browser's PAC points at; `passage` alone (what `npm start` runs) starts the demo.
 */
import { Command, Option } from 'commander';
import { ConfigError, EDGE_DEFAULTS, parseEdgeConfig, type EdgeOptionValues } from './edge/config.ts';
import { runEdge } from './edge/run-edge.ts';
import { createLogger } from './log.ts';
import path from 'node:path';
import { startBridge } from './bridge/bridge.ts';
import { BRIDGE_DEFAULT_LISTEN, parseBridgeConfig, type BridgeOptionValues } from './bridge/config.ts';
import { defaultConfigDir, loadOrCreatePairingToken } from './bridge/pairing.ts';
import { buildExtension, extensionIsStale } from './extension-build.ts';
import { packageRoot, shippedExtensionId } from './paths.ts';
import { encodeConfigLink } from '../shared/config-link.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function edgeOptions(cmd: Command): Command {
  const d = EDGE_DEFAULTS;
  return cmd
    .option('--listen <host:port>', 'address to listen on (port 0: any free port)', d.listen)
    .addOption(new Option('--mode <mode>', 'raw: one fixed TCP upstream per session (Tor/Lantern meek-server); remux: ReMux streams dialed by the edge').choices(['raw', 'remux']).default(d.mode))
    .option('--upstream <host:port>', 'the fixed upstream of --mode raw')
    .option('--path <path>', 'URL path of the meek endpoint', d.path)
    .option('--max-body <bytes>', 'largest request and response body', d.maxBody)
    .option('--holdoff <ms>', 'how long a small poll waits for downstream bytes', d.holdoff)
    .option('--idle-timeout <seconds>', 'close sessions idle this long', d.idleTimeout)
    .option('--auth-token <token>', 'shared secret clients send in X-Meek-Auth (env PASSAGE_AUTH_TOKEN); required off loopback')
    .option('--insecure-no-auth', 'allow a non-loopback listener without a token (an open relay: avoid)')
    .option('--max-sessions <n>', 'concurrent meek sessions', d.maxSessions)
    .option('--max-streams <n>', 'concurrent streams per session', d.maxStreams)
    .option('--dial-timeout <seconds>', 'give up dialing a destination after this long', d.dialTimeout)
    .option('--allow-private', 'let streams reach loopback and private addresses (tests and labs only)')
    .option('--cert <file>', 'TLS certificate (PEM); serve HTTPS with --key')
    .option('--key <file>', 'TLS private key (PEM)')
    .addOption(new Option('--log-level <level>', 'log verbosity (logs go to stderr)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(d.logLevel))
    .addOption(new Option('--test-resolve <name=ip>', 'test only: resolve NAME to IP in the dialer').argParser(collect).hideHelp())
    .addOption(new Option('--test-drop-every <n>', 'test only: drop every Nth meek response after processing').hideHelp());
}

type Closer = { close(): Promise<void> };

/** SIGINT/SIGTERM close everything and exit 0; installed before any ready line is printed. */
function onSignals(logger: { info(o: object, m: string): void }, closers: Closer[]): void {
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    void Promise.all(closers.map((c) => c.close())).then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function runBridgeFromValues(values: BridgeOptionValues) {
  const config = parseBridgeConfig(values, shippedExtensionId());
  const logger = createLogger(config.logLevel, 'passage-bridge');
  const token = config.token ?? loadOrCreatePairingToken(config.configDir);
  const bridge = await startBridge({ host: config.host, port: config.port, token, allowedExtensions: config.allowedExtensions, logger });
  return { bridge, token, logger };
}

const program = new Command('passage')
  .description('Passage companion: the meek edge and the loopback bridge for the Passage browser extension')
  .showHelpAfterError();

edgeOptions(program.command('edge').description('terminate meek (and ReMux) and dial destinations')).action(async (opts: EdgeOptionValues) => {
  const config = parseEdgeConfig(opts, process.env);
  const logger = createLogger(config.logLevel, 'passage-edge');
  const edge = await runEdge(config, logger);
  onSignals(logger, [edge]);
  process.stdout.write(`passage edge listening on ${edge.url}\n`);
  logger.info({ mode: config.mode, path: config.path, auth: config.authToken !== null }, 'edge ready');
});

const bridgeOptions = (cmd: Command) =>
  cmd
    .option('--token <token>', 'pairing token the extension must present (default: generated once, kept in the config folder)')
    .addOption(new Option('--allow-extension <id>', 'extension id allowed to link (repeatable; default: the shipped extension)').argParser(collect))
    .option('--config-dir <dir>', 'where the pairing token is kept', defaultConfigDir())
    .addOption(new Option('--log-level <level>', 'log verbosity (logs go to stderr)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'));

bridgeOptions(program.command('bridge').description('the loopback proxy the PAC points at (HTTP CONNECT, plain HTTP, SOCKS5), linked to the extension'))
  .option('--listen <host:port>', 'loopback address to listen on (port 0: any free port)', BRIDGE_DEFAULT_LISTEN)
  .action(async (opts: BridgeOptionValues) => {
    const { bridge, logger } = await runBridgeFromValues(opts);
    onSignals(logger, [bridge]);
    process.stdout.write(`passage bridge listening on ${bridge.url}\n`);
  });

bridgeOptions(
  program
    .command('start', { isDefault: true })
    .description('what `npm start` runs: builds the extension if needed, then an edge and a bridge on loopback')
    .option('--edge-listen <host:port>', 'edge address', EDGE_DEFAULTS.listen)
    .option('--bridge-listen <host:port>', 'bridge address', BRIDGE_DEFAULT_LISTEN)
    .option('--no-build', 'do not build the extension into dist/ even when it is stale'),
).action(async (opts: BridgeOptionValues & { edgeListen: string; bridgeListen: string; build: boolean }) => {
  const root = packageRoot();
  if (opts.build && extensionIsStale(root)) {
    process.stderr.write('passage: building the extension into dist/ …\n');
    buildExtension(root);
  }
  const edgeConfig = parseEdgeConfig({ ...EDGE_DEFAULTS, listen: opts.edgeListen, logLevel: opts.logLevel }, process.env);
  const edgeLogger = createLogger(edgeConfig.logLevel, 'passage-edge');
  const edge = await runEdge(edgeConfig, edgeLogger);
  const { bridge, token, logger } = await runBridgeFromValues({ ...opts, listen: opts.bridgeListen });
  onSignals(logger, [bridge, edge]);
  const link = encodeConfigLink({ edgeUrl: `${edge.url}/`, bridgePort: bridge.port, pairingToken: token, authToken: '' });
  process.stdout.write(
    [
      `passage edge listening on ${edge.url}`,
      `passage bridge listening on ${bridge.url}`,
      '',
      `Load the extension: chrome://extensions → Developer mode → Load unpacked → ${path.join(root, 'dist')}`,
      `Pairing token: ${token}`,
      `Or paste this config link into Passage's options (Import): ${link}`,
      '',
    ].join('\n'),
  );
});

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof ConfigError) {
    process.stderr.write(`passage: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`passage: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
