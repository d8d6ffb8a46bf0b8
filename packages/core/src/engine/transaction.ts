// The transaction run: checkpoint what the plan touches, journal it, start the commit-confirmed
// watchdog, apply the changes in order, verify, then commit or leave it pending confirmation. Any
// failure on the way rolls back (transactionFailure.ts).
import { resourceKey } from '../change.js';
import { OpdbusError, toOpdbusError } from '../errors.js';
import { newTxId, type TransactionRecord } from '../journal.js';
import { hashJson, type JsonValue } from '../json.js';
import type { Plan } from '../planner.js';
import { selfIdentity } from '../process.js';
import type { EngineCore } from './core.js';
import { changeRecords, recordAudit, txAudit } from './auditTrail.js';
import { settle } from './settle.js';
import { changeEvent, firstOf, requireMethod } from './support.js';
import { applyFailed, failAndRestore, unrecordedApply } from './transactionFailure.js';
import type { ApplyOptions, ApplyResult } from './types.js';

/**
 * Run a plan as one transaction (the caller holds the state lock and has checked the plan). Only
 * the plugins the plan touches are checkpointed, journaled and verified; resources in `leftOut`
 * (changes `options.only` left out) are not verified.
 */
export async function runTransaction(
  core: EngineCore,
  desiredAll: Record<string, unknown>,
  plan: Plan,
  observedAll: Record<string, unknown>,
  options: ApplyOptions,
  leftOut: ReadonlySet<string>,
): Promise<ApplyResult> {
  const txId = newTxId();
  const touched = [...new Set(plan.changes.map((c) => c.plugin))];
  const desired: Record<string, JsonValue> = {};
  const observedBefore: Record<string, JsonValue> = {};
  for (const name of touched) {
    desired[name] = desiredAll[name] as JsonValue;
    observedBefore[name] = observedAll[name] as JsonValue;
  }
  core.events.publish({
    type: 'tx.begin',
    txId,
    planHash: plan.hash,
    changes: plan.changes.length,
    ...(options.confirmTimeoutS === undefined ? {} : { confirmTimeoutS: options.confirmTimeoutS }),
  });
  // 1. Checkpoint what the plan touches. 2. Persist the journal before the first change.
  const checkpoints = await checkpointAll(core, txId, plan, touched);
  const now = new Date().toISOString();
  const record: TransactionRecord = {
    version: 1,
    txId,
    status: 'applying',
    createdAt: now,
    updatedAt: now,
    actor: core.actor,
    owner: selfIdentity(),
    target: core.target,
    plan,
    desired,
    observedBefore,
    checkpoints,
    stateHashBefore: hashJson(observedBefore),
    applied: [],
  };
  if (options.confirmTimeoutS !== undefined) record.confirm = { timeoutS: options.confirmTimeoutS };
  await core.state.write(record);
  core.events.publish({ type: 'tx.journal', txId, status: record.status });
  // 3. The commit-confirmed watchdog watches from before the first change, so a crash at any
  //    point after this leaves a process that restores.
  if (options.confirmTimeoutS !== undefined) await startWatchdog(core, record, options.confirmTimeoutS);
  // 4. Apply in order. 5. Verify. 6. Commit, or wait for confirmation.
  await applyInOrder(core, record, options.signal);
  const stateHashAfter = await verifyApplied(core, record, touched, desired, leftOut);
  return finish(core, record, stateHashAfter, options.confirmTimeoutS);
}

/** Each touched plugin's checkpoint of the plan's changes (nothing is changed yet). */
async function checkpointAll(
  core: EngineCore,
  txId: string,
  plan: Plan,
  touched: readonly string[],
): Promise<Record<string, JsonValue>> {
  const checkpoints: Record<string, JsonValue> = {};
  for (const name of touched) {
    const plugin = core.registry.require(name);
    const changes = plan.changes.filter((c) => c.plugin === name);
    try {
      checkpoints[name] = (await requireMethod(plugin, 'checkpoint')(
        core.context(name, { txId }),
        changes,
      )) as JsonValue;
    } catch (err) {
      throw toOpdbusError(
        err,
        'OPDBUS_ERR_PLUGIN_FAILED',
        `Plugin "${name}" failed to checkpoint; nothing was changed`,
        { plugin: name, operation: 'checkpoint' },
      );
    }
    core.events.publish({ type: 'tx.checkpoint', txId, plugin: name, resources: changes.length });
  }
  return checkpoints;
}

/** Start the commit-confirmed watchdog; without one, the transaction ends before any change. */
async function startWatchdog(core: EngineCore, record: TransactionRecord, timeoutS: number): Promise<void> {
  const abandon = async (reason: string): Promise<void> => {
    record.status = 'rolled-back';
    record.restore = {
      reason,
      ok: true,
      residual: [],
      at: new Date().toISOString(),
      by: core.actor,
      errors: [],
    };
    await core.state.write(record);
  };
  if (core.spawnWatchdog === undefined) {
    await abandon('no watchdog available');
    throw new OpdbusError(
      'OPDBUS_ERR_WATCHDOG',
      'Commit-confirmed needs a watchdog, and this engine has no way to start one; nothing was changed.',
    );
  }
  try {
    record.confirm = { timeoutS, watchdog: await core.spawnWatchdog(record.txId) };
  } catch (err) {
    await abandon('watchdog failed to start');
    throw toOpdbusError(
      err,
      'OPDBUS_ERR_WATCHDOG',
      'The commit-confirmed watchdog could not be started; nothing was changed',
      { txId: record.txId },
    );
  }
  await core.state.write(record);
}

