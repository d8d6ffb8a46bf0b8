import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileLock, OpdbusError, type LockOwner } from '@opdbus/core';
import { openCheckpoint, parseCheckpoint } from './checkpoint.js';
import { FRAME_HEADER, FrameType, storedDigest } from './frame.js';
import { HASH_SIZE, hashBackend, leafHash, leafHashesInto } from './hash.js';
import { MerkleTree, verifyConsistency } from './merkle.js';
import { NoteVerifier, verifyNote } from './note.js';
import { isTornTail, scanFrames, type ScanStop } from './storage.js';

/** Where verification found that the log was changed. */
export interface TamperFinding {
  /** The first entry index that can no longer be trusted. */
  index: number;
  /** Byte offset in the log file, when the damage is in a record. */
  offset?: number;
  /**
   * `record`: a record that does not parse or whose checksum fails (anything but an incomplete
   *   last record, which is a torn tail);
   * `order`: an entry out of place (deleted, reordered or inserted entries);
   * `checkpoint`: a checkpoint record whose signature or size does not verify;
   * `root`: entries that do not hash to the root a checkpoint signed;
   * `truncated`: fewer entries than the head or a trusted checkpoint signed;
   * `trusted`: not consistent with a checkpoint given as trusted.
   */
  kind: 'record' | 'order' | 'checkpoint' | 'root' | 'truncated' | 'trusted';
  message: string;
}

/** The outcome of verifying a ledger. */
export interface VerifyReport {
  /** True when nothing was found (a torn tail alone still counts as ok: it is a crash, not tampering). */
  ok: boolean;
  /** Entries that verified. */
  size: number;
  /** Checkpoint records whose signatures and roots verified. */
  checkpoints: number;
  /** Root hash (hex) at `size`. */
  root: string;
  /** The last signed checkpoint that verified. */
  checkpoint?: string;
  /**
   * A torn tail: an incomplete last record (a crash mid-append; cut back when the ledger is next
   * opened for writing), or, when `writer` is set, most likely an append still in progress.
   */
  tornTail?: { offset: number; bytes: number; reason: string };
  /** The process that held the ledger open for writing while it was verified, if one did. */
  writer?: Partial<LockOwner>;
  tampering?: TamperFinding;
  /** SHA-256 implementation used for bulk hashing. */
  hashBackend: 'native' | 'node:crypto';
  /** Wall time in milliseconds. */
  ms: number;
}

/** Options of {@link verifyLedger}. */
export interface VerifyOptions {
  /** The log's verifier key (default: the ledger's `verifier.pub`). Pass a key obtained out of band to not trust the directory. */
  verifier?: NoteVerifier;
  /** Signed checkpoints obtained earlier (e.g. exported, or from witnesses): the log must be consistent with each. */
  trusted?: readonly string[];
}

/**
 * Verify a ledger directory from its log alone: every record's framing and checksum, the order of
 * entries, every checkpoint's signature and root, the head checkpoint and any trusted ones. Reads
 * the files only (no lock, no repair). The report says where tampering starts.
 */
export async function verifyLedger(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyLedgerFiles(dir, options);
}

interface SeenCheckpoint {
  size: number;
  root: Buffer;
  note: string;
  offset: number;
}

