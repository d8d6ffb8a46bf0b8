/**
 * @opdbus/ledger: a tamper-evident transparency log — the RFC 9162 Merkle tree and its proofs,
 * C2SP signed-note checkpoints with Ed25519, durable append-only storage with group commit and
 * torn-tail repair — plus encrypted state snapshots with snapper-style retention.
 *
 * @packageDocumentation
 */
export { ledgerErrors, type LedgerErrorCode } from './errors.js';
export { EMPTY_ROOT, HASH_SIZE, hashBackend, leafHash, nodeHash, sha256 } from './hash.js';
export {
  MerkleTree,
  largestPowerOfTwoBelow,
  rootOfLeafHashes,
  verifyConsistency,
  verifyInclusion,
  type TreeIndex,
} from './merkle.js';
export {
  ED25519_TYPE,
  MAX_NOTE_SIGNATURES,
  NoteSigner,
  NoteVerifier,
  addSignature,
  formatNote,
  isValidKeyName,
  keyIdOf,
  parseNote,
  verifyNote,
  type NoteSignature,
  type SignedNote,
} from './note.js';
export {
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  type Checkpoint,
  type VerifiedCheckpoint,
} from './checkpoint.js';
export { createSecretFile, loadOrCreateSigner, readSecretFile } from './keys.js';
export { FRAME_HEADER, MAX_PAYLOAD } from './frame.js';
export {
  Ledger,
  ledgerFiles,
  ledgerWriter,
  type AppendResult,
  type LedgerEntry,
  type LedgerOptions,
  type OpenReport,
} from './ledger.js';
export { verifyLedger, type TamperFinding, type VerifyOptions, type VerifyReport } from './verify.js';
export { LedgerAuditSink, type LedgerAuditSinkOptions } from './auditSink.js';
export {
  BTRFS_SUPER_MAGIC,
  BtrfsBackend,
  DirectoryBackend,
  btrfs,
  isOnBtrfs,
  snapshotIdPattern,
  type SnapshotBackend,
} from './snapshots/backend.js';
export { loadOrCreateSnapshotKey, seal, unseal } from './snapshots/crypto.js';
export {
  SnapshotManager,
  type SnapshotInfo,
  type SnapshotManagerOptions,
  type SnapshotMeta,
  type SnapshotTrigger,
} from './snapshots/manager.js';
export {
  defaultRetention,
  isoWeek,
  planRetention,
  type KeepReason,
  type RetentionItem,
  type RetentionPlan,
  type RetentionPolicy,
} from './snapshots/retention.js';
export {
  BUNDLE_FORMAT,
  exportBundle,
  verifyBundle,
  type BundleVerification,
  type EvidenceBundle,
} from './bundle.js';
