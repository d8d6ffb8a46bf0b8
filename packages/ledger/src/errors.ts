import { defineErrorCodes } from '@opdbus/core';

/** Error codes of @opdbus/ledger (documented in docs/errors.md). */
export const ledgerErrors = defineErrorCodes({
  OPDBUS_ERR_LEDGER_TAMPERED: {
    exit: 'TAMPERED',
    summary:
      'The ledger does not verify: an entry or checkpoint was changed, removed, reordered or inserted (the index says where it starts).',
    remedy:
      'Treat the host as compromised from that index on: compare with an exported bundle or checkpoint, keep the files for forensics, do not repair them.',
  },
  OPDBUS_ERR_LEDGER_IO: {
    exit: 'STATE_DIR',
    summary: 'The ledger files could not be read or written (disk full, permissions, I/O error).',
    remedy:
      'Check the file named in the message, free space and permissions; appends that failed were not acknowledged.',
  },
  OPDBUS_ERR_LEDGER_LOCKED: {
    exit: 'CONFLICT',
    summary: 'Another process (or task) holds the ledger open for writing, and the wait for it ran out.',
    remedy:
      'Wait for it to finish: the message names its pid, command and since when. Readers open the ledger read-only and need not wait; a holder that died has already released the lock.',
  },
  OPDBUS_ERR_LEDGER_NOT_FOUND: {
    exit: 'NOT_FOUND',
    summary: 'The entry, tree size or ledger asked for does not exist.',
    remedy: 'Check the index against `opdbus ledger log` (indexes start at 0) and the state directory.',
  },
  OPDBUS_ERR_LEDGER_INVALID_ARGUMENT: {
    exit: 'INVALID_INPUT',
    summary: 'An argument to a ledger operation is out of range or of the wrong type.',
    remedy: 'Read the message: it names the argument and the accepted range.',
  },
  OPDBUS_ERR_LEDGER_KEY: {
    exit: 'STATE_DIR',
    summary: 'A signing or verifier key is missing, malformed or has unsafe permissions.',
    remedy:
      'Check the key file named in the message (it must be mode 0600 and in signed-note format); a missing host key is created on first use.',
  },
  OPDBUS_ERR_LEDGER_CHECKPOINT_INVALID: {
    exit: 'TAMPERED',
    summary:
      'A checkpoint or signed note is malformed, signed by an unknown key, or its signature does not verify.',
    remedy: "Check that you verify with the log's own verifier key and that the checkpoint was not edited.",
  },
  OPDBUS_ERR_LEDGER_BUNDLE_INVALID: {
    exit: 'TAMPERED',
    summary: 'An evidence bundle does not verify (bad format, proof, entry or checkpoint).',
    remedy:
      'Re-export the bundle from the host with `opdbus ledger export`; the message says which part failed.',
  },
  OPDBUS_ERR_SNAPSHOT_NOT_FOUND: {
    exit: 'NOT_FOUND',
    summary: 'No snapshot with that id exists.',
    remedy: 'List snapshots with `opdbus snapshot list`.',
  },
  OPDBUS_ERR_SNAPSHOT_INVALID: {
    exit: 'TAMPERED',
    summary:
      'A snapshot does not verify: it cannot be decrypted, it is not the one the ledger recorded (replayed or altered), or the ledger records it as pruned.',
    remedy:
      'Do not restore it. Compare it with the ledger entry named in the message; restore another snapshot.',
  },
  OPDBUS_ERR_SNAPSHOT_BACKEND: {
    exit: 'UNAVAILABLE',
    summary: 'The snapshot backend failed (for btrfs: a `btrfs` command failed; the message has its output).',
    remedy:
      'Check that the state directory is on btrfs for the btrfs backend, that btrfs-progs is installed and that you run as root.',
  },
});

/** An error code of @opdbus/ledger. */
export type LedgerErrorCode = keyof typeof ledgerErrors;
