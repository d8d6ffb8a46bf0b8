// The commit-confirmed watchdog process's side: what `opdbus-watchdog` (watchdogMain.ts) and
// `opdbus __watchdog` run once spawnWatchdog (watchdog.ts) started them.
import { userInfo } from 'node:os';
import { createDeferredLogger } from './deferredLogger.js';
import { createEngine } from './engine.js';
import type { RuntimeOptions } from './options.js';

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
