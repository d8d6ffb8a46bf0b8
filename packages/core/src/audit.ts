import type { Actor } from './journal.js';
import type { TargetSpec } from './plugin.js';

/** What an audit record is about. */
export type AuditKind = 'plan' | 'apply' | 'rollback' | 'confirm' | 'drift';

/** The process that acted: pid, kernel start time and command line. */
export interface AuditProcess {
  pid: number;
  startTime: string | null;
  /** The command (script and arguments), e.g. `["bin.js", "apply", "host.yaml"]`. */
  command: string[];
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
