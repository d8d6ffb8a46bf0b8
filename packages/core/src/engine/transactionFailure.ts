// When a transaction fails (a change, its verification, an interruption, or recording its result):
// say which change and why, roll back, record both in the audit log, and throw the error that
// tells the caller where the host is.
import type { Change } from '../change.js';
import { OpdbusError } from '../errors.js';
import type { TransactionRecord } from '../journal.js';
import type { EngineCore } from './core.js';
import { changeRecords, recordAudit, txAudit } from './auditTrail.js';
import { restoreTransaction, touchedIds } from './restore.js';
import { changeEvent } from './support.js';
import type { AuditRecordFields } from './types.js';

/**
 * A change (or a batch starting at plan position `index`) failed: say which, restore, and throw
 * (see {@link failAndRestore}).
 */
export async function applyFailed(
  core: EngineCore,
  record: TransactionRecord,
  batch: readonly Change[],
  index: number,
  err: unknown,
): Promise<never> {
  const total = record.plan.changes.length;
  const cause = err instanceof OpdbusError ? err : undefined;
  const namedId = cause?.data?.changeId;
  const failedAt = Math.max(
    0,
    batch.findIndex((c) => c.id === namedId),
  );
  const change = batch[failedAt]!;
  const position =
    batch.length === 1 || namedId !== undefined
      ? `Change ${index + failedAt + 1} of ${total}`
      : `Changes ${index + 1}-${index + batch.length} of ${total} (applied together by plugin ${change.plugin})`;
  const error = new OpdbusError(
    'OPDBUS_ERR_APPLY_FAILED',
    `${position} failed: ${change.summary} (plugin ${change.plugin}, resource ${change.resource}): ${err instanceof Error ? err.message : String(err)}`,
    {
      data: {
        plugin: change.plugin,
        resource: change.resource,
        changeId: change.id,
        ...(batch.length > 1 ? { batch: batch.map((c) => c.id) } : {}),
        ...(cause ? { causeCode: cause.code, causeData: cause.data } : {}),
      },
      cause: err,
    },
  );
  core.events.publish({
    type: 'change.failed',
    ...changeEvent(record.txId, change, index + failedAt),
    error: error.message,
  });
  core.logger
    .child({ txId: record.txId })
    .info({ err: error, changeId: change.id }, 'change failed; restoring');
  record.failure = {
    phase: 'apply',
    changeId: change.id,
    error: { code: error.code, message: error.message },
  };
  return failAndRestore(core, record, `change ${change.summary} failed`, error);
}

/**
 * Roll a failed transaction back and throw: `OPDBUS_ERR_APPLY_FAILED` (the host is as before) or
 * `OPDBUS_ERR_RESTORE_FAILED` (it is in between; the message lists what). The apply result is
 * recorded before the rollback it caused, so the audit log reads in order; what could not be
 * recorded is named in the error.
 */
export async function failAndRestore(
  core: EngineCore,
  record: TransactionRecord,
  reason: string,
  error: OpdbusError,
): Promise<never> {
  const rollback: AuditRecordFields[] = [];
  const ok = await restoreTransaction(core, record, reason, 'apply-failed', rollback);
  const failures: string[] = [];
  const applyFailure = await recordAudit(
    core,
    txAudit('apply', record, {
      stateHashAfter: record.restore?.stateHash ?? null,
      reason,
      error: { code: error.code, message: error.message },
      changeRecords: changeRecords(core, record.plan.changes, { applied: touchedIds(record) }),
      ...(record.failure?.changeId === undefined ? {} : { failedChange: record.failure.changeId }),
    }),
    'log',
  );
  if (applyFailure !== undefined) failures.push(`the apply result: ${applyFailure.message}`);
  for (const fields of rollback) {
    const failed = await recordAudit(core, fields, 'log');
    if (failed !== undefined) failures.push(`the rollback: ${failed.message}`);
  }
  throw rolledBackError(record, ok, error, failures);
}

/** The error a failed transaction ends with, once rolled back (see {@link failAndRestore}). */
function rolledBackError(
  record: TransactionRecord,
  restored: boolean,
  error: OpdbusError,
  failures: readonly string[],
): OpdbusError {
  const unrecorded =
    failures.length === 0
      ? ''
      : `\nWARNING: the audit log could not record ${failures.join('; ')}; run \`opdbus ledger verify\` and fix the ledger.`;
  if (!restored) {
    return new OpdbusError(
      'OPDBUS_ERR_RESTORE_FAILED',
      `${error.message}\nRolling back transaction ${record.txId} did NOT restore: ${record.restore?.residual.join('; ') || record.restore?.errors.join('; ')}. Fix these resources, then run \`opdbus rollback ${record.txId}\`.${unrecorded}`,
      {
        data: {
          txId: record.txId,
          residual: record.restore?.residual,
          errors: record.restore?.errors,
          ...(failures.length > 0 ? { auditFailures: failures } : {}),
        },
        cause: error,
      },
    );
  }
  return new OpdbusError(
    'OPDBUS_ERR_APPLY_FAILED',
    `${error.message}\nTransaction ${record.txId} was rolled back; the host is as it was before.${unrecorded}`,
    {
      data: {
        txId: record.txId,
        ...(error.data ?? {}),
        ...(failures.length > 0 ? { auditFailures: failures } : {}),
      },
      cause: error,
    },
  );
}

/** The audit log could not take the apply result: roll back, then throw `OPDBUS_ERR_AUDIT_FAILED` saying so. */
export async function unrecordedApply(
  core: EngineCore,
  record: TransactionRecord,
  recorded: Error,
): Promise<never> {
  const { txId } = record;
  record.failure = {
    phase: 'audit',
    error: { code: 'OPDBUS_ERR_AUDIT_FAILED', message: recorded.message },
  };
  const ok = await restoreTransaction(
    core,
    record,
    'the apply result could not be recorded in the audit log',
    'audit-failed',
  );
  throw new OpdbusError(
    'OPDBUS_ERR_AUDIT_FAILED',
    `Could not record the result of transaction ${txId} in the audit log (${recorded.message}); ${ok ? 'it was rolled back and the host is as it was before' : `rolling it back did NOT restore: ${[...(record.restore?.residual ?? []), ...(record.restore?.errors ?? [])].join('; ')}; fix the audit log, then run \`opdbus rollback ${txId}\``}.`,
    { data: { txId, kind: 'apply', status: record.status }, cause: recorded },
  );
}
