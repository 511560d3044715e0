/**
 * `passage` — the companion. `passage edge` terminates meek; `passage bridge` is the loopback
 * proxy the browser's PAC points at; `passage` alone (what `npm start` runs) starts the demo.
 * stdout carries only the ready lines scripts and tests wait for; logs go to stderr.
 */
import { Command, Option } from 'commander';
import { BRIDGE_DEFAULT_LISTEN, type BridgeOptionValues } from './bridge/config.ts';
import { bridgeLines, startBridgeCommand } from './commands/bridge.ts';
import { startEdge } from './commands/edge.ts';
import { startDemo, webtransportLine, type StartOptionValues } from './commands/start.ts';
import { ConfigError } from './common/config-values.ts';
import { createLogger, LOG_LEVELS } from './common/log.ts';
import { defaultConfigDir } from './common/paths.ts';
import { EDGE_DEFAULTS, parseEdgeConfig, type EdgeOptionValues } from './edge/config.ts';

const START_WT_LISTEN = '127.0.0.1:8443';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** An option whose default shows in --help as written (commander would quote a string default). */
const withDefault = (flags: string, description: string, value: string) => new Option(flags, description).default(value, value);

const logLevelOption = () =>
  new Option('--log-level <level>', 'log verbosity (JSON logs on stderr)').choices(LOG_LEVELS).default('info', 'info');

function edgeOptions(cmd: Command): Command {
  const d = EDGE_DEFAULTS;
  return cmd
    .addOption(withDefault('--listen <host:port>', 'address to listen on; port 0 picks a free port (IPv6 as [addr]:port)', d.listen))
    .addOption(
      new Option('--mode <mode>', 'raw: every session to one fixed TCP upstream (Tor/Lantern meek-server); remux: ReMux streams, each dialed by the edge')
        .choices(['raw', 'remux'])
        .default(d.mode, d.mode),
    )
    .option('--upstream <host:port>', 'the fixed upstream of --mode raw (required there, refused in remux mode)')
    .option('--upstream-proxy-protocol <version>', 'raw mode: start each upstream connection with a PROXY protocol header naming the client (v2; default: none)')
    .addOption(withDefault('--path <path>', 'URL path of the meek endpoint; starts and ends with "/"', d.path))
    .addOption(withDefault('--max-body <bytes>', 'largest request and response body (1024 … 16777216)', d.maxBody))
    .addOption(withDefault('--holdoff <ms>', 'how long a small poll waits for downstream bytes', d.holdoff))
    .addOption(withDefault('--stream-max <seconds>', 'meek v2: longest life of one streaming response (keep it under your CDN\'s limit)', d.streamMax))
    .addOption(withDefault('--padding <on|off>', 'meek v2: random padding on answers and on the first frames of each stream', d.padding))
    .addOption(withDefault('--idle-timeout <seconds>', 'close sessions idle this long', d.idleTimeout))
    .option('--auth-token <token>', 'shared secret clients send in X-Meek-Auth (default: env PASSAGE_AUTH_TOKEN; none); required off loopback')
    .option('--insecure-no-auth', 'allow a non-loopback listener without a token (an open relay: labs only)')
    .addOption(withDefault('--max-sessions <n>', 'concurrent sessions, meek and WebTransport together; more get 503', d.maxSessions))
    .addOption(withDefault('--max-streams <n>', 'concurrent streams per session; more are RESET 0x06', d.maxStreams))
    .addOption(withDefault('--dial-timeout <seconds>', 'give up resolving and connecting a destination after this long (RESET 0x03)', d.dialTimeout))
    .option('--allow-private', 'let streams reach loopback, private and link-local addresses (tests and labs only)')
    .option('--cert <file>', 'TLS certificate chain (PEM); with --key the edge serves HTTPS (default: plain HTTP)')
    .option('--key <file>', 'TLS private key (PEM), with --cert')
    .option('--wt-listen <host:port>', 'also serve WebTransport (HTTP/3 over UDP) here, same path and token; with --cert/--key it uses them, else a self-signed certificate pinned by hash (default: off)')
    .option('--wt-advertise <url>', 'the WebTransport URL clients are told to use, when it differs from https://HOST:PORT<path> (NAT, a relay)')
    .addOption(withDefault('--config-dir <dir>', 'where generated WebTransport certificates are kept', d.configDir))
    .addOption(new Option('--resolve <name=ip>', 'dial NAME at IP instead of asking DNS (repeatable; the destination policy still judges IP)').argParser(collect))
    .addOption(withDefault('--admin-listen <host:port>', 'where /healthz and /metrics answer (loopback: anyone who can reach it; elsewhere: with the token)', d.adminListen))
    .option('--cover <url>', 'requests without a valid token are reverse-proxied to this site (default: a small built-in static site answers them)')
    .option('--require-header <name:value>', 'a header (added by your CDN) every tunnel request must carry, besides the token; without it the cover answers')
    .addOption(new Option('--trusted-proxy <addr[/bits]>', 'a load balancer, reverse proxy or CDN whose PROXY v2 header or X-Forwarded-For names the client (repeatable)').argParser(collect))
    .addOption(withDefault('--session-buffer <bytes>', 'memory one session may hold: downstream, control frames and all its streams\' buffers', d.sessionBuffer))
    .addOption(withDefault('--max-memory <bytes>', 'memory all sessions together may hold; past it new streams are RESET 0x06 and new sessions get 503', d.maxMemory))
    .addOption(withDefault('--max-sessions-per-client <n>', 'sessions one client address (IPv6: its /64) may hold at once', d.maxSessionsPerClient))
    .addOption(new Option('--turn <url>', 'a TURN server clients relay WebRTC through: turn:HOST:PORT?transport=udp, turn:HOST:PORT?transport=tcp or turns:HOST:PORT (TLS); repeatable, all offered (default: no WebRTC)').argParser(collect))
    .option('--turn-secret <secret>', 'the TURN server\'s shared secret (coturn static-auth-secret) for short-lived credentials (default: env PASSAGE_TURN_SECRET)')
    .addOption(withDefault('--turn-ttl <seconds>', 'how long the TURN credentials handed to a client stay valid', d.turnTtl))
    .option('--rtc-address <ip>', 'the address the edge\'s WebRTC peer binds and offers: the one the TURN server reaches it at (default: every interface)')
    .addOption(withDefault('--drain-notice <seconds>', 'on SIGTERM: /ready answers 404 this long (a balancer\'s check interval or more) before sessions are told to move', d.drainNotice))
    .addOption(withDefault('--drain-timeout <seconds>', 'on SIGTERM: how long open streams may finish before the edge cuts them and exits', d.drainTimeout))
    .addOption(logLevelOption());
}

