import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  StateDir,
  isOpdbusError,
  processStartTime,
  type Actor,
  type AnyPlugin,
  type AuditRecord,
  type AuditSink,
  type Logger,
  type ProcessIdentity,
  type RecoveryReport,
  type TargetSpec,
} from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { pino } from 'pino';
import { defaultPlugins } from './plugins.js';
import { defaultStateDir, stdio, type GlobalOptions, type Output } from './io.js';
import { reportError } from './report.js';

export { defaultStateDir, reportError, stdio, type GlobalOptions, type Output };

/** A pino logger on stderr. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'opdbus' } }, pino.destination(2));
}

/** The target described by the global options. */
export function targetOf(options: GlobalOptions): TargetSpec {
  const target: TargetSpec = {};
  if (options.netns !== undefined) target.netns = options.netns;
  if (options.bus !== undefined) target.busAddress = options.bus;
  if (options.ovsdb !== undefined) target.ovsdbAddress = options.ovsdb;
  if (options.root !== undefined) target.root = options.root;
  return target;
}

/** The path of the `opdbus` entry point (used to start the watchdog). */
export function binPath(): string {
  return fileURLToPath(new URL('./bin.js', import.meta.url));
}

/**
 * Start the commit-confirmed watchdog: `opdbus __watchdog TXID` in a new session, detached from
 * this process and its terminal, so SIGKILL of the CLI (or its whole process group) does not
 * reach it. It reports "ready" over IPC before the first change is applied; its IPC channel
 * closing tells it this process is gone.
 */
export async function spawnWatchdog(options: GlobalOptions, txId: string): Promise<ProcessIdentity> {
  const state = new StateDir(options.stateDir);
  const logFd = openSync(state.watchdogLogPath(txId), 'a', 0o600);
  try {
    const args = [
      binPath(),
      '--state-dir',
      options.stateDir,
      '--log-level',
      options.logLevel === 'silent' ? 'info' : options.logLevel,
      '__watchdog',
      txId,
    ];
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', logFd, logFd, 'ipc'] });
    const pid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the watchdog did not report ready within 15 s')),
        15_000,
      );
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `the watchdog exited early (${signal ?? `code ${code}`}); see ${state.watchdogLogPath(txId)}`,
          ),
        );
      });
      child.once('message', (message) => {
        clearTimeout(timer);
        if (message === 'ready' && child.pid !== undefined) resolve(child.pid);
        else reject(new Error(`unexpected message from the watchdog: ${JSON.stringify(message)}`));
      });
    });
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    child.channel?.unref();
    child.unref();
    return { pid, startTime: processStartTime(pid) };
  } finally {
    closeSync(logFd);
  }
}

/** Where the ledger, the snapshots and their keys live in a state directory. */
export function ledgerPaths(stateDir: string): {
  ledgerDir: string;
  ledgerKey: string;
  snapshotsDir: string;
  snapshotKey: string;
  origin: string;
} {
  return {
    ledgerDir: join(stateDir, 'ledger'),
    ledgerKey: join(stateDir, 'keys', 'ledger.key'),
    snapshotsDir: join(stateDir, 'snapshots'),
    snapshotKey: join(stateDir, 'keys', 'snapshot.key'),
    origin: `${hostname()}/opdbus`,
  };
}

/**
 * The audit sink of the CLI: the @opdbus/ledger transparency log in STATE_DIR/ledger, with a
 * snapshot of the observed state at every committed apply. Loaded on first use, so commands
 * that record nothing never load it.
 */
export function ledgerAuditSink(options: GlobalOptions, engine: () => Engine, logger: Logger): AuditSink {
  let sink: Promise<AuditSink> | undefined;
  const paths = ledgerPaths(options.stateDir);
  return {
    record: async (record: AuditRecord) => {
      sink ??= import('@opdbus/ledger').then(
        ({ LedgerAuditSink }) =>
          new LedgerAuditSink({
            ledger: { dir: paths.ledgerDir, keyFile: paths.ledgerKey, origin: paths.origin },
            snapshots: {
              dir: paths.snapshotsDir,
              keyFile: paths.snapshotKey,
              actor: { ...record.actor },
              capture: () => engine().query(undefined, { showSecrets: true }),
            },
            logger,
          }),
      );
      await (await sink).record(record);
    },
  };
}

/** Build the registry and engine for a command. Every engine records to the ledger (see {@link ledgerAuditSink}). */
export function createEngine(
  options: GlobalOptions,
  plugins: AnyPlugin[] = defaultPlugins(),
  logger = createLogger(options.logLevel),
  extra: { actor?: Actor } = {},
): Engine {
  const engine: Engine = new Engine({
    registry: new PluginRegistry(plugins),
    stateDir: options.stateDir,
    target: targetOf(options),
    openNetns,
    logger,
    spawnWatchdog: (txId) => spawnWatchdog(options, txId),
    audit: ledgerAuditSink(options, () => engine, logger),
    ...(extra.actor === undefined ? {} : { actor: extra.actor }),
  });
  return engine;
}

/**
 * Recover transactions a dead process left unfinished, and say so on stderr. Commands that
 * only read skip it when another op-dbus holds the lock (it is at work) or there is no state
 * directory yet.
 */
export async function recoverFirst(engine: Engine, output: Output): Promise<RecoveryReport[]> {
  if (!existsSync(engine.state.transactionsDir)) return [];
  let reports: RecoveryReport[];
  try {
    reports = await engine.recover();
  } catch (err) {
    if (isOpdbusError(err, 'OPDBUS_ERR_LOCKED')) return [];
    throw err;
  }
  for (const report of reports) {
    if (report.action === 'left-alone') continue;
    output.err(
      `opdbus: recovered transaction ${report.txId} (${report.found}): ${report.action}: ${report.detail}`,
    );
  }
  return reports;
}

/** Make sure a directory for the state exists (used by commands that write). */
export function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_DIR',
      `Cannot create the state directory ${dir}: ${(err as Error).message}; run as root or pass --state-dir.`,
      { cause: err },
    );
  }
}
