import { existsSync } from 'node:fs';
import type { EventBus } from '@opdbus/core';
import {
  Engine,
  PluginRegistry,
  isOpdbusError,
  type Actor,
  type AnyPlugin,
  type AuditSink,
  type Logger,
  type OpdbusEvent,
  type RecoveryReport,
} from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { createDeferredLogger } from './deferredLogger.js';
import { targetOf, type RuntimeOptions } from './options.js';
import { spawnWatchdog } from './watchdog.js';
import { LedgerLog } from './ledgerLog.js';

/**
 * The audit sink every op-dbus app records to: the @opdbus/ledger transparency log in
 * STATE_DIR/ledger (through {@link LedgerLog}), with an encrypted snapshot of the observed state at
 * every committed apply. The ledger is loaded on first use, so a process that records nothing never
 * loads it.
 *
 * @param engine - the engine whose state a snapshot captures (called at record time)
 */
export function ledgerAuditSink(
  stateDir: string,
  engine: () => Engine,
  logger: Logger,
  options: { snapshots?: boolean } = {},
): AuditSink {
  return new LedgerLog(stateDir, logger).auditSink(engine, options);
}

/** Options of {@link createEngine}. */
export interface CreateEngineOptions {
  /**
   * The plugins to register: `await loadBuiltinPlugins(names)` (all of them without names), or
   * `builtinPlugins()` of `@opdbus/runtime/builtin-plugins`.
   */
  plugins: AnyPlugin[];
  /** Logger (default: pino on stderr at the options' level, loaded at its first record). */
  logger?: Logger;
  /** Who the engine's transactions are recorded as (default: the engine's: this process's user). */
  actor?: Actor;
  /** The event bus to publish on (default: a new one); engines of one app can share it. */
  events?: EventBus<OpdbusEvent>;
  /**
   * Take an encrypted state snapshot at every committed apply and confirm (default true). The
   * daemon's corrections, which put back what the document already says, do without.
   */
  snapshots?: boolean;
}

/**
 * An engine as the op-dbus apps build it: the target from the options, network namespaces opened
 * with @opdbus/netlink, the commit-confirmed watchdog as a detached process, and every transaction
 * recorded in the ledger (see {@link ledgerAuditSink}).
 *
 * @example
 * ```ts
 * const engine = createEngine(
 *   { stateDir: '/tmp/opdbus-state', logLevel: 'warn', netns: 'lab' },
 *   { plugins: await loadBuiltinPlugins(['network']) },
 * );
 * const observed = await engine.query(['network']);
 * ```
 */
export function createEngine(
  options: RuntimeOptions & { json?: boolean },
  extra: CreateEngineOptions,
): Engine {
  const logger = extra.logger ?? createDeferredLogger(options.logLevel);
  const engine: Engine = new Engine({
    registry: new PluginRegistry(extra.plugins),
    stateDir: options.stateDir,
    target: targetOf(options),
    openNetns,
    logger,
    spawnWatchdog: (txId) => spawnWatchdog(options, txId),
    audit: ledgerAuditSink(options.stateDir, () => engine, logger, {
      ...(extra.snapshots === undefined ? {} : { snapshots: extra.snapshots }),
    }),
    ...(extra.actor === undefined ? {} : { actor: extra.actor }),
    ...(extra.events === undefined ? {} : { events: extra.events }),
  });
  return engine;
}

/**
 * Recover transactions a dead process left unfinished, and tell `say` about each it acted on.
 * Returns nothing to do when another op-dbus holds the lock (it is at work), when there is no
 * state directory yet, or when no transaction is unfinished (the state directory's index says so
 * without a lock or a journal read), so read-only commands can call it first.
 */
export async function recoverFirst(engine: Engine, say: (line: string) => void): Promise<RecoveryReport[]> {
  if (!existsSync(engine.state.transactionsDir)) return [];
  if ((await engine.state.unfinished()).length === 0) return [];
  let reports: RecoveryReport[];
  try {
    reports = await engine.recover();
  } catch (err) {
    if (isOpdbusError(err, 'OPDBUS_ERR_LOCKED')) return [];
    throw err;
  }
  for (const report of reports) {
    if (report.action === 'left-alone') continue;
    say(`recovered transaction ${report.txId} (${report.found}): ${report.action}: ${report.detail}`);
  }
  return reports;
}
