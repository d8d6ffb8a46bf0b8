import { errorCodeInfo, type ErrorCode, type ErrorCodeInfo, type ExitCategory } from '@opdbus/core';

/**
 * The exit codes of `opdbus` and the other op-dbus apps (documented in docs/errors.md). They
 * never change meaning. Every exit category of @opdbus/core (an error code's `exit`) is one.
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
} as const satisfies Record<ExitCategory, { code: number; meaning: string }> &
  Record<string, { code: number; meaning: string }>;

/** A named exit code. */
export type ExitName = keyof typeof exitCodes;

/**
 * The exit code for an error code: the `exit` category of the code's definition (its package's
 * error map, see `defineErrorCodes` of @opdbus/core). A code defined without one (or not defined
 * in this process) exits INVALID_INPUT when the error names a place in the state document
 * (`data.path`), else INTERNAL.
 */
export function exitCodeFor(code: ErrorCode, data?: Record<string, unknown>): number {
  return exitCodes[exitCategoryOf(errorCodeInfo(code), data)].code;
}

/** The exit category of an error code's definition, with the default when it names none. */
export function exitCategoryOf(
  info: ErrorCodeInfo | undefined,
  data?: Record<string, unknown>,
): ExitCategory {
  return info?.exit ?? (typeof data?.path === 'string' ? 'INVALID_INPUT' : 'INTERNAL');
}
