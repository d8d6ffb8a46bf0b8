import type { AuditChange, AuditKind, AuditRecord, ChangeOp, JsonValue } from '@opdbus/core';
import type { Ledger, LedgerEntry } from './ledger.js';

/**
 * The version of the audit records this package writes (the `v` field). docs/ledger-format.md
 * describes every version; readers accept all of them.
 *
 * - 1: steps with counts and state hashes.
 * - 2: also `host`, and `changeRecords` on plan, apply and rollback entries: each change with
 *   plugin, resource, op, before, after and risk (secrets redacted, large values by hash).
 */
export const LEDGER_RECORD_VERSION = 2;

/** The version of the change events {@link changeEventsOf} produces (their `v` field). */
export const CHANGE_EVENT_VERSION = 1;

/** One change as an audit entry of format 2 records it (see `AuditChange` of @opdbus/core). */
export type ChangeRecord = AuditChange;

/** An engine step as stored in the ledger: an {@link AuditRecord} with its format version. */
export type AuditEntry = AuditRecord & { v: number };

/** The kinds of snapshot entries (written by the snapshot manager). */
export type SnapshotEntryKind =
  'snapshot.created' | 'snapshot.pruned' | 'snapshot.restored' | 'snapshot.imported' | 'snapshot.failed';

/** A snapshot entry: one snapshot created, pruned, restored, imported, or a failure to take one. */
export interface SnapshotEntry {
  v: number;
  kind: SnapshotEntryKind;
  at: string;
  actor?: { kind: string; name: string; uid: number; pid: number };
  /** The snapshot id (absent on `snapshot.failed`). */
  id?: string;
  txId?: string;
  [field: string]: JsonValue | undefined;
}

const auditKinds: ReadonlySet<string> = new Set<AuditKind>([
  'plan',
  'apply',
  'rollback',
  'confirm',
  'drift',
  'alert',
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether a ledger entry's value is an engine step (plan, apply, rollback, confirm, drift, alert). */
export function isAuditEntry(value: unknown): value is AuditEntry {
  return (
    isObject(value) &&
    typeof value.v === 'number' &&
    typeof value.kind === 'string' &&
    auditKinds.has(value.kind) &&
    typeof value.at === 'string'
  );
}

/** Whether a ledger entry's value is a snapshot entry. */
export function isSnapshotEntry(value: unknown): value is SnapshotEntry {
  return isObject(value) && typeof value.kind === 'string' && value.kind.startsWith('snapshot.');
}

/**
 * One change that took effect on a host, as a line of `opdbus ledger export-changes` (JSONL):
 * the fields the anomaly scorer, the dashboard, the daemon and compliance reports read. The first
 * eight are the contract; the rest say where it comes from. docs/ledger-format.md describes it.
 */
export interface ChangeEvent {
  /** When the step that carried the change out was recorded (ISO 8601). */
  at: string;
  /** The host acted on. */
  host: string;
  /** Who acted: the actor's name (a user, `watchdog`, a daemon or MCP client name). */
  actor: string;
  plugin: string;
  /** The resource path within the plugin. */
  resource: string;
  op: ChangeOp;
  /** Before the change (null: absent). Redacted secrets are `{"$redacted":true}`; large values `{"$hash":"sha256:…","$bytes":N}`. */
  before: JsonValue;
  /** After the change (null: removed). Same markers as `before`. */
  after: JsonValue;
  /** Format of this event. */
  v: number;
  /** `user`, `daemon`, `mcp` or `watchdog`. */
  actorKind: string;
  /** `apply`: a change of a transaction; `rollback`: the undoing of one (inverse op, before/after swapped). */
  kind: 'apply' | 'rollback';
  /** The transaction's status in that entry (`committed`, `pending-confirm`, `rolled-back`, `restore-failed`). */
  status: string;
  txId: string;
  /** The change's content id (the same in the apply and the rollback entry). */
  changeId: string;
  /** Why the change is risky, or null. */
  risk: string | null;
  /** rollback: why (`requested`, `apply-failed`, `recovery`, `watchdog`, `audit-failed`). */
  trigger?: string;
  /** The index of the ledger entry that records it (its inclusion proof: `opdbus ledger proof N`). */
  index: number;
  summary: string;
}

/** The host name of a ledger origin (`HOST/opdbus` → `HOST`). */
export function hostOfOrigin(origin: string): string {
  const slash = origin.lastIndexOf('/');
  return slash > 0 ? origin.slice(0, slash) : origin;
}

/**
 * The change events of one ledger entry: for an `apply` entry, each change it carried out; for a
 * `rollback` entry, each change it undid (already inverted). Other entries, and entries of format
 * 1 (which have no per-change records), give none. `host` is used when the entry names none.
 */
export function changeEventsOf(entry: Pick<LedgerEntry, 'index' | 'value'>, host: string): ChangeEvent[] {
  const value: unknown = entry.value;
  if (!isAuditEntry(value)) return [];
  if (value.kind !== 'apply' && value.kind !== 'rollback') return [];
  const records = value.changeRecords;
  if (!Array.isArray(records)) return [];
  const events: ChangeEvent[] = [];
  for (const change of records) {
    if (change.applied !== true) continue;
    events.push({
      at: value.at,
      host: typeof value.host === 'string' ? value.host : host,
      actor: value.actor?.name ?? 'unknown',
      plugin: change.plugin,
      resource: change.resource,
      op: change.op,
      before: change.before,
      after: change.after,
      v: CHANGE_EVENT_VERSION,
      actorKind: value.actor?.kind ?? 'unknown',
      kind: value.kind,
      status: value.status ?? 'unknown',
      txId: value.txId ?? '',
      changeId: change.id,
      risk: change.risk ?? null,
      ...(value.trigger === undefined ? {} : { trigger: value.trigger }),
      index: entry.index,
      summary: change.summary,
    });
  }
  return events;
}

/** Options of {@link readChangeEvents}. */
export interface ReadChangeEventsOptions {
  /** First entry (default 0). */
  from?: number;
  /** Entry after the last (default: the ledger's size). */
  to?: number;
}

/**
 * The change events of a ledger, in ledger order (each entry checksum-verified as it is read).
 *
 * @example
 * ```ts
 * const ledger = await Ledger.open({ dir: '/var/lib/opdbus/ledger', readOnly: true });
 * for await (const event of readChangeEvents(ledger)) console.log(JSON.stringify(event));
 * await ledger.close();
 * ```
 */
export async function* readChangeEvents(
  ledger: Ledger,
  options: ReadChangeEventsOptions = {},
): AsyncGenerator<ChangeEvent> {
  const host = hostOfOrigin(ledger.origin);
  for await (const entry of ledger.entries(options.from ?? 0, options.to ?? ledger.size))
    yield* changeEventsOf(entry, host);
}
