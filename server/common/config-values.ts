/**
 * The value parsers every command's options share. A value the companion cannot honour is a
 * ConfigError: the CLI prints its message in one line and exits 2 (the operator's mistake, not a bug).
 */
import { parseIPv4, parseIPv6 } from '../../shared/ip.ts';
import { LOG_LEVELS, type LogLevel } from './log.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** HOST:PORT with IPv6 in brackets; port 0 means "any free port" where `allowZero`. */
export function parseHostPort(text: string, what: string, allowZero: boolean): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new ConfigError(`${what} must be HOST:PORT (IPv6 as [ADDR]:PORT), got "${text}"`);
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && parseIPv6(host) === null) throw new ConfigError(`${what}: not an IPv6 address in "${text}"`);
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowZero)) throw new ConfigError(`${what}: port out of range in "${text}"`);
  return { host, port };
}

export function integer(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new ConfigError(`${what} must be a whole number, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(`${what} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Loopback listen addresses need no token: only this machine can reach them. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const v4 = parseIPv4(host);
  if (v4 !== null) return v4 >>> 24 === 127;
  const v6 = parseIPv6(host);
  return v6 !== null && v6.slice(0, 7).every((w) => w === 0) && v6[7] === 1;
}

export function parseLogLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return text as LogLevel;
}
