// Applying a document: under the state lock, recover what a dead process left, refuse while a
// transaction is pending confirmation, plan, record the plan, refuse risky changes without
// commit-confirmed or force, then run the plan as a transaction (transaction.ts).
import { resourceKey } from '../change.js';
import type { StateDocument } from '../document.js';
import { OpdbusError } from '../errors.js';
import { hashJson } from '../json.js';
import { createPlan, type Plan } from '../planner.js';
import { auditChanges } from '../audit.js';
import type { EngineCore } from './core.js';
import { recordAudit } from './auditTrail.js';
import { recoverLocked } from './lifecycle.js';
import { planDocument } from './plan.js';
import { firstOf, scoped } from './support.js';
import { runTransaction } from './transaction.js';
import type { ApplyOptions, ApplyResult, PlanResult } from './types.js';

/**
 * Apply a document as one transaction: plan, checkpoint, journal, apply in order, verify; on any
 * failure restore in reverse order and verify the restore. Throws `OPDBUS_ERR_APPLY_FAILED`
 * (host restored) or `OPDBUS_ERR_RESTORE_FAILED` (host in between; the message lists what).
 */
export async function applyDocument(
  core: EngineCore,
  doc: StateDocument,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const lock = await core.state.lock();
  try {
    await recoverLocked(core);
    await refusePending(core);
    const full = await planDocument(core, doc);
    const { observed, desired } = full;
    const only = options.only;
    const plan =
      only === undefined ? full.plan : createPlan(full.plan.changes.filter((c) => only.has(resourceKey(c))));
    await recordPlan(core, plan, full);
    if (plan.changes.length === 0) return { status: 'no-changes', plan };
    refuseRisky(plan, options);
    // Changes left out by `only` stay as they are; every other resource the document names must
    // hold its desired value afterwards, including those that needed no change (a write can
    // reset another key: setting net.ipv4.ip_forward resets conf.all.accept_redirects).
    const left = new Set(
      only === undefined ? [] : full.plan.changes.map(resourceKey).filter((k) => !only.has(k)),
    );
    return await runTransaction(core, desired, plan, observed, options, left);
  } finally {
    await pruneJournals(core);
    await lock.release();
  }
}

/**
 * Keep the state directory bounded (`journalRetention`): a failure to prune is logged, never the
 * apply's failure (the transaction is already decided and recorded).
 */
async function pruneJournals(core: EngineCore): Promise<void> {
  try {
    const removed = await core.state.prune(core.journalRetention);
    if (removed.length > 0)
      core.logger.debug(
        { pruned: removed.length, keep: core.journalRetention },
        'pruned the journals of old finished transactions',
      );
  } catch (err) {
    core.logger.warn(
      { err, stateDir: core.state.root },
      'could not prune old transaction journals; the state directory keeps growing until it can',
    );
  }
}

/** Throws `OPDBUS_ERR_TX_STATE` while a transaction waits for confirmation. */
async function refusePending(core: EngineCore): Promise<void> {
  const pending = (await core.state.unfinished()).filter((r) => r.status === 'pending-confirm');
  if (pending.length > 0) {
    const ids = pending.map((r) => r.txId).join(', ');
    throw new OpdbusError(
      'OPDBUS_ERR_TX_STATE',
      `Transaction ${ids} is pending confirmation; run \`opdbus confirm\` or \`opdbus rollback\` before applying again.`,
      {
        data: { pending: pending.map((r) => r.txId) },
      },
    );
  }
}

/** Record the plan in the audit log; a plan that cannot be recorded is not applied. */
async function recordPlan(core: EngineCore, plan: Plan, full: PlanResult): Promise<void> {
  await recordAudit(
    core,
    {
      kind: 'plan',
      status: plan.changes.length === 0 ? 'no-changes' : 'planned',
      planHash: plan.hash,
      changes: plan.changes.length,
      plugins: [...new Set(plan.changes.map((c) => c.plugin))],
      stateHashBefore: hashJson(scoped(full.observed, Object.keys(full.desired))),
      desiredHash: hashJson(full.desired),
      changeRecords: auditChanges(plan.changes, (name) => core.registry.get(name)),
    },
    'abort',
  );
}

/** Throws `OPDBUS_ERR_RISKY_CHANGE` for risky changes without commit-confirmed or `force`. */
function refuseRisky(plan: Plan, options: ApplyOptions): void {
  const risky = plan.changes.filter((c) => c.risk !== undefined);
  if (risky.length > 0 && options.confirmTimeoutS === undefined && options.force !== true) {
    throw new OpdbusError(
      'OPDBUS_ERR_RISKY_CHANGE',
      `The plan has ${risky.length} risky change(s): ${firstOf(risky.map((c) => `${c.summary} (${c.risk?.reason})`))}. Apply with --confirm-timeout SECONDS so it reverts unless confirmed, or with --force.`,
      { data: { changes: risky.map((c) => c.id) } },
    );
  }
}