/** @internal */
export async function verifyLedgerFiles(dir: string, options: VerifyOptions): Promise<VerifyReport> {
  const t0 = performance.now();
  const verifier = options.verifier ?? NoteVerifier.parse(await readFile(join(dir, 'verifier.pub'), 'utf8'));
  const logPath = join(dir, 'log');
  let handle;
  try {
    handle = await open(logPath, constants.O_RDONLY);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_LEDGER_NOT_FOUND',
      `There is no ledger in ${dir} (${(err as Error).message}).`,
      {
        data: { dir },
        cause: err,
      },
    );
  }
  try {
    // The head (written at close, after the log) is read before the log's size, so that a writer
    // at work in another process cannot make it look truncated.
    const head = await readFile(join(dir, 'head'), 'utf8').catch(() => undefined);
    const fileSize = (await handle.stat()).size;
    const leafChunks: Buffer[] = [];
    const checkpoints: SeenCheckpoint[] = [];
    let count = 0;
    let finding: TamperFinding | undefined;
    const stopAt: ScanStop | undefined = await scanFrames(handle, 0, fileSize, (buf, frames) => {
      let entryCount = 0;
      for (let i = 0; i < frames.count; i++) if (frames.type[i] === FrameType.entry) entryCount++;
      const offsets = new Uint32Array(entryCount);
      const lengths = new Uint32Array(entryCount);
      for (let i = 0, e = 0; i < frames.count; i++) {
        if (frames.type[i] !== FrameType.entry) continue;
        offsets[e] = frames.at[i]! + FRAME_HEADER;
        lengths[e++] = frames.length[i]!;
      }
      const computed = Buffer.allocUnsafe(entryCount * HASH_SIZE);
      // Every entry's leaf hash, compared with its record checksum in the same pass.
      const mismatch = leafHashesInto(buf, offsets, lengths, computed, true);
      let e = 0;
      for (let i = 0; i < frames.count; i++) {
        const offset = frames.offset[i]!;
        const seq = frames.seq[i]!;
        if (frames.type[i] === FrameType.entry) {
          if (e === mismatch) {
            leafChunks.push(computed.subarray(0, e * HASH_SIZE));
            return { offset, reason: `the checksum of entry ${count} does not match its bytes` };
          }
          if (seq !== count) {
            leafChunks.push(computed.subarray(0, e * HASH_SIZE));
            finding = {
              index: count,
              offset,
              kind: 'order',
              message: `Entry ${seq} stands where entry ${count} belongs: entries were deleted, reordered or inserted from index ${count} on.`,
            };
            return { offset, reason: 'order' };
          }
          e++;
          count++;
        } else {
          const at = frames.at[i]!;
          const payload = buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + frames.length[i]!);
          if (!leafHash(payload).equals(storedDigest(buf, at))) {
            leafChunks.push(computed.subarray(0, e * HASH_SIZE));
            return {
              offset,
              reason: `the checksum of the checkpoint record for size ${seq} (after entry ${count - 1}) does not match its bytes`,
            };
          }
          const note = payload.toString('utf8');
          let size: number;
          let root: Buffer;
          try {
            const { note: parsed } = verifyNote(note, [verifier]);
            ({ size, root } = parseCheckpoint(parsed.text));
          } catch (err) {
            leafChunks.push(computed.subarray(0, e * HASH_SIZE));
            finding = {
              index: count,
              offset,
              kind: 'checkpoint',
              message: `The checkpoint record after entry ${count - 1} does not verify: ${(err as Error).message}`,
            };
            return { offset, reason: 'checkpoint' };
          }
          if (size !== count || seq !== count) {
            leafChunks.push(computed.subarray(0, e * HASH_SIZE));
            finding = {
              index: Math.min(size, count),
              offset,
              kind: 'order',
              message: `A checkpoint for size ${size} stands after ${count} entries: entries were deleted, reordered or inserted.`,
            };
            return { offset, reason: 'order' };
          }
          checkpoints.push({ size, root, note, offset });
        }
      }
      leafChunks.push(computed);
      return undefined;
    });

    let tornTail: VerifyReport['tornTail'];
    if (stopAt !== undefined && finding === undefined) {
      if (await isTornTail(handle, stopAt, fileSize)) {
        tornTail = { offset: stopAt.offset, bytes: fileSize - stopAt.offset, reason: stopAt.reason };
      } else {
        finding = {
          index: count,
          offset: stopAt.offset,
          kind: 'record',
          message: `The record at byte ${stopAt.offset} (entry ${count}) is damaged (${stopAt.reason}); it is not an incomplete record a crash leaves: the log was altered from entry ${count} on.`,
        };
      }
    }

    const tree = MerkleTree.fromLeafHashes(Buffer.concat(leafChunks));
    let lastGood: SeenCheckpoint | undefined;
    let good = 0;
    for (const cp of checkpoints) {
      if (cp.size > tree.size) break;
      if (!tree.root(cp.size).equals(cp.root)) {
        const from = lastGood?.size ?? 0;
        const index = await firstDifferentLeaf(dir, tree, from, cp.size);
        const candidate: TamperFinding = {
          index,
          offset: cp.offset,
          kind: 'root',
          message: `Entries ${from} to ${cp.size - 1} do not hash to the root signed at size ${cp.size}: an entry was changed, inserted or removed from index ${index} on.`,
        };
        if (finding === undefined || candidate.index < finding.index) finding = candidate;
        break;
      }
      lastGood = cp;
      good++;
    }

    // Damage found in the framing may start earlier than where the framing broke (an entry
    // inserted with a plausible number): the stored leaf hashes beside the log tell where.
    if (finding !== undefined && finding.kind !== 'root') {
      const index = await firstDifferentLeaf(dir, tree, lastGood?.size ?? 0, tree.size, -1);
      if (index >= 0 && index < finding.index) {
        finding = {
          ...finding,
          index,
          message: `${finding.message} The first entry that differs from the recorded leaf hashes is ${index}.`,
        };
      }
    }

    // The head checkpoint (written at close) and trusted checkpoints must be consistent with the log.
    const anchors = [
      ...(head === undefined ? [] : [{ note: head, what: 'the head checkpoint' }]),
      ...(options.trusted ?? []).map((note, i) => ({ note, what: `trusted checkpoint ${i + 1}` })),
    ];
    for (const anchor of anchors) {
      let size: number;
      let root: Buffer;
      try {
        ({ size, root } = openCheckpoint(anchor.note, [verifier]).checkpoint);
      } catch (err) {
        finding ??= {
          index: 0,
          kind: 'trusted',
          message: `${anchor.what} does not verify: ${(err as Error).message}`,
        };
        continue;
      }
      if (size > tree.size) {
        const candidate: TamperFinding = {
          index: tree.size,
          kind: 'truncated',
          message: `${anchor.what} signed ${size} entries but the log has ${tree.size}: entries from index ${tree.size} on were removed.`,
        };
        if (finding === undefined || candidate.index < finding.index) finding = candidate;
      } else if (
        !tree.root(size).equals(root) ||
        !verifyConsistency(size, tree.size, tree.consistencyProof(size), root, tree.root())
      ) {
        const index = await firstDifferentLeaf(dir, tree, 0, size);
        const candidate: TamperFinding = {
          index,
          kind: 'trusted',
          message: `The log is not consistent with ${anchor.what} (size ${size}): history was rewritten from index ${index} on.`,
        };
        if (finding === undefined || candidate.index < finding.index) finding = candidate;
      }
    }

    const size = finding === undefined ? tree.size : Math.min(finding.index, tree.size);
    const probe = await FileLock.probe(join(dir, 'lock')).catch(() => ({ held: false }) as const);
    const writer = probe.held ? (probe.owner ?? {}) : undefined;
    return {
      ok: finding === undefined,
      size,
      checkpoints: good,
      root: tree.root(size).toString('hex'),
      ...(lastGood === undefined ? {} : { checkpoint: lastGood.note }),
      ...(tornTail === undefined ? {} : { tornTail }),
      ...(writer === undefined ? {} : { writer }),
      ...(finding === undefined ? {} : { tampering: finding }),
      hashBackend: hashBackend(),
      ms: performance.now() - t0,
    };
  } finally {
    await handle.close();
  }
}

/**
 * Locate a rewritten entry in [from, to): the first leaf whose recomputed hash differs from the
 * stored tree level 0 (kept beside the log), or `from` when that file was rewritten too.
 */
async function firstDifferentLeaf(
  dir: string,
  tree: MerkleTree,
  from: number,
  to: number,
  otherwise = from,
): Promise<number> {
  const stored = await readFile(join(dir, 'tree.00')).catch(() => Buffer.alloc(0));
  const computed = tree.level(0);
  for (let i = from; i < to; i++) {
    const a = stored.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
    if (a.length < HASH_SIZE) return otherwise;
    if (!a.equals(computed.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))) return i;
  }
  return otherwise;
}