/** What a signal stops; `drain` is the graceful stop SIGTERM asks for, where there is one. */
type Closer = { close(): Promise<void>; drain?(): Promise<void> };

/**
 * SIGINT closes everything and exits 0; SIGTERM (systemd's stop, a rolling restart) drains what
 * can drain first. Installed before any ready line is printed. A second signal while stopping
 * exits at once (an operator's second Ctrl-C means "now").
 */
function onSignals(logger: { info(o: object, m: string): void }, closers: Closer[]): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void Promise.all(closers.map((c) => (signal === 'SIGTERM' && c.drain ? c.drain() : c.close()))).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

const program = new Command('passage')
  .description('Passage companion: the meek edge and the loopback bridge for the Passage browser extension')
  .showHelpAfterError();

edgeOptions(program.command('edge').description('terminate meek (raw or ReMux) and dial destinations under the destination policy')).action(
  async (opts: EdgeOptionValues) => {
    const config = parseEdgeConfig(opts, process.env);
    const logger = createLogger(config.logLevel, 'passage-edge');
    const edge = await startEdge(config, logger);
    onSignals(logger, [edge]);
    process.stdout.write(`passage edge listening on ${edge.url}\n${edge.webtransport ? webtransportLine(edge.webtransport) : ''}passage admin listening on ${edge.adminUrl}\n`);
    logger.info({ mode: config.mode, path: config.path, auth: config.authToken !== null, allowPrivate: config.allowPrivate }, 'edge ready');
  },
);

const bridgeOptions = (cmd: Command) =>
  cmd
    .option('--token <token>', 'pairing token the extension must present (default: generated once, kept in the config folder)')
    .addOption(new Option('--allow-extension <id>', 'extension allowed to link: a Chromium extension id or a Firefox install UUID (repeatable; default: the shipped Chromium extension and any Firefox install)').argParser(collect))
    .addOption(withDefault('--config-dir <dir>', 'where the pairing token is kept', defaultConfigDir()))
    .addOption(logLevelOption());

bridgeOptions(program.command('bridge').description('the loopback proxy the PAC points at (HTTP CONNECT, plain HTTP, SOCKS5), linked to the extension'))
  .addOption(withDefault('--listen <host:port>', 'loopback address to listen on (port 0: any free port)', BRIDGE_DEFAULT_LISTEN))
  .action(async (opts: BridgeOptionValues) => {
    const { bridge, token, tokenFile, logger } = await startBridgeCommand(opts);
    onSignals(logger, [bridge]);
    process.stdout.write(`passage bridge listening on ${bridge.url}\n${bridgeLines(bridge.url, token, tokenFile)}`);
  });

bridgeOptions(
  program
    .command('start', { isDefault: true })
    .description('the default, what `npm start` runs: builds the extension if needed, then an edge and a bridge on loopback')
    .addOption(withDefault('--edge-listen <host:port>', 'edge address (loopback)', EDGE_DEFAULTS.listen))
    .addOption(withDefault('--bridge-listen <host:port>', 'bridge address (loopback)', BRIDGE_DEFAULT_LISTEN))
    .addOption(withDefault('--wt-listen <host:port>', 'WebTransport (UDP) address (loopback)', START_WT_LISTEN))
    .addOption(withDefault('--admin-listen <host:port>', 'the edge\'s /healthz and /metrics (loopback)', EDGE_DEFAULTS.adminListen))
    .option('--no-webtransport', 'meek only: do not start the WebTransport endpoint')
    .option('--no-build', 'do not build the extension into dist/ even when it is stale'),
).action(async (opts: StartOptionValues) => {
  const { logger, closers, lines } = await startDemo(opts);
  onSignals(logger, closers);
  process.stdout.write(lines);
});

/** A failure at start-up: one clear line, no stack, for the mistakes an operator makes. */
function startupMessage(e: unknown): string | null {
  if (e instanceof ConfigError) return e.message;
  const err = e as NodeJS.ErrnoException | null;
  // listen() failures (EADDRINUSE, EACCES, EADDRNOTAVAIL) are the operator's to fix, not bugs.
  if (err && typeof err.code === 'string' && err.syscall === 'listen') return err.message;
  return null;
}

program.parseAsync(process.argv).catch((e: unknown) => {
  const message = startupMessage(e);
  if (message !== null) {
    process.stderr.write(`passage: ${message}\n`);
    process.exit(2);
  }
  process.stderr.write(`passage: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
