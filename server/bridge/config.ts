/** The bridge's options, validated at start-up. It listens on loopback only. */
import { ConfigError, isLoopbackHost, parseHostPort, parseLogLevel } from '../common/config-values.ts';
import type { LogLevel } from '../common/log.ts';

export interface BridgeConfig {
  host: string;
  port: number;
  token: string | null;
  allowedExtensions: Set<string>;
  configDir: string;
  logLevel: LogLevel;
}

export interface BridgeOptionValues {
  listen: string;
  token?: string;
  allowExtension?: string[];
  configDir: string;
  logLevel: string;
}

export const BRIDGE_DEFAULT_LISTEN = '127.0.0.1:8081';

export function parseBridgeConfig(v: BridgeOptionValues, shippedId: string): BridgeConfig {
  const listen = parseHostPort(v.listen, '--listen', true);
  if (!isLoopbackHost(listen.host)) throw new ConfigError(`the bridge listens on loopback only (got ${listen.host})`);
  if (v.token !== undefined && !/^[A-Za-z0-9_-]{16,}$/.test(v.token)) throw new ConfigError('--token must be at least 16 characters of [A-Za-z0-9_-]');
  const ids = v.allowExtension?.length ? v.allowExtension : [shippedId];
  for (const id of ids) if (!/^[a-p]{32}$/.test(id)) throw new ConfigError(`--allow-extension wants a 32-letter extension id (a–p), got "${id}"`);
  const logLevel = parseLogLevel(v.logLevel);
  return { host: listen.host, port: listen.port, token: v.token ?? null, allowedExtensions: new Set(ids), configDir: v.configDir, logLevel };
}
