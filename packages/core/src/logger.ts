/**
 * The logger interface op-dbus libraries accept: pino's shape (levels + `child()`), as fastify's
 * `FastifyBaseLogger`. Libraries never write to the console; they default to {@link silentLogger}.
 */

/** One log method: `(obj, msg?)` or `(msg)`, as pino. */
export interface LogFn {
  (obj: object, msg?: string, ...args: unknown[]): void;
  (msg: string, ...args: unknown[]): void;
}

/** A pino-compatible logger. A `pino()` instance satisfies it. */
export interface Logger {
  level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger whose records carry `bindings` (e.g. `{ plugin, txId }`). */
  child(bindings: Record<string, unknown>): Logger;
}

const noop: LogFn = () => undefined;

/** A logger that discards everything: the default of every library. */
export const silentLogger: Logger = {
  level: 'silent',
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
  child: () => silentLogger,
};
