// Rolling a transaction back: each plugin restores its checkpoint, in reverse order, then the
// restore is verified against the state observed before the transaction, journaled and audited.
import { resourceKey } from '../change.js';
import type { TransactionRecord } from '../journal.js';
import { hashJson } from '../json.js';
import type { EngineCore } from './core.js';
import { changeRecords, observedHash, recordAudit, txAudit } from './auditTrail.js';
import { settle } from './settle.js';
import { clipMessage, requireMethod } from './support.js';
import type { AuditRecordFields } from './types.js';

/** The change ids a transaction carried out or started (the failing one may be half done). */
export function touchedIds(record: TransactionRecord): Set<string> {
  const ids = new Set(record.applied);
  if (record.failure?.changeId !== undefined) ids.add(record.failure.changeId);
  return ids;
}

/**
 * Restore a transaction's checkpoints in reverse plugin order and verify the restore against the
 * observed state before it. Updates and persists the record and audits the rollback (`trigger`
 * says what caused it): at once, or, with `deferAudit`, by adding its fields there for the caller
 * to record after its own. Returns whether the restore verified.
 */
export async function restoreTransaction(
  core: EngineCore,
  record: TransactionRecord,
  reason: string,
  trigger: string,
  deferAudit?: AuditRecordFields[],
): Promise<boolean> {
  const txId = record.txId;
  const stateHashBefore = core.audit === undefined ? null : await observedHash(core, record);
  record.status = 'rolling-back';
  await core.state.write(record);
  core.events.publish({ type: 'restore.begin', txId, reason });
  const order = [...new Set(record.plan.changes.map((c) => c.plugin))].reverse();
  const errors = await restorePlugins(core, record, order);
  const keys = new Set(record.plan.changes.map(resourceKey));
  const plugins = order.filter((name) => core.registry.get(name) !== undefined);
  let residual: string[] = [];
  let stateHash: string | undefined;
  try {
    const settled = await settle(core, txId, record.target, plugins, record.observedBefore, (k) =>
      keys.has(k),
    );
    residual = settled.residual.map((c) => `${resourceKey(c)}: ${c.summary}`);
    stateHash = hashJson(settled.observed);
  } catch (err) {
    errors.push(`verifying the restore failed: ${(err as Error).message}`);
  }
  const ok = errors.length === 0 && residual.length === 0;
  record.status = ok ? 'rolled-back' : 'restore-failed';
  record.restore = {
    reason,
    ok,
    residual,
    at: new Date().toISOString(),
    by: core.actor,
    errors,
    ...(stateHash === undefined ? {} : { stateHash }),
  };
  await core.state.write(record);
  core.events.publish({ type: 'restore.done', txId, ok, residual });
  core.events.publish({ type: 'tx.rolled-back', txId, reason, ok });
  const fields = rollbackAudit(core, record, {
    stateHashBefore,
    stateHash,
    trigger,
    reason,
    ok,
    residual,
    errors,
  });
  // A restore that cannot be recorded still restores: the failure is logged, published as
  // `audit.failed` and, for a failed apply, named in the error the caller gets.
  if (deferAudit !== undefined) deferAudit.push(fields);
  else await recordAudit(core, fields, 'log');
  return ok;
}

/** Each plugin's restore of its checkpoint, in the order given; returns what failed. */
async function restorePlugins(
  core: EngineCore,
  record: TransactionRecord,
  order: readonly string[],
): Promise<string[]> {
  const { txId } = record;
  const errors: string[] = [];
  for (const name of order) {
    const plugin = core.registry.get(name);
    if (plugin === undefined) {
      errors.push(`plugin "${name}" is not registered in this process`);
      continue;
    }
    try {
      await requireMethod(plugin, 'restore')(
        record.checkpoints[name] ?? null,
        core.context(name, { txId }, undefined, record.target),
      );
      core.events.publish({ type: 'restore.plugin', txId, plugin: name, ok: true });
    } catch (err) {
      const message = `plugin "${name}" failed to restore: ${(err as Error).message}`;
      errors.push(message);
      core.events.publish({ type: 'restore.plugin', txId, plugin: name, ok: false, error: message });
    }
  }
  return errors;
}

/** What a rollback did, for its audit record. */
interface RollbackOutcome {
  stateHashBefore: string | null;
  stateHash: string | undefined;
  trigger: string;
  reason: string;
  ok: boolean;
  residual: readonly string[];
  errors: readonly string[];
}

/** The audit fields of a rollback: its outcome and the changes it undid, in reverse order. */
function rollbackAudit(
  core: EngineCore,
  record: TransactionRecord,
  step: RollbackOutcome,
): AuditRecordFields {
  const { ok, residual, errors, stateHash } = step;
  const undone = touchedIds(record);
  return txAudit('rollback', record, {
    stateHashBefore: step.stateHashBefore,
    stateHashAfter: stateHash ?? null,
    trigger: step.trigger,
    reason: clipMessage(step.reason),
    ...(residual.length > 0 ? { residual: residual.slice(0, 100).map(clipMessage) } : {}),
    ...(errors.length > 0
      ? { error: { code: 'OPDBUS_ERR_RESTORE_FAILED', message: clipMessage(errors.join('; ')) } }
      : {}),
    changeRecords: changeRecords(core, record.plan.changes.filter((c) => undone.has(c.id)).reverse(), {
      inverse: true,
      applied: ok ? undone : new Set(),
    }),
  });
}