/**
 * Apply the plan in order: one change at a time, or, for a plugin with applyBatch, each run of
 * its consecutive changes at once. A failure or an abort restores (and throws).
 */
async function applyInOrder(
  core: EngineCore,
  record: TransactionRecord,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { txId, plan } = record;
  const progress = await core.state.openProgress(txId);
  try {
    for (let index = 0; index < plan.changes.length;) {
      if (signal?.aborted) await interrupted(core, record, index);
      const first = plan.changes[index]!;
      const plugin = core.registry.require(first.plugin);
      let end = index + 1;
      if (plugin.applyBatch !== undefined)
        while (end < plan.changes.length && plan.changes[end]!.plugin === first.plugin) end++;
      const batch = plan.changes.slice(index, end);
      for (const [k, change] of batch.entries()) {
        core.events.publish({
          type: 'change.applying',
          ...changeEvent(txId, change, index + k),
          op: change.op,
        });
        await progress.started(change);
      }
      const t0 = performance.now();
      try {
        const ctx = core.context(first.plugin, { txId }, signal);
        if (plugin.applyBatch !== undefined) await plugin.applyBatch(batch, ctx);
        else await requireMethod(plugin, 'apply')(first, ctx);
      } catch (err) {
        await applyFailed(core, record, batch, index, err);
      }
      const ms = performance.now() - t0;
      for (const [k, change] of batch.entries()) {
        await progress.done(change);
        record.applied.push(change.id);
        core.events.publish({
          type: 'change.applied',
          ...changeEvent(txId, change, index + k),
          op: change.op,
          ms,
        });
      }
      index = end;
    }
    await progress.sync();
  } finally {
    await progress.close();
  }
}

/** An abort signal stopped the transaction before the change at plan position `index`: restore, throw. */
async function interrupted(core: EngineCore, record: TransactionRecord, index: number): Promise<never> {
  const { txId, plan } = record;
  record.failure = {
    phase: 'interrupted',
    error: { code: 'OPDBUS_ERR_APPLY_FAILED', message: 'interrupted by a signal' },
  };
  return failAndRestore(
    core,
    record,
    'interrupted',
    new OpdbusError(
      'OPDBUS_ERR_APPLY_FAILED',
      `Transaction ${txId} was interrupted before change ${index + 1} of ${plan.changes.length}; the host was restored.`,
      { data: { txId } },
    ),
  );
}

/** Verify what the transaction applied; a residual diff restores (and throws). Returns the state hash after. */
async function verifyApplied(
  core: EngineCore,
  record: TransactionRecord,
  touched: readonly string[],
  desired: Record<string, JsonValue>,
  leftOut: ReadonlySet<string>,
): Promise<string> {
  const { txId } = record;
  record.status = 'verifying';
  await core.state.write(record);
  const verified = await settle(core, txId, core.target, touched, desired, (key) => !leftOut.has(key));
  if (verified.residual.length > 0) {
    const residual = verified.residual.map((c) => `${resourceKey(c)}: ${c.summary}`);
    core.events.publish({ type: 'verify.failed', txId, residual });
    const error = new OpdbusError(
      'OPDBUS_ERR_VERIFY_FAILED',
      `After applying, ${residual.length} resource(s) did not reach the desired state: ${firstOf(residual)}.`,
      {
        data: { txId, residual },
      },
    );
    record.failure = { phase: 'verify', error: { code: error.code, message: error.message } };
    await failAndRestore(core, record, 'verification failed', error);
  }
  core.events.publish({ type: 'verify.ok', txId, attempts: verified.attempts });
  record.stateHashAfter = hashJson(verified.observed);
  return record.stateHashAfter;
}

/**
 * Commit, or leave pending confirmation. The result is recorded before the journal says so: a
 * result the audit log cannot take is not kept on the host (restored, then reported).
 */
async function finish(
  core: EngineCore,
  record: TransactionRecord,
  stateHashAfter: string,
  confirmTimeoutS: number | undefined,
): Promise<ApplyResult> {
  const { txId, plan } = record;
  const pending = confirmTimeoutS !== undefined && record.confirm !== undefined;
  const outcome = pending ? 'pending-confirm' : 'committed';
  const recorded = await recordAudit(
    core,
    txAudit(
      'apply',
      { ...record, status: outcome },
      {
        stateHashAfter,
        changeRecords: changeRecords(core, record.plan.changes, { applied: new Set(record.applied) }),
      },
    ),
    'return',
  );
  if (recorded !== undefined) await unrecordedApply(core, record, recorded);
  if (pending && record.confirm !== undefined) {
    const deadline = new Date(Date.now() + confirmTimeoutS * 1000).toISOString();
    record.confirm.deadline = deadline;
    record.status = 'pending-confirm';
    await core.state.write(record);
    core.events.publish({
      type: 'tx.pending',
      txId,
      deadline,
      ...(record.confirm.watchdog ? { watchdogPid: record.confirm.watchdog.pid } : {}),
    });
    return { status: 'pending-confirm', plan, txId, deadline, record };
  }
  record.status = 'committed';
  record.committedAt = new Date().toISOString();
  await core.state.write(record);
  core.events.publish({
    type: 'tx.committed',
    txId,
    stateHashBefore: record.stateHashBefore,
    stateHashAfter,
  });
  return { status: 'committed', plan, txId, record };
}
