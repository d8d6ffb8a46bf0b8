import type { Change, ChangeOp } from './change.js';
import type { Actor } from './journal.js';
import { canonicalJson, type JsonValue } from './json.js';
import { REDACTED, boundedValue, clipText, limits } from './limits.js';
import type { AnyPlugin, RedactedChangeValues, TargetSpec } from './plugin.js';

/** What an audit record is about. */
export type AuditKind = 'plan' | 'apply' | 'rollback' | 'confirm' | 'drift' | 'alert';

/** The process that acted: pid, kernel start time and command line. */
export interface AuditProcess {
  pid: number;
  startTime: string | null;
  /** The command (script and arguments), e.g. `["bin.js", "apply", "host.yaml"]`. */
  command: string[];
}

/**
 * One change of a transaction as the audit log keeps it: what a plugin did to one resource.
 * Values are the plugin's own (normalised) state, with secrets withheld by the plugin's redaction
 * (`{ "$redacted": true }`) and values larger than {@link limits}.auditValueBytes kept by hash
 * (`{ "$hash": "sha256:…", "$bytes": N }`). docs/ledger-format.md documents it.
 */
export interface AuditChange {
  /** The change's stable content id. */
  id: string;
  plugin: string;
  /** The resource path within the plugin, e.g. `net.ipv4.ip_forward`, `link/br0`. */
  resource: string;
  op: ChangeOp;
  /** The resource before (`null`: it did not exist). */
  before: JsonValue;
  /** The resource after (`null`: it is removed). */
  after: JsonValue;
  /** Why the change is risky (it can cut the management connection), or null. */
  risk: string | null;
  /** One line for people (at most {@link limits}.summaryChars characters). */
  summary: string;
  /** apply and rollback records: whether this change was carried out on the host. */
  applied?: boolean;
}

/**
 * An anomaly score of one change (an `alert` entry's `anomalies`): which change, how unusual
 * (calibrated, in [0, 1]) and why, as @opdbus/ml explains it.
 */
export interface AuditAnomaly {
  /** The change's id (its record in the same entry's `changeRecords`). */
  changeId: string;
  score: number;
  /** At most five reasons of at most 512 characters each. */
  reasons: string[];
}

/**
 * One auditable step of the engine, handed to an {@link AuditSink} (e.g. the @opdbus/ledger
 * transparency log). Hashes are SHA-256 of the canonical JSON of the observed state (scoped to
 * what the transaction touches), hex.
 */
export interface AuditRecord {
  kind: AuditKind;
  /** ISO time. */
  at: string;
  /** Who acted: user (name, uid, pid), daemon, MCP client, watchdog. */
  actor: Actor;
  process: AuditProcess;
  /** Where the engine acted. */
  target: TargetSpec;
  txId?: string;
  planHash?: string;
  /** Number of changes in the plan. */
  changes?: number;
  /** Plugins the plan touches. */
  plugins?: string[];
  /**
   * plan: `planned` | `no-changes`; apply: `committed` | `pending-confirm` | `rolled-back` |
   * `restore-failed`; rollback: `rolled-back` | `restore-failed`; confirm: `committed`.
   */
  status?: string;
  /** Observed state before the step (null when it could not be observed). */
  stateHashBefore?: string | null;
  /** Observed state after the step (null when it could not be observed). */
  stateHashAfter?: string | null;
  /** plan: hash of the desired sections. */
  desiredHash?: string;
  /** rollback: why (`requested`, `apply-failed`, `recovery`, `watchdog`). */
  trigger?: string;
  reason?: string;
  error?: { code: string; message: string };
  /** Resources a restore could not bring back. */
  residual?: string[];
  /** The host name of the machine acted on (as the engine's process sees it). */
  host?: string;
  /**
   * plan, apply and rollback: each change, in plan order (a rollback lists the inverse of the
   * changes it undoes). See {@link AuditChange}.
   */
  changeRecords?: AuditChange[];
  /** alert: the anomaly score of each change in `changeRecords` that raised it. */
  anomalies?: AuditAnomaly[];
  /** apply of a failed transaction: the id of the change that failed. */
  failedChange?: string;
}

