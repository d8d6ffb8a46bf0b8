import type { Change, OpdbusEvent, Plan, PlanNote, TransactionRecord } from '@opdbus/core';

function value(v: unknown): string {
  if (v === null || v === undefined) return '(absent)';
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
}

/** One line for a change: `sysctl  update  net.ipv4.ip_forward  "0" → "1"`. */
export function formatChange(change: Change): string {
  const risk = change.risk ? `  [RISKY: ${change.risk.reason}]` : '';
  return `${change.plugin}  ${change.op}  ${change.summary}${risk}`;
}

/** A plan for people, with the notes plugins attached to its resources (e.g. why these CPUs). */
export function formatPlan(plan: Plan, notes: readonly PlanNote[] = []): string {
  if (plan.changes.length === 0) return 'No changes: the host matches the document.';
  const lines = [`Plan ${plan.hash.slice(0, 12)}: ${plan.changes.length} change(s), in order:`];
  for (const [i, change] of plan.changes.entries()) {
    lines.push(`  ${String(i + 1).padStart(3)}. ${formatChange(change)}`);
    for (const note of notes) {
      if (note.plugin === change.plugin && note.resource === change.resource)
        lines.push(`       ${note.note}`);
    }
  }
  return lines.join('\n');
}

/** A progress line for an engine event, or undefined for events people need not see. */
export function formatEvent(event: OpdbusEvent, total: number): string | undefined {
  switch (event.type) {
    case 'tx.begin':
      return `Transaction ${event.txId}: ${event.changes} change(s)${event.confirmTimeoutS === undefined ? '' : `, commit-confirmed within ${event.confirmTimeoutS} s`}`;
    case 'change.applied':
      return `  [${event.index + 1}/${total}] ${event.plugin} ${event.op} ${event.resource}: ok (${event.ms.toFixed(1)} ms)`;
    case 'change.failed':
      return `  [${event.index + 1}/${total}] ${event.plugin} ${event.resource}: FAILED: ${event.error.split('\n')[0]}`;
    case 'verify.ok':
      return `Verified: the host matches the document (attempt ${event.attempts}).`;
    case 'verify.failed':
      return `Verification FAILED: ${event.residual.join('; ')}`;
    case 'restore.begin':
      return `Rolling back (${event.reason})...`;
    case 'restore.plugin':
      return `  restore ${event.plugin}: ${event.ok ? 'ok' : `FAILED: ${event.error ?? ''}`}`;
    case 'restore.done':
      return event.ok
        ? 'Rollback verified: the host is as it was before.'
        : `Rollback did NOT verify: ${event.residual.join('; ')}`;
    default:
      return undefined;
  }
}

/** A transaction list for people. */
export function formatTransactions(records: readonly TransactionRecord[]): string {
  if (records.length === 0) return 'No transactions.';
  return records
    .map((r) => {
      const extra =
        r.status === 'pending-confirm'
          ? ` (confirm by ${r.confirm?.deadline ?? '?'})`
          : r.restore
            ? ` (${r.restore.reason})`
            : '';
      return `${r.txId}  ${r.status.padEnd(15)}  ${String(r.plan.changes.length).padStart(4)} change(s)  by ${r.actor.name}${extra}`;
    })
    .join('\n');
}

export { value as formatValue };
