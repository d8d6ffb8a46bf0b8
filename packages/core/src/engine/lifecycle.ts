// The life of a transaction after its run: confirming one that is pending (commit-confirmed),
// rolling one back on demand, and recovering those a dead process left unfinished. Each takes the
// state directory's lock.
import { resourceKey } from '../change.js';
import { OpdbusError } from '../errors.js';
import { terminalStatuses, type TransactionRecord } from '../journal.js';
import { isAlive } from '../process.js';
import type { EngineCore } from './core.js';
import { recordAudit, txAudit } from './auditTrail.js';
import { restoreTransaction } from './restore.js';
import type { RecoveryReport } from './types.js';

/**
 * The named transaction, or the latest that `accept` takes (`OPDBUS_ERR_TX_NOT_FOUND` if none):
 * `among` the unfinished ones (when `accept` takes no finished status), or in the whole
 * `history`, reading the journals from the newest back until one is taken.
 */
async function resolveTx(
  core: EngineCore,
  txId: string | undefined,
  accept: (r: TransactionRecord) => boolean,
  what: string,
  among: 'unfinished' | 'history',
): Promise<TransactionRecord> {
  if (txId !== undefined) return core.state.read(txId);
  let last: TransactionRecord | undefined;
  if (among === 'unfinished') last = (await core.state.unfinished()).filter(accept).at(-1);
  else {
    for (const id of (await core.state.ids()).reverse()) {
      const record = await core.state.read(id);
      if (accept(record)) {
        last = record;
        break;
      }
    }
  }
  if (last === undefined)
    throw new OpdbusError(
      'OPDBUS_ERR_TX_NOT_FOUND',
      `There is no ${what} transaction in ${core.state.transactionsDir}.`,
      { data: { stateDir: core.state.root } },
    );
  return last;
}

/** Confirm a pending (commit-confirmed) transaction (default: the latest pending one), then tell its watchdog. */
export async function confirmTransaction(core: EngineCore, txId?: string): Promise<TransactionRecord> {
  const lock = await core.state.lock();
  let record: TransactionRecord;
  try {
    record = await confirmLocked(core, txId);
  } finally {
    await lock.release();
  }
  // Tell the watchdog it can stop now (it would also see the journal at its deadline).
  const watchdog = record.confirm?.watchdog;
  if (watchdog !== undefined && watchdog.pid !== process.pid && isAlive(watchdog)) {
    try {
      process.kill(watchdog.pid, 'SIGTERM');
    } catch (err) {
      core.logger.warn({ err, pid: watchdog.pid }, 'could not signal the watchdog; it exits at its deadline');
    }
  }
  return record;
}

async function confirmLocked(core: EngineCore, txId: string | undefined): Promise<TransactionRecord> {
  const record = await resolveTx(core, txId, (r) => r.status === 'pending-confirm', 'pending', 'unfinished');
  if (record.status !== 'pending-confirm') {
    throw new OpdbusError(
      'OPDBUS_ERR_TX_STATE',
      `Transaction ${record.txId} is ${record.status}, not pending confirmation; nothing to confirm.`,
      {
        data: { txId: record.txId, status: record.status },
      },
    );
  }
  const now = new Date().toISOString();
  const confirmed: TransactionRecord = {
    ...record,
    status: 'committed',
    committedAt: now,
    confirm: { ...(record.confirm ?? { timeoutS: 0 }), confirmedAt: now, confirmedBy: core.actor },
  };
  // Recorded before the journal says so: a confirm the audit log cannot take leaves the
  // transaction pending (its watchdog rolls it back at the deadline unless a confirm succeeds).
  const failed = await recordAudit(
    core,
    txAudit('confirm', confirmed, {
      stateHashBefore: record.stateHashAfter ?? null,
      stateHashAfter: record.stateHashAfter ?? null,
    }),
    'return',
  );
  if (failed !== undefined) {
    throw new OpdbusError(
      'OPDBUS_ERR_AUDIT_FAILED',
      `Could not record the confirm of transaction ${record.txId} in the audit log (${failed.message}); it stays pending and is rolled back at ${record.confirm?.deadline ?? 'its deadline'} unless a confirm is recorded before then. Fix the audit log and run \`opdbus confirm ${record.txId}\` again.`,
      { data: { txId: record.txId, kind: 'confirm', status: record.status }, cause: failed },
    );
  }
  await core.state.write(confirmed);
  core.events.publish({ type: 'tx.confirmed', txId: confirmed.txId });
  return confirmed;
}

/**
 * Restore a transaction's checkpoint on demand (default: the latest pending or committed one).
 * Rolling back an older one while a later transaction changed the same resources needs `force`.
 */