/**
 * Where the engine records what it does. The engine awaits `record`, so a sink that writes
 * durably (the ledger fsyncs) makes every step durable before the command returns. A failure to
 * record a plan aborts the apply before anything changes; a failure to record a commit or confirm
 * is thrown (`OPDBUS_ERR_AUDIT_FAILED`) after the fact; a failure to record a restore is logged
 * and published as an `audit.failed` event, never stopping the restore.
 */
export interface AuditSink {
  record(record: AuditRecord): Promise<void>;
}

/** Options of {@link auditChanges}. */
export interface AuditChangesOptions {
  /** Mark each change `applied` (true when its id is in the set). */
  applied?: ReadonlySet<string>;
  /** Record the inverse of each change (what a rollback does): before/after swapped, create ↔ delete. */
  inverse?: boolean;
}

const inverseOp: Record<ChangeOp, ChangeOp> = { create: 'delete', delete: 'create', update: 'update' };

/**
 * The audit records of changes, with secrets withheld by each plugin's redaction and bounded:
 * each value inline up to {@link limits}.auditValueBytes, else by hash; when all of them together
 * would exceed {@link limits}.auditRecordBytes, values are kept inline only up to 256 bytes, then
 * only by hash (null stays null). `plugins` resolves a change's plugin (for its redaction).
 */
export function auditChanges(
  changes: readonly Change[],
  plugins: (name: string) => AnyPlugin | undefined,
  options: AuditChangesOptions = {},
): AuditChange[] {
  const redacted = changes.map((change) => redactChange(plugins(change.plugin), change));
  for (const inline of [limits.auditValueBytes, 256, -1]) {
    let size = 0;
    const records = changes.map((change, i): AuditChange => {
      const values = redacted[i]!;
      const before = bound(values.before, inline);
      const after = bound(values.after, inline);
      const summary = clipText(
        inline < 0 ? `${change.op} ${change.resource}` : values.summary,
        limits.summaryChars,
      );
      const record: AuditChange = {
        id: change.id,
        plugin: change.plugin,
        resource: change.resource,
        op: options.inverse ? inverseOp[change.op] : change.op,
        before: options.inverse ? after : before,
        after: options.inverse ? before : after,
        risk: change.risk?.reason ?? null,
        summary: options.inverse ? `undo: ${summary}` : summary,
      };
      if (options.applied !== undefined) record.applied = options.applied.has(change.id);
      size += Buffer.byteLength(canonicalJson(record), 'utf8');
      return record;
    });
    if (size <= limits.auditRecordBytes || inline < 0) return records;
  }
  return [];
}

function bound(value: JsonValue, inline: number): JsonValue {
  if (value === null) return null;
  return boundedValue(value, inline < 0 ? 0 : inline);
}

/** A change's values and summary as its plugin lets the audit log keep them. */
function redactChange(
  plugin: AnyPlugin | undefined,
  change: Change,
): { before: JsonValue; after: JsonValue; summary: string } {
  const withheld = (): { before: JsonValue; after: JsonValue; summary: string } => ({
    before: change.before === null ? null : REDACTED,
    after: change.after === null ? null : REDACTED,
    summary: `${change.op} ${change.resource}`,
  });
  if (plugin?.redactChange !== undefined) {
    try {
      // JSON by the contract (a plugin's values are JSON); canonicalJson refuses anything else
      // when the record is written.
      const values: RedactedChangeValues<unknown> = plugin.redactChange(change);
      return {
        before: values.before as JsonValue,
        after: values.after as JsonValue,
        summary: values.summary ?? `${change.op} ${change.resource}`,
      };
    } catch {
      // A redaction that fails keeps nothing: a secret never leaks through a plugin bug.
      return withheld();
    }
  }
  if (plugin?.redact !== undefined) return withheld();
  return { before: change.before, after: change.after, summary: change.summary };
}
