import { existsSync } from 'node:fs';
import { StateDir } from '@opdbus/core';
import type { AnyPlugin, Engine, Logger, Actor, RecoveryReport } from '@opdbus/core';
import {
  builtinPluginNames,
  defaultConfigPath,
  loadBuiltinPlugins,
  type BuiltinPluginsOptions,
  createEngine as createRuntimeEngine,
  createDeferredLogger,
  recoverFirst as recoverRuntime,
} from '@opdbus/runtime';
import { defaultStateDir, stdio, type GlobalOptions, type Output } from './io.js';
import { reportError } from './report.js';

export { defaultStateDir, reportError, stdio, type GlobalOptions, type Output };
export { ensureStateDir, ledgerAuditSink, ledgerPaths, targetOf } from '@opdbus/runtime';

/** A pino logger on stderr, named `opdbus`, loaded at its first record (a command that logs nothing does without pino). */
export function createLogger(level: string): Logger {
  return createDeferredLogger(level, 'opdbus');
}

/**
 * Whether plugin packages from outside are asked for: `--plugin`, `OPDBUS_PLUGINS`, `--config`, or
 * the default configuration file exists. Without them only built-in plugins load, each on demand.
 */
function outsidePlugins(options: GlobalOptions): boolean {
  return (
    (options.plugin?.length ?? 0) > 0 ||
    options.config !== undefined ||
    (process.env.OPDBUS_PLUGINS ?? '').trim() !== '' ||
    existsSync(defaultConfigPath)
  );
}

/**
 * The plugins a command works with: the built-in ones and the plugin packages named by `--plugin`,
 * `OPDBUS_PLUGINS` and the configuration file (`--config`), through `resolvePlugins` of
 * @opdbus/runtime. A refused package is said on stderr (`opdbus: plugin package refused …`); the
 * others load.
 */
export async function commandPlugins(
  options: GlobalOptions,
  builtin: BuiltinPluginsOptions = {},
  output: Output = stdio,
): Promise<AnyPlugin[]> {
  if (!outsidePlugins(options)) return loadBuiltinPlugins(undefined, builtin);
  // Loaded only here (its own entry point): resolving packages imports every built-in plugin.
  const { resolvePlugins } = await import('@opdbus/runtime/plugin-packages');
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
 * The plugins a command scoped to `names` needs: only those built-in ones, unless plugin packages
 * from outside are asked for (then {@link commandPlugins}), a name is not built in (the registry
 * then reports it with every plugin it could have been), or a transaction in the state directory
 * is unfinished (its recovery may need any plugin).
 */
export async function pluginsFor(
  options: GlobalOptions,
  names: readonly string[] | undefined,
  dbusServices?: readonly string[],
  output: Output = stdio,
  builtin: BuiltinPluginsOptions = {},
): Promise<AnyPlugin[]> {
  const opts = dbusServices === undefined ? builtin : { ...builtin, dbusServices };
  if (outsidePlugins(options)) return commandPlugins(options, opts, output);
  if (names === undefined || names.some((n) => !builtinPluginNames.includes(n)))
    return loadBuiltinPlugins(undefined, opts);
  let unfinished: boolean;
  try {
    unfinished = (await new StateDir(options.stateDir).unfinished()).length > 0;
  } catch {
    unfinished = true; // unreadable journals: let recovery see them with every plugin
  }
  return loadBuiltinPlugins(unfinished ? undefined : names, opts);
}

/**
 * Recover transactions a dead process left unfinished, and say so on stderr. Commands that
 * only read skip it when another op-dbus holds the lock (it is at work) or there is no state
 * directory yet.
 */
export async function recoverFirst(engine: Engine, output: Output): Promise<RecoveryReport[]> {
  return recoverRuntime(engine, (line) => output.err(`opdbus: ${line}`));
}
