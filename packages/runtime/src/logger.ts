import type { Logger } from '@opdbus/core';
import { pino } from 'pino';

/**
 * A pino logger writing JSON lines to stderr (journald and log shippers read them as they are).
 *
 * @param level - pino level (`info`, `debug`, `silent` …)
 * @param name - the `name` field of every line (the app: `opdbus`, `opdbusd`, `opdbus-mcp`)
 */
export function createLogger(level: string, name = 'opdbus'): Logger {
  return pino({ level, base: { name } }, pino.destination(2));
}
