import { createRequire } from 'node:module';
import type { Logger, LogFn } from '@opdbus/core';
import type { pino as Pino } from 'pino';

const levelValues: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};
type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/**
 * The same logger as `createLogger`, with pino loaded at the first record at or above
 * `level`: a short command that logs nothing (the CLI at its default level `warn`) does without
 * loading pino at all. Children made before that get their pino children then.
 *
 * @example
 * ```ts
 * const logger = createDeferredLogger('warn', 'opdbus');
 * logger.info('not written, and pino not loaded');
 * logger.warn({ plugin: 'network' }, 'written: pino is loaded now');
 * ```
 */
export function createDeferredLogger(level: string, name = 'opdbus'): Logger {
  let root: Logger | undefined;
  const real = (): Logger => {
    if (root === undefined) {
      // Synchronous, like the call that logs: pino is a CommonJS package.
      const { pino: load } = createRequire(import.meta.url)('pino') as { pino: typeof Pino };
      root = load({ level, base: { name } }, load.destination(2));
    }
    return root;
  };
  return deferred(level, real);
}

function deferred(level: string, real: () => Logger): Logger {
  let made: Logger | undefined;
  const get = (): Logger => (made ??= real());
  const at =
    (name: LevelName): LogFn =>
    (...args: unknown[]) => {
      if ((levelValues[name] ?? 0) < (levelValues[logger.level] ?? 0)) return;
      const target = get();
      target.level = logger.level;
      (target[name] as (...a: unknown[]) => void)(...args);
    };
  const logger: Logger = {
    level,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (bindings) => deferred(logger.level, () => get().child(bindings)),
  };
  return logger;
}
