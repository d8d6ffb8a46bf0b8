import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateDir, processStartTime, type ProcessIdentity } from '@opdbus/core';
import { createEngine } from './engine.js';
import { createDeferredLogger } from './deferredLogger.js';
import { isPathSpec, type RuntimeOptions } from './options.js';

/**
 * The path of the watchdog's entry point (`opdbus-watchdog`), run with this Node: beside this
 * module once built; from sources (tests, `@opdbus/source`), the built one in dist/.
 */
export const watchdogEntry: string =
  [
    fileURLToPath(new URL('./watchdogMain.js', import.meta.url)),
    fileURLToPath(new URL('../dist/watchdogMain.js', import.meta.url)),
  ].find((path) => existsSync(path)) ?? fileURLToPath(new URL('./watchdogMain.js', import.meta.url));

/**
 * Start the commit-confirmed watchdog for `txId`: `opdbus-watchdog` in a new session, detached
 * from this process and its terminal, so SIGKILL of the app (or its whole process group) does not
 * reach it. It reports "ready" over IPC before the first change is applied; its IPC channel
 * closing tells it this process is gone. The watchdog reads the transaction's target from its
 * journal, so only the state directory, the log level and the plugin packages (`--plugin`,
 * `--config`; directories made absolute) are passed. It logs at `info` (or `debug`,
 * `trace` when asked) to STATE_DIR/transactions/TXID.watchdog.log.
 *
 * This is what {@link createEngine} passes to the engine as `spawnWatchdog`.
 */
export async function spawnWatchdog(
  options: Pick<RuntimeOptions, 'stateDir' | 'logLevel' | 'plugin' | 'config'>,
  txId: string,
): Promise<ProcessIdentity> {
  const state = new StateDir(options.stateDir);
  const logFd = openSync(state.watchdogLogPath(txId), 'a', 0o600);
  try {
    const args = [
      watchdogEntry,
      '--state-dir',
      options.stateDir,
      '--log-level',
      // Its own log file, read after the fact: at least `info`, more when asked.
      ['debug', 'trace'].includes(options.logLevel) ? options.logLevel : 'info',
      // The plugins the transaction may have changed resources of, so that it can restore them.
      ...(options.plugin ?? []).flatMap((spec) => ['--plugin', isPathSpec(spec) ? resolve(spec) : spec]),
      ...(options.config === undefined ? [] : ['--config', resolve(options.config)]),
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

/**
 * The watchdog process's work (what `opdbus-watchdog` and `opdbus __watchdog` run): restore the
 * transaction unless it is confirmed in time, or at once if the applying process dies mid-apply.
 * Resolves to the process's exit code: 0, or 6 when the restore failed.
 */
export async function runWatchdogProcess(
  options: Pick<RuntimeOptions, 'stateDir' | 'logLevel' | 'plugin' | 'config'>,
  txId: string,
): Promise<number> {
  const logger = createDeferredLogger(options.logLevel, 'opdbus-watchdog');
  // Imported here: resolving plugin packages loads every built-in plugin, which the applying
  // process (spawnWatchdog's caller) must not pay for.
  const { resolvePlugins } = await import('./config.js');
  const { plugins, refusals } = await resolvePlugins({
    ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
    ...(options.config === undefined ? {} : { config: options.config }),
  });
  for (const err of refusals) logger.warn({ err }, err.message);
  // What the watchdog restores is recorded in the ledger as the watchdog's doing.
  const engine = createEngine(options, {
    plugins,
    logger,
    actor: {
      kind: 'watchdog',
      name: `watchdog (${userInfo().username})`,
      uid: process.getuid?.() ?? -1,
      pid: process.pid,
    },
  });
  const log = engine.logger.child({ txId, role: 'watchdog' });
  // Ignore terminal signals meant for the app's session; SIGTERM (from `confirm`) means "look again".
  process.on('SIGINT', () => log.info('SIGINT ignored'));
  process.on('SIGHUP', () => log.info('SIGHUP ignored'));
  // The owner may die at any point, even before this process could say it is ready: a channel
  // already closed means it is gone (the engine then checks the transaction's owner itself).
  const ownerGone = new Promise<void>((resolve) => {
    if (process.connected) process.once('disconnect', () => resolve());
    else if (process.send !== undefined) resolve();
  });
  const done = engine.runWatchdog(txId, {
    ownerGone,
    onWake: (wake) => process.on('SIGTERM', () => wake()),
  });
  // With a callback, a closed channel (ERR_IPC_CHANNEL_CLOSED, EPIPE) is reported to it instead
  // of being thrown as an unhandled 'error' event: the parent's death must not kill the watchdog.
  process.send?.('ready', undefined, undefined, (err: Error | null) => {
    if (err !== null) log.warn({ err }, 'the applying process is gone before the watchdog was ready');
  });
  log.info('watchdog started');
  const record = await done;
  log.info({ status: record.status, restore: record.restore }, 'watchdog finished');
  if (process.connected) process.disconnect();
  return record.status === 'restore-failed' ? 6 : 0;
}
