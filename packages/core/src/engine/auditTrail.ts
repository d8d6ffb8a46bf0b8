// The engine's audit trail: each step (plan, apply, rollback, confirm, and steps of the apps such as
// drift reports) handed to the audit sink, with what the engine knows added, and what a sink that
// cannot take a record means for the step.
import { hostname } from 'node:os';
import { auditChanges, type AuditRecord } from '../audit.js';
import type { Change } from '../change.js';
import { OpdbusError } from '../errors.js';
import type { TransactionRecord } from '../journal.js';
import { hashJson } from '../json.js';
import type { EngineCore } from './core.js';
import { queryPlugin } from './pluginCalls.js';
import { auditProcess, clipMessage } from './support.js';
import type { AuditRecordFields } from './types.js';

/**
 * Hand a record to the audit sink, adding time, host, actor, process and (by default) target. A
 * failure is published as `audit.failed`; then `abort` throws `OPDBUS_ERR_AUDIT_FAILED` saying
 * that nothing was changed; `log` logs it and `return` returns it (the caller decides: restore, or
 * report). Resolves to undefined when recorded (or when there is no sink).
 */
export async function recordAudit(
  core: EngineCore,
  fields: AuditRecordFields,
  onFailure: 'abort' | 'log' | 'return',
): Promise<Error | undefined> {
  const sink = core.audit;
  if (sink === undefined) return undefined;
  const record: AuditRecord = {
    ...fields,
    ...(fields.error === undefined
      ? {}
      : { error: { code: fields.error.code, message: clipMessage(fields.error.message) } }),
    at: new Date().toISOString(),
    host: hostname(),
    actor: core.actor,
    process: auditProcess(),
    target: fields.target ?? core.target,
  };
  try {
    await sink.record(record);
    return undefined;
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    core.events.publish({
      type: 'audit.failed',
      kind: record.kind,
      ...(record.txId === undefined ? {} : { txId: record.txId }),
      error: error.message,
    });
    core.logger.error(
      { err, kind: record.kind, txId: record.txId },
      'could not record this step in the audit log',
    );
    if (onFailure !== 'abort') return error;
    throw new OpdbusError(
      'OPDBUS_ERR_AUDIT_FAILED',
      `Could not record the ${record.kind} in the audit log (${error.message}); nothing was changed.`,
      {
        data: {
          kind: record.kind,
          ...(record.txId === undefined ? {} : { txId: record.txId }),
          status: record.status,
        },
        cause: err,
      },
    );
  }
}

/**
 * Record a step that is not part of a transaction (e.g. the daemon's drift reports); throws
 * `OPDBUS_ERR_AUDIT_FAILED` when the sink cannot take it.
 */
export async function recordStep(core: EngineCore, fields: AuditRecordFields): Promise<void> {
  const failed = await recordAudit(core, fields, 'return');
  if (failed !== undefined) {
    throw new OpdbusError(
      'OPDBUS_ERR_AUDIT_FAILED',
      `Could not record the ${fields.kind} in the audit log (${failed.message}); check the ledger with \`opdbus ledger verify\`.`,
      { data: { kind: fields.kind }, cause: failed },
    );
  }
}

/** The audit fields of a step of a transaction: its plan, status and target, with `extra`. */
export function txAudit(
  kind: AuditRecord['kind'],
  record: TransactionRecord,
  extra: Partial<AuditRecord>,
): AuditRecordFields {
  return {
    kind,
    txId: record.txId,
    status: record.status,
    planHash: record.plan.hash,
    changes: record.plan.changes.length,
    plugins: [...new Set(record.plan.changes.map((c) => c.plugin))],
    stateHashBefore: record.stateHashBefore,
    target: record.target,
    ...extra,
  };
}

/** Bounded, redacted audit records of changes (see {@link auditChanges}). */
export function changeRecords(
  core: EngineCore,
  changes: readonly Change[],
  options: { applied?: ReadonlySet<string>; inverse?: boolean },
): ReturnType<typeof auditChanges> {
  return auditChanges(changes, (name) => core.registry.get(name), options);
}

/**
 * Hash of what a transaction's plugins observe now, scoped to its desired sections, for the audit
 * record of a restore (null if it cannot be observed: a plugin is missing or fails).
 */
export async function observedHash(core: EngineCore, record: TransactionRecord): Promise<string | null> {
  try {
    const observed: Record<string, unknown> = {};
    for (const name of Object.keys(record.desired)) {
      const plugin = core.registry.get(name);
      if (plugin === undefined) return null;
      observed[name] = await queryPlugin(
        core,
        plugin,
        record.desired[name],
        { txId: record.txId },
        record.target,
      );
    }
    return hashJson(observed);
  } catch (err) {
    core.logger.warn({ err, txId: record.txId }, 'could not observe the state before restoring');
    return null;
  }
}
