import type { AnyPlugin, Engine, Logger, Actor, RecoveryReport } from '@opdbus/core';
import {
  builtinPlugins,
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

/** Build the engine for a command (see `createEngine` of @opdbus/runtime): every engine records to the ledger. */
export function createEngine(
  options: GlobalOptions,
  plugins: AnyPlugin[] = builtinPlugins(),
  logger = createLogger(options.logLevel),
  extra: { actor?: Actor } = {},
): Engine {
  return createRuntimeEngine(options, { plugins, logger, ...extra });
}

/**
 * Recover transactions a dead process left unfinished, and say so on stderr. Commands that
 * only read skip it when another op-dbus holds the lock (it is at work) or there is no state
 * directory yet.
 */
export async function recoverFirst(engine: Engine, output: Output): Promise<RecoveryReport[]> {
  return recoverRuntime(engine, (line) => output.err(`opdbus: ${line}`));
}
