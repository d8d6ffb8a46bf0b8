// The commit-confirmed watchdog's loop, run in its own detached process (the apps spawn it, see
// `EngineOptions.spawnWatchdog`): it restores a pending transaction that was not confirmed in time,
// or one whose applying process died.
import { terminalStatuses, type TransactionRecord } from '../journal.js';
import { isAlive } from '../process.js';
import type { EngineCore } from './core.js';
import { restoreTransaction } from './restore.js';
import type { WatchdogOptions } from './types.js';

/**
 * Watch transaction `txId`: wait while the owner applies; if the owner dies mid-apply, restore at
 * once; once the transaction is pending, wait for the deadline and restore unless it was
 * confirmed. Resolves when the transaction reaches a terminal state.
 */
export async function runWatchdog(
  core: EngineCore,
  txId: string,
  options: WatchdogOptions,
): Promise<TransactionRecord> {
  const pollMs = options.pollMs ?? 200;
  let ownerGone = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  options.onWake?.(() => wake?.());
  options.ownerGone?.then(
    () => {
      ownerGone = true;
      wake?.();
    },
    (err: unknown) => core.logger.warn({ err }, 'owner link failed; falling back to polling'),
  );
  for (;;) {
    const record = await core.state.read(txId);
    if (terminalStatuses.has(record.status)) return record;
    if (record.status === 'pending-confirm') {
      const remaining = Date.parse(record.confirm?.deadline ?? '') - Date.now();
      if (Number.isFinite(remaining) && remaining > 0) {
        await sleep(Math.min(remaining, 60_000));
        continue;
      }
      return restoreUnconfirmed(core, txId);
    }
    // applying / verifying / rolling-back: the owner is at work. Act only once it is gone.
    if (ownerGone || !isAlive(record.owner)) {
      const done = await restoreOrphaned(core, txId);
      if (done !== undefined) return done;
      ownerGone = false;
    }
    await sleep(pollMs);
  }
}

/** The deadline passed: under the lock, restore the transaction unless it was confirmed meanwhile. */
async function restoreUnconfirmed(core: EngineCore, txId: string): Promise<TransactionRecord> {
  const lock = await core.state.lock(Number.POSITIVE_INFINITY);
  try {
    const fresh = await core.state.read(txId);
    if (fresh.status !== 'pending-confirm') return fresh;
    await restoreTransaction(
      core,
      fresh,
      `commit-confirmed: not confirmed within ${fresh.confirm?.timeoutS ?? '?'} s`,
      'watchdog',
    );
    return fresh;
  } finally {
    await lock.release();
  }
}

/**
 * The owner seems gone: under the lock, restore the transaction if it is still unfinished and its
 * owner is dead. Resolves to the record when the watchdog is done, undefined to keep watching.
 */
async function restoreOrphaned(core: EngineCore, txId: string): Promise<TransactionRecord | undefined> {
  const lock = await core.state.lock(Number.POSITIVE_INFINITY);
  try {
    const fresh = await core.state.read(txId);
    if (terminalStatuses.has(fresh.status)) return fresh;
    if (fresh.status !== 'pending-confirm' && !isAlive(fresh.owner)) {
      await restoreTransaction(
        core,
        fresh,
        `recovery: process ${fresh.owner.pid} died while the transaction was ${fresh.status}`,
        'watchdog',
      );
      return fresh;
    }
    return undefined;
  } finally {
    await lock.release();
  }
}
