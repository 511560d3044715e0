/**
 * `passage` — the companion. `passage edge` terminates meek; `passage bridge` is the loopback
 * proxy the browser's PAC points at; `passage` alone (what `npm start` runs) starts the demo.
 */
import { Command, Option } from 'commander';
import { ConfigError, EDGE_DEFAULTS, parseEdgeConfig, type EdgeOptionValues } from './edge/config.ts';
import { runEdge } from './edge/run-edge.ts';
import { createLogger } from './log.ts';

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

async function startEdgeCommand(values: EdgeOptionValues, label = 'edge'): Promise<void> {
  const config = parseEdgeConfig(values, process.env);
  const logger = createLogger(config.logLevel, `passage-${label}`);
  const edge = await runEdge(config, logger);
  // Handlers go in before the ready line: whoever reads it may signal at once.
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    void edge.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.stdout.write(`passage edge listening on ${edge.url}\n`);
  logger.info({ mode: config.mode, path: config.path, auth: config.authToken !== null }, 'edge ready');
}

const program = new Command('passage')
  .description('Passage companion: the meek edge and the loopback bridge for the Passage browser extension')
  .showHelpAfterError();

edgeOptions(program.command('edge').description('terminate meek (and ReMux) and dial destinations')).action((opts: EdgeOptionValues) => startEdgeCommand(opts));

program
  .command('bridge')
  .description('the loopback proxy the PAC points at, linked to the extension (not available yet)')
  .allowUnknownOption()
  .action(() => {
    throw new ConfigError('the bridge is not implemented yet in this version of Passage');
  });

program
  .command('start', { isDefault: true })
  .description('the demo on this machine: an edge on loopback (the bridge joins it once available)')
  .option('--listen <host:port>', 'edge address', EDGE_DEFAULTS.listen)
  .action(async (opts: { listen: string }) => {
    process.stderr.write('passage: starting the edge on loopback; the bridge is not available in this version yet\n');
    await startEdgeCommand({ ...EDGE_DEFAULTS, listen: opts.listen });
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof ConfigError) {
    process.stderr.write(`passage: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`passage: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
