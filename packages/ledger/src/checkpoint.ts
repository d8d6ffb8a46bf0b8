import { OpdbusError } from '@opdbus/core';
import { HASH_SIZE } from './hash.js';
import { formatNote, verifyNote, type NoteSigner, type NoteVerifier, type SignedNote } from './note.js';

/** A transparency log checkpoint (C2SP tlog-checkpoint): origin, tree size, root hash. */
export interface Checkpoint {
  /** The log's identity, e.g. `host.example/opdbus`. */
  origin: string;
  size: number;
  /** The RFC 9162 root hash at `size`. */
  root: Buffer;
  /** Opaque extension lines (not recommended; empty by default). */
  extensions?: string[];
}

function invalid(message: string): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_LEDGER_CHECKPOINT_INVALID', message);
}

/** The note text of a checkpoint. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  if (checkpoint.origin.length === 0 || checkpoint.origin.includes('\n'))
    throw invalid('A checkpoint origin is one non-empty line.');
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0)
    throw invalid('A checkpoint size is a non-negative integer.');
  if (checkpoint.root.length !== HASH_SIZE) throw invalid('A checkpoint root is a 32-byte hash.');
  const extensions = checkpoint.extensions ?? [];
  if (extensions.some((e) => e.length === 0 || e.includes('\n')))
    throw invalid('Extension lines must be non-empty single lines.');
  return [
    checkpoint.origin,
    String(checkpoint.size),
    checkpoint.root.toString('base64'),
    ...extensions,
    '',
  ].join('\n');
}

/** Parse a checkpoint's note text. Throws `OPDBUS_ERR_LEDGER_CHECKPOINT_INVALID` when malformed. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw invalid('A checkpoint text ends with a newline.');
  const lines = text.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (origin === undefined || origin.length === 0) throw invalid('The checkpoint has no origin line.');
  if (size === undefined || !/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size)))
    throw invalid(`The checkpoint size line "${size ?? ''}" is not a decimal tree size.`);
  const rootBytes = Buffer.from(root ?? '', 'base64');
  if (root === undefined || rootBytes.length !== HASH_SIZE || rootBytes.toString('base64') !== root)
    throw invalid(`The checkpoint root line "${root ?? ''}" is not a base64 SHA-256 hash.`);
  if (extensions.some((e) => e.length === 0)) throw invalid('Checkpoint extension lines must be non-empty.');
  return { origin, size: Number(size), root: rootBytes, ...(extensions.length > 0 ? { extensions } : {}) };
}

/** Sign a checkpoint with the log's key; returns the signed note. */
export function signCheckpoint(checkpoint: Checkpoint, signer: NoteSigner): string {
  const text = formatCheckpoint(checkpoint);
  return formatNote({ text, signatures: [signer.sign(text)] });
}

/** A checkpoint whose signature verified. */
export interface VerifiedCheckpoint {
  checkpoint: Checkpoint;
  note: SignedNote;
  /** The signed note as text. */
  text: string;
  verifiedBy: NoteVerifier[];
}

/**
 * Verify a signed checkpoint note with the log's verifier key (other keys, e.g. witnesses, may
 * also be passed; unknown signatures are ignored) and parse it. When `origin` is given, the
 * checkpoint must carry it.
 */
export function openCheckpoint(
  note: string,
  verifiers: readonly NoteVerifier[],
  options: { origin?: string } = {},
): VerifiedCheckpoint {
  const { note: parsed, verifiedBy } = verifyNote(note, verifiers);
  const checkpoint = parseCheckpoint(parsed.text);
  if (options.origin !== undefined && checkpoint.origin !== options.origin)
    throw invalid(`The checkpoint is for origin "${checkpoint.origin}", not "${options.origin}".`);
  return { checkpoint, note: parsed, text: note, verifiedBy };
}
