import { OpdbusError, canonicalJson } from '@opdbus/core';
import { openCheckpoint } from './checkpoint.js';
import { leafHash } from './hash.js';
import type { Ledger } from './ledger.js';
import { verifyInclusion } from './merkle.js';
import { NoteVerifier } from './note.js';

/** The format tag of an evidence bundle. */
export const BUNDLE_FORMAT = 'opdbus-ledger-bundle/v1';

/**
 * An evidence bundle: entries of a ledger with their inclusion proofs to one signed checkpoint,
 * verifiable offline with {@link verifyBundle} (no state directory, no network).
 */
export interface EvidenceBundle {
  format: typeof BUNDLE_FORMAT;
  origin: string;
  /** The log's verifier key (`NAME+KEYID+BASE64`). Verifiers should pin it rather than trust it from the bundle. */
  verifierKey: string;
  /** The signed checkpoint (C2SP tlog-checkpoint note) the proofs lead to. */
  checkpoint: string;
  entries: {
    index: number;
    /** The entry's canonical JSON. */ entry: string;
    /** Inclusion proof, base64 hashes. */ proof: string[];
  }[];
  exportedAt: string;
}

/** Build an evidence bundle of entries `[from, to)` (default: all) proven against the current checkpoint. */
export async function exportBundle(
  ledger: Ledger,
  range: { from?: number; to?: number } = {},
): Promise<EvidenceBundle> {
  const checkpoint = await ledger.checkpoint();
  const { size } = openCheckpoint(checkpoint, [ledger.verifier]).checkpoint;
  const from = Math.max(0, range.from ?? 0);
  const to = Math.min(size, range.to ?? size);
  const entries: EvidenceBundle['entries'] = [];
  for await (const e of ledger.entries(from, to)) {
    entries.push({
      index: e.index,
      entry: e.bytes.toString('utf8'),
      proof: ledger.inclusionProof(e.index, size).map((h) => h.toString('base64')),
    });
  }
  return {
    format: BUNDLE_FORMAT,
    origin: ledger.origin,
    verifierKey: ledger.verifier.toString(),
    checkpoint,
    entries,
    exportedAt: new Date().toISOString(),
  };
}

/** What a verified bundle proves. */
export interface BundleVerification {
  origin: string;
  /** Tree size of the checkpoint. */
  size: number;
  /** Root hash (hex) of the checkpoint. */
  root: string;
  /** Indexes of the entries proven included. */
  indexes: number[];
  /** Whether the key was given by the caller (pinned) rather than taken from the bundle. */
  pinnedKey: boolean;
}

function bad(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_LEDGER_BUNDLE_INVALID', message, { data });
}

/**
 * Verify an evidence bundle offline: the checkpoint's signature (with `verifier`, or the key the
 * bundle names), each entry's canonical form and its inclusion proof to the checkpoint's root.
 * Throws `OPDBUS_ERR_LEDGER_BUNDLE_INVALID` naming what failed.
 */
export function verifyBundle(
  input: unknown,
  options: { verifier?: NoteVerifier | string } = {},
): BundleVerification {
  const bundle = (typeof input === 'string' ? parseJson(input) : input) as Partial<EvidenceBundle>;
  if (bundle === null || typeof bundle !== 'object' || bundle.format !== BUNDLE_FORMAT)
    throw bad(`Not an evidence bundle (expected format "${BUNDLE_FORMAT}").`);
  if (typeof bundle.checkpoint !== 'string' || !Array.isArray(bundle.entries))
    throw bad('The bundle lacks its checkpoint or entries.');
  let verifier: NoteVerifier;
  try {
    verifier =
      options.verifier instanceof NoteVerifier
        ? options.verifier
        : NoteVerifier.parse(
            typeof options.verifier === 'string' ? options.verifier : String(bundle.verifierKey),
          );
  } catch (err) {
    throw bad(`The verifier key is not usable: ${(err as Error).message}`);
  }
  let checkpoint;
  try {
    checkpoint = openCheckpoint(bundle.checkpoint, [verifier]).checkpoint;
  } catch (err) {
    throw bad(`The bundle's checkpoint does not verify with key ${verifier.name}: ${(err as Error).message}`);
  }
  const indexes: number[] = [];
  for (const [i, item] of bundle.entries.entries()) {
    const rawIndex = (item as { index?: unknown }).index;
    const where = `entry ${typeof rawIndex === 'number' ? rawIndex : `#${i}`}`;
    if (
      typeof item !== 'object' ||
      typeof item.entry !== 'string' ||
      !Number.isSafeInteger(item.index) ||
      !Array.isArray(item.proof)
    )
      throw bad(`The bundle's ${where} is malformed.`, { position: i });
    let canonical: string;
    try {
      canonical = canonicalJson(JSON.parse(item.entry));
    } catch {
      throw bad(`The bundle's ${where} is not JSON.`, { index: item.index });
    }
    if (canonical !== item.entry)
      throw bad(`The bundle's ${where} is not in canonical form (RFC 8785).`, { index: item.index });
    const proof = item.proof.map((h) => Buffer.from(String(h), 'base64'));
    if (!verifyInclusion(leafHash(item.entry), item.index, checkpoint.size, proof, checkpoint.root)) {
      throw bad(
        `The inclusion proof of ${where} does not lead to the checkpoint's root at size ${checkpoint.size}: the entry or the proof was changed.`,
        {
          index: item.index,
        },
      );
    }
    indexes.push(item.index);
  }
  return {
    origin: checkpoint.origin,
    size: checkpoint.size,
    root: checkpoint.root.toString('hex'),
    indexes,
    pinnedKey: options.verifier !== undefined,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw bad(`The bundle is not JSON: ${(err as Error).message}`);
  }
}