export async function rollbackTransaction(
  core: EngineCore,
  txId: string | undefined,
  options: { force?: boolean; reason?: string },
): Promise<TransactionRecord> {
  const lock = await core.state.lock();
  try {
    await recoverLocked(core);
    const record = await resolveTx(
      core,
      txId,
      (r) => r.status === 'pending-confirm' || r.status === 'committed',
      'committed or pending',
      'history',
    );
    await assertRollbackable(core, record, options.force === true);
    const ok = await restoreTransaction(
      core,
      record,
      options.reason ?? `rollback requested by ${core.actor.name}`,
      'requested',
    );
    if (!ok) {
      throw new OpdbusError(
        'OPDBUS_ERR_RESTORE_FAILED',
        `Rolling back ${record.txId} did not verify: ${[...(record.restore?.residual ?? []), ...(record.restore?.errors ?? [])].join('; ')}. Fix these resources and run \`opdbus rollback ${record.txId}\` again.`,
        {
          data: { txId: record.txId, residual: record.restore?.residual, errors: record.restore?.errors },
        },
      );
    }
    return record;
  } finally {
    await lock.release();
  }
}

/** Throws `OPDBUS_ERR_TX_STATE` unless the transaction can be rolled back now. */
async function assertRollbackable(
  core: EngineCore,
  record: TransactionRecord,
  force: boolean,
): Promise<void> {
  if (record.status === 'rolled-back') {
    throw new OpdbusError('OPDBUS_ERR_TX_STATE', `Transaction ${record.txId} is already rolled back.`, {
      data: { txId: record.txId, status: record.status },
    });
  }
  if (!terminalStatuses.has(record.status) && record.status !== 'pending-confirm') {
    throw new OpdbusError(
      'OPDBUS_ERR_TX_STATE',
      `Transaction ${record.txId} is ${record.status} in another process; wait for it.`,
      { data: { txId: record.txId } },
    );
  }
  if (force) return;
  const keys = new Set(record.plan.changes.map(resourceKey));
  // Only the journals after it: none when rolling back the latest.
  const later: TransactionRecord[] = [];
  for (const id of (await core.state.ids()).filter((i) => i > record.txId)) {
    const r = await core.state.read(id);
    if (
      (r.status === 'committed' || r.status === 'pending-confirm') &&
      r.plan.changes.some((c) => keys.has(resourceKey(c)))
    )
      later.push(r);
  }
  if (later.length > 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_TX_STATE',
      `Transaction ${later.map((r) => r.txId).join(', ')} changed the same resources after ${record.txId}; roll those back first or pass --force.`,
      {
        data: { txId: record.txId, later: later.map((r) => r.txId) },
      },
    );
  }
}

/** {@link recoverLocked}, taking the state lock for it. */
export async function recover(core: EngineCore): Promise<RecoveryReport[]> {
  const lock = await core.state.lock();
  try {
    return await recoverLocked(core);
  } finally {
    await lock.release();
  }
}

/**
 * Find transactions left unfinished by a process that died (SIGKILL, power loss) and restore
 * them; respawn a lost commit-confirmed watchdog whose deadline has not passed. The caller holds
 * the state lock.
 */
export async function recoverLocked(core: EngineCore): Promise<RecoveryReport[]> {
  const reports: RecoveryReport[] = [];
  for (const record of await core.state.unfinished()) {
    if (record.status === 'pending-confirm') {
      const report = await recoverPending(core, record);
      if (report !== undefined) reports.push(report);
      continue;
    }
    if (isAlive(record.owner) && record.owner.pid !== process.pid) {
      reports.push({
        txId: record.txId,
        found: record.status,
        action: 'left-alone',
        detail: `process ${record.owner.pid} is still working on it`,
      });
      continue;
    }
    reports.push(
      await recoverOne(
        core,
        record,
        `process ${record.owner.pid} died while the transaction was ${record.status}`,
      ),
    );
  }
  return reports;
}

/**
 * A pending transaction: nothing to do while its watchdog lives; a new watchdog if it is gone
 * before the deadline; restored if the deadline passed.
 */
async function recoverPending(
  core: EngineCore,
  record: TransactionRecord,
): Promise<RecoveryReport | undefined> {
  const watchdog = record.confirm?.watchdog;
  if (watchdog !== undefined && isAlive(watchdog)) return undefined;
  const deadline = record.confirm?.deadline === undefined ? 0 : Date.parse(record.confirm.deadline);
  if (Date.now() < deadline && core.spawnWatchdog !== undefined) {
    record.confirm = {
      ...(record.confirm ?? { timeoutS: 0 }),
      watchdog: await core.spawnWatchdog(record.txId),
    };
    await core.state.write(record);
    return {
      txId: record.txId,
      found: 'pending-confirm, watchdog gone',
      action: 'watchdog-respawned',
      detail: `deadline ${record.confirm.deadline}`,
    };
  }
  return recoverOne(core, record, 'commit-confirmed deadline passed and its watchdog is gone');
}

async function recoverOne(
  core: EngineCore,
  record: TransactionRecord,
  reason: string,
): Promise<RecoveryReport> {
  const found = record.status;
  core.events.publish({ type: 'recovery.found', txId: record.txId, status: found, reason });
  core.logger.info({ txId: record.txId, status: found }, `recovering: ${reason}`);
  const ok = await restoreTransaction(core, record, `recovery: ${reason}`, 'recovery');
  core.events.publish({ type: 'recovery.done', txId: record.txId, ok });
  return {
    txId: record.txId,
    found,
    action: ok ? 'restored' : 'restore-failed',
    detail: ok
      ? reason
      : `${reason}; could not restore: ${[...(record.restore?.residual ?? []), ...(record.restore?.errors ?? [])].join('; ')}`,
  };
}
