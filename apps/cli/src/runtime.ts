import type { AnyPlugin, Engine, Logger, Actor, RecoveryReport } from '@opdbus/core';
import {
  resolvePlugins,
  type BuiltinPluginsOptions,
  createEngine as createRuntimeEngine,
  createLogger as createRuntimeLogger,
  recoverFirst as recoverRuntime,
} from '@opdbus/runtime';
import { defaultStateDir, stdio, type GlobalOptions, type Output } from './io.js';
import { reportError } from './report.js';

export { defaultStateDir, reportError, stdio, type GlobalOptions, type Output };
export { ensureStateDir, ledgerAuditSink, ledgerPaths, targetOf } from '@opdbus/runtime';

/** A pino logger on stderr, named `opdbus`. */
export function createLogger(level: string): Logger {
  return createRuntimeLogger(level, 'opdbus');
}

/**
 * The plugins a command works with: the built-in ones and the plugin packages named by `--plugin`,
 * `OPDBUS_PLUGINS` and the configuration file (`--config`), through `resolvePlugins` of
 * @opdbus/runtime. A refused package is said on stderr (`opdbus: Package … refused`); the others load.
 */
export async function commandPlugins(
  options: GlobalOptions,
  builtin: BuiltinPluginsOptions = {},
  output: Output = stdio,
): Promise<AnyPlugin[]> {
  const { plugins, refusals } = await resolvePlugins({
    ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
    ...(options.config === undefined ? {} : { config: options.config }),
    builtin,
  });
  for (const err of refusals) output.err(`opdbus: plugin package refused (${err.code}): ${err.message}`);
  return plugins;
}

/**
 * Build the engine for a command (see `createEngine` of @opdbus/runtime): every engine records to
 * the ledger. Without `plugins`, those of {@link commandPlugins}.
 */
export async function createEngine(
  options: GlobalOptions,
  plugins?: AnyPlugin[],
  logger = createLogger(options.logLevel),
  extra: { actor?: Actor } = {},
): Promise<Engine> {
  return createRuntimeEngine(options, {
    plugins: plugins ?? (await commandPlugins(options)),
    logger,
    ...extra,
  });
}

/**
 * Recover transactions a dead process left unfinished, and say so on stderr. Commands that
 * only read skip it when another op-dbus holds the lock (it is at work) or there is no state
 * directory yet.
 */
export async function recoverFirst(engine: Engine, output: Output): Promise<RecoveryReport[]> {
  return recoverRuntime(engine, (line) => output.err(`opdbus: ${line}`));
}
