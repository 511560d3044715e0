/**
 * Structured logs (pino) on stderr, so stdout carries only the ready lines that scripts and tests
 * read. Payload bytes are never logged; secrets are redacted wherever a caller puts them.
 */
import pino, { type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Field names that hold secrets, at the top level and one object down (pino's `*` is one level). */
const SECRET_FIELDS = ['token', 'authToken', 'auth', 'pairingToken', 'password', 'secret', 'key'];
const SECRET_HEADERS = ['authorization', 'x-meek-auth', 'cookie', 'proxy-authorization'];

export const REDACT_PATHS = [
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]),
  ...SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `*.headers["${h}"]`]),
];

/**
 * A logger at `level` named `name`. `destination` is stderr (fd 2) unless a test passes a stream.
 * Redacted values are replaced, not removed, so a log still shows that a token was present.
 */
export function createLogger(level: LogLevel, name: string, destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}
