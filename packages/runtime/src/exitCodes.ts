import type { ErrorCode } from '@opdbus/core';

/**
 * The exit codes of `opdbus` and the other op-dbus apps (documented in docs/errors.md). They
 * never change meaning.
 */
export const exitCodes = {
  OK: { code: 0, meaning: 'Success; for `diff` and `apply --dry-run`: no changes pending.' },
  INTERNAL: { code: 1, meaning: 'Unexpected error (a bug, or a plugin failing to query/diff/checkpoint).' },
  CHANGES_PENDING: {
    code: 2,
    meaning: '`diff` / `apply --dry-run`: the host differs from the document (changes pending).',
  },
  INVALID_INPUT: {
    code: 3,
    meaning:
      'Invalid command line or state document (syntax, schema, unknown plugin or key, dependency cycle).',
  },
  UNAVAILABLE: {
    code: 4,
    meaning:
      'A plugin the document names cannot work here, or the target (--netns, --bus, --ovsdb, --fsroot) does not exist.',
  },
  ROLLED_BACK: { code: 5, meaning: 'Apply failed and was rolled back: the host is as it was before.' },
  RESTORE_FAILED: {
    code: 6,
    meaning:
      'Apply or rollback failed AND the restore did not verify: the host is in between; the message lists what.',
  },
  CONFLICT: {
    code: 7,
    meaning:
      'Another op-dbus holds the state lock, or a transaction is in a state that forbids this (pending confirmation).',
  },
  NOT_FOUND: { code: 8, meaning: 'No such transaction, ledger entry or snapshot.' },
  RISKY: {
    code: 9,
    meaning: 'The plan has risky changes; use --confirm-timeout (commit-confirmed) or --force.',
  },
  STATE_DIR: {
    code: 10,
    meaning:
      'The state directory, a journal, the ledger files or their keys cannot be used (or a step could not be recorded).',
  },
  TAMPERED: {
    code: 11,
    meaning:
      'The ledger, an evidence bundle, a checkpoint or a snapshot does not verify: evidence of tampering.',
  },
  COMPLIANCE_FAILED: {
    code: 12,
    meaning: '`compliance check`: at least one control fails (its evidence shows the host out of policy).',
  },
  INTERRUPTED: {
    code: 130,
    meaning: 'Interrupted (SIGINT/SIGTERM); an apply in progress was rolled back first.',
  },
} as const;

/** A named exit code. */
export type ExitName = keyof typeof exitCodes;

