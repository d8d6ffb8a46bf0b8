import { formatTransactions } from '../format.js';
import { createEngine, ensureStateDir, recoverFirst, type GlobalOptions, type Output } from '../runtime.js';

/** `opdbus confirm [TXID]`: keep a commit-confirmed transaction. */
export async function confirm(
  global: GlobalOptions,
  txId: string | undefined,
  output: Output,
): Promise<number> {
  const engine = await createEngine(global);
  ensureStateDir(global.stateDir);
  await recoverFirst(engine, output);
  const record = await engine.confirm(txId);
  if (global.json)
    output.out(JSON.stringify({ ok: true, txId: record.txId, status: record.status }, null, 2));
  else output.out(`Confirmed transaction ${record.txId}; it is committed.`);
  return 0;
}

/** `opdbus rollback [TXID]`: restore a transaction's checkpoint. */
export async function rollback(
  global: GlobalOptions,
  txId: string | undefined,
  options: { force?: boolean },
  output: Output,
): Promise<number> {
  const engine = await createEngine(global);
  ensureStateDir(global.stateDir);
  // A rollback that cannot be recorded still rolls back; it must not pass unnoticed.
  const auditFailures: string[] = [];
  const stop = engine.events.on((event) => {
    if (event.type === 'audit.failed') {
      auditFailures.push(event.error);
      output.err(
        `opdbus: WARNING: the ${event.kind} of ${event.txId ?? 'this command'} could not be recorded in the audit log: ${event.error}. The host was restored; run \`opdbus ledger verify\` and fix the ledger.`,
      );
      return;
    }
    if (global.json) return;
    if (event.type === 'restore.plugin')
      output.out(`  restore ${event.plugin}: ${event.ok ? 'ok' : `FAILED: ${event.error ?? ''}`}`);
  });
  try {
    const record = await engine.rollback(txId, options.force ? { force: true } : {});
    if (global.json)
      output.out(
        JSON.stringify(
          {
            ok: true,
            txId: record.txId,
            status: record.status,
            ...(auditFailures.length > 0 ? { auditFailures } : {}),
          },
          null,
          2,
        ),
      );
    else output.out(`Rolled back transaction ${record.txId}; the restore verified.`);
    return 0;
  } finally {
    stop();
  }
}

/** `opdbus transactions`: list the journal. */
export async function transactions(global: GlobalOptions, output: Output): Promise<number> {
  const engine = await createEngine(global);
  await recoverFirst(engine, output);
  const records = await engine.transactions();
  if (global.json) {
    output.out(
      JSON.stringify(
        records.map((r) => ({
          txId: r.txId,
          status: r.status,
          createdAt: r.createdAt,
          actor: r.actor,
          changes: r.plan.changes.length,
          planHash: r.plan.hash,
          confirm: r.confirm,
          restore: r.restore,
          failure: r.failure,
        })),
        null,
        2,
      ),
    );
  } else {
    output.out(formatTransactions(records));
  }
  return 0;
}
