/**
 * Structured logs (pino) on stderr, so stdout carries only the ready lines that scripts and tests
 * read. Payload bytes are never logged; anything that looks like a secret is redacted.
 */
import pino, { type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, name: string): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['token', 'authToken', 'auth', '*.token', '*.authToken', 'headers["x-meek-auth"]', 'headers.authorization'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