const byError: Partial<Record<ErrorCode, ExitName>> = {
  OPDBUS_ERR_INTERNAL: 'INTERNAL',
  OPDBUS_ERR_PLUGIN_FAILED: 'INTERNAL',
  OPDBUS_ERR_PLUGIN_INVALID: 'INTERNAL',
  OPDBUS_ERR_PLUGIN_DUPLICATE: 'INTERNAL',
  OPDBUS_ERR_USAGE: 'INVALID_INPUT',
  OPDBUS_ERR_STATE_READ: 'INVALID_INPUT',
  OPDBUS_ERR_STATE_PARSE: 'INVALID_INPUT',
  OPDBUS_ERR_STATE_INVALID: 'INVALID_INPUT',
  OPDBUS_ERR_STATE_VERSION: 'INVALID_INPUT',
  OPDBUS_ERR_UNKNOWN_PLUGIN: 'INVALID_INPUT',
  OPDBUS_ERR_PLAN_CYCLE: 'INVALID_INPUT',
  OPDBUS_ERR_PLAN_INVALID: 'INVALID_INPUT',
  OPDBUS_ERR_PATH_UNSAFE: 'INVALID_INPUT',
  OPDBUS_ERR_LIMIT_EXCEEDED: 'INVALID_INPUT',
  OPDBUS_ERR_TOKEN_FILE: 'INVALID_INPUT',
  OPDBUS_ERR_CONFIG: 'INVALID_INPUT',
  OPDBUS_ERR_PLUGIN_LOAD: 'INVALID_INPUT',
  OPDBUS_ERR_PLUGIN_CONTRACT: 'INVALID_INPUT',
  OPDBUS_ERR_PLUGIN_SCHEMA: 'INVALID_INPUT',
  OPDBUS_ERR_PLUGIN_CLASH: 'INVALID_INPUT',
  OPDBUS_ERR_OUTPUT_WRITE: 'INVALID_INPUT',
  OPDBUS_ERR_PLUGIN_UNAVAILABLE: 'UNAVAILABLE',
  OPDBUS_ERR_NETNS: 'UNAVAILABLE',
  OPDBUS_ERR_DBUS_CONNECT: 'UNAVAILABLE',
  OPDBUS_ERR_SYSTEMD_ROOT: 'UNAVAILABLE',
  OPDBUS_ERR_NUMA_READ: 'UNAVAILABLE',
  OPDBUS_ERR_APPLY_FAILED: 'ROLLED_BACK',
  OPDBUS_ERR_VERIFY_FAILED: 'ROLLED_BACK',
  OPDBUS_ERR_WATCHDOG: 'ROLLED_BACK',
  OPDBUS_ERR_RESTORE_FAILED: 'RESTORE_FAILED',
  OPDBUS_ERR_LOCKED: 'CONFLICT',
  OPDBUS_ERR_TX_STATE: 'CONFLICT',
  OPDBUS_ERR_TX_NOT_FOUND: 'NOT_FOUND',
  OPDBUS_ERR_RISKY_CHANGE: 'RISKY',
  OPDBUS_ERR_STATE_DIR: 'STATE_DIR',
  OPDBUS_ERR_JOURNAL_CORRUPT: 'STATE_DIR',
  OPDBUS_ERR_AUDIT_FAILED: 'STATE_DIR',
  OPDBUS_ERR_LEDGER_TAMPERED: 'TAMPERED',
  OPDBUS_ERR_LEDGER_BUNDLE_INVALID: 'TAMPERED',
  OPDBUS_ERR_LEDGER_CHECKPOINT_INVALID: 'TAMPERED',
  OPDBUS_ERR_SNAPSHOT_INVALID: 'TAMPERED',
  OPDBUS_ERR_LEDGER_IO: 'STATE_DIR',
  OPDBUS_ERR_LEDGER_KEY: 'STATE_DIR',
  OPDBUS_ERR_LEDGER_LOCKED: 'CONFLICT',
  OPDBUS_ERR_LEDGER_NOT_FOUND: 'NOT_FOUND',
  OPDBUS_ERR_SNAPSHOT_NOT_FOUND: 'NOT_FOUND',
  OPDBUS_ERR_LEDGER_INVALID_ARGUMENT: 'INVALID_INPUT',
  OPDBUS_ERR_SNAPSHOT_BACKEND: 'UNAVAILABLE',
  OPDBUS_ERR_OVSDB_ADDRESS: 'INVALID_INPUT',
  OPDBUS_ERR_OVSDB_SCHEMA: 'INVALID_INPUT',
  OPDBUS_ERR_OVSDB_CONNECT: 'UNAVAILABLE',
  OPDBUS_ERR_OVS_LOCKED: 'CONFLICT',
  OPDBUS_ERR_ML_INPUT: 'INVALID_INPUT',
  OPDBUS_ERR_ML_READ: 'INVALID_INPUT',
  OPDBUS_ERR_ML_EMPTY: 'INVALID_INPUT',
  OPDBUS_ERR_ML_LABELS: 'INVALID_INPUT',
  OPDBUS_ERR_ML_EMBEDDER: 'INVALID_INPUT',
  OPDBUS_ERR_ML_MODEL_VERSION: 'INVALID_INPUT',
  OPDBUS_ERR_ML_MODEL_CORRUPT: 'INVALID_INPUT',
  OPDBUS_ERR_ML_MODEL_MISSING: 'NOT_FOUND',
  OPDBUS_ERR_ML_MODEL_WRITE: 'STATE_DIR',
  OPDBUS_ERR_ML_BACKEND: 'UNAVAILABLE',
  OPDBUS_ERR_WIREGUARD_INVALID: 'INVALID_INPUT',
  OPDBUS_ERR_WIREGUARD_UNAVAILABLE: 'UNAVAILABLE',
  OPDBUS_ERR_MESH_INVALID: 'INVALID_INPUT',
  OPDBUS_ERR_MESH_TOKEN: 'INVALID_INPUT',
  OPDBUS_ERR_MESH_NOT_FOUND: 'NOT_FOUND',
  OPDBUS_ERR_MESH_NODE: 'CONFLICT',
  OPDBUS_ERR_MESH_POOL: 'CONFLICT',
  OPDBUS_ERR_MESH_ROSTER: 'TAMPERED',
  OPDBUS_ERR_MESH_CONTROLLER: 'UNAVAILABLE',
  OPDBUS_ERR_COMPLIANCE_TAMPERED: 'TAMPERED',
  OPDBUS_ERR_COMPLIANCE_FRAMEWORK: 'INVALID_INPUT',
  OPDBUS_ERR_COMPLIANCE_INPUT: 'INVALID_INPUT',
  OPDBUS_ERR_COMPLIANCE_NOT_FOUND: 'NOT_FOUND',
};

/**
 * The exit code for an error code. A plugin's own code maps to INVALID_INPUT when the error
 * names a place in the state document (`data.path`), else to INTERNAL.
 */
export function exitCodeFor(code: ErrorCode, data?: Record<string, unknown>): number {
  const name = byError[code] ?? (typeof data?.path === 'string' ? 'INVALID_INPUT' : 'INTERNAL');
  return exitCodes[name].code;
}
