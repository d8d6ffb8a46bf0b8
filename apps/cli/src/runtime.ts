import { StateDir, terminalStatuses } from '@opdbus/core';
import type { AnyPlugin, Engine, Logger, Actor, RecoveryReport } from '@opdbus/core';
import {
  builtinPluginNames,
  loadBuiltinPlugins,
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
 * Build the engine for a command (see `createEngine` of @opdbus/runtime): every engine records to
 * the ledger. Without `plugins`, every built-in plugin is loaded.
 */
export async function createEngine(
  options: GlobalOptions,
  plugins?: AnyPlugin[],
  logger = createLogger(options.logLevel),
  extra: { actor?: Actor } = {},
): Promise<Engine> {
  return createRuntimeEngine(options, { plugins: plugins ?? (await loadBuiltinPlugins()), logger, ...extra });
}

/**
 * The plugins a command scoped to `names` needs: only those, unless a transaction in the state
 * directory is unfinished (its recovery may need any plugin; then all of them).
 */
export async function pluginsFor(
  options: GlobalOptions,
  names: readonly string[] | undefined,
  dbusServices?: readonly string[],
): Promise<AnyPlugin[]> {
  const opts = dbusServices === undefined ? {} : { dbusServices };
  // An unknown name is reported by the registry, with every plugin it could have been.
  if (names === undefined || names.some((n) => !builtinPluginNames.includes(n)))
    return loadBuiltinPlugins(undefined, opts);
  let unfinished: boolean;
  try {
    unfinished = (await new StateDir(options.stateDir).list()).some((r) => !terminalStatuses.has(r.status));
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
