import { userInfo } from 'node:os';
import { createEngine, createLogger, type GlobalOptions } from '../runtime.js';

/**
 * `opdbus __watchdog TXID` (internal): the commit-confirmed watchdog. Started detached by
 * `apply --confirm-timeout`; restores the transaction unless it is confirmed in time, or at
 * once if the applying process dies mid-apply.
 */
export async function watchdog(global: GlobalOptions, txId: string): Promise<number> {
  // What the watchdog restores is recorded in the ledger as the watchdog's doing.
  const engine = createEngine(global, undefined, createLogger(global.logLevel), {
    actor: {
      kind: 'watchdog',
      name: `watchdog (${userInfo().username})`,
      uid: process.getuid?.() ?? -1,
      pid: process.pid,
    },
  });
  const log = engine.logger.child({ txId, role: 'watchdog' });
  // Ignore terminal signals meant for the CLI's session; SIGTERM (from `confirm`) means "look again".
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
