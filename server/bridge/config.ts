/** The bridge's options, validated at start-up. It listens on loopback only. */
import { ConfigError, isLoopbackHost, parseHostPort, parseLogLevel } from '../common/config-values.ts';
import type { LogLevel } from '../common/log.ts';

export interface BridgeConfig {
  host: string;
  port: number;
  token: string | null;
  /** Chromium extension ids (`chrome-extension://ID`) that may link. */
  allowedExtensions: Set<string>;
  /** Firefox installs (`moz-extension://UUID`) that may link; null: any, with the token. */
  allowedFirefox: Set<string> | null;
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

/** A Chromium extension id: 32 letters a–p. */
export const CHROMIUM_ID = /^[a-p]{32}$/;
/** Firefox gives each install a random UUID for its `moz-extension://` origin (about:debugging shows it). */
export const FIREFOX_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const BRIDGE_DEFAULT_LISTEN = '127.0.0.1:8081';

export function parseBridgeConfig(v: BridgeOptionValues, shippedId: string): BridgeConfig {
  const listen = parseHostPort(v.listen, '--listen', true);
  if (!isLoopbackHost(listen.host)) throw new ConfigError(`the bridge listens on loopback only (got ${listen.host})`);
  if (v.token !== undefined && !/^[A-Za-z0-9_-]{16,}$/.test(v.token)) throw new ConfigError('--token must be at least 16 characters of [A-Za-z0-9_-]');
  const given = v.allowExtension ?? [];
  for (const id of given)
    if (!CHROMIUM_ID.test(id) && !FIREFOX_UUID.test(id)) throw new ConfigError(`--allow-extension wants a 32-letter Chromium extension id (a–p) or a Firefox install's internal UUID, got "${id}"`);
  const chromium = given.filter((id) => CHROMIUM_ID.test(id));
  const firefox = given.filter((id) => FIREFOX_UUID.test(id)).map((id) => id.toLowerCase());
  const logLevel = parseLogLevel(v.logLevel);
  return {
    host: listen.host,
    port: listen.port,
    token: v.token ?? null,
    allowedExtensions: new Set(chromium.length ? chromium : [shippedId]),
    allowedFirefox: firefox.length ? new Set(firefox) : null,
    configDir: v.configDir,
    logLevel,
  };
}
