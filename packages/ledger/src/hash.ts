import { hash as oneShot } from 'node:crypto';
import { createRequire } from 'node:module';

/** Size of a SHA-256 hash in bytes. */
export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

interface NativeHash {
  leafHashes(data: Buffer, offsets: Uint32Array, lengths: Uint32Array, out: Buffer, check?: boolean): number;
  nodeHashes(level: Buffer, pairs: number, out: Buffer): void;
}

let native: NativeHash | null | undefined;

function loadNative(): NativeHash | null {
  if (native !== undefined) return native;
  if (process.env.OPDBUS_LEDGER_NO_NATIVE === '1') return (native = null);
  try {
    native = createRequire(import.meta.url)('../build/Release/opdbus_ledger.node') as NativeHash;
  } catch {
    // The addon is optional (built on install when a compiler is there); node:crypto does the same work.
    native = null;
  }
  return native;
}

/** Which SHA-256 implementation bulk hashing uses: the batching addon or node:crypto per hash. */
export function hashBackend(): 'native' | 'node:crypto' {
  return loadNative() === null ? 'node:crypto' : 'native';
}

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array | string): Buffer {
  return oneShot('sha256', data, 'buffer');
}

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ entry). */
export function leafHash(entry: Uint8Array | string): Buffer {
  const bytes = typeof entry === 'string' ? Buffer.from(entry, 'utf8') : entry;
  return sha256(Buffer.concat([LEAF_PREFIX, bytes]));
}

/** RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(Buffer.concat([NODE_PREFIX, left, right]));
}

/** The RFC 9162 hash of an empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = sha256(Buffer.alloc(0));

/**
 * Leaf hashes of many entries that lie in one buffer (`offsets[i]`, `lengths[i]`), written to
 * `out` (32 bytes each). Batched (and spread over the cores) in the native addon when it is
 * built. With `checkStored`, each hash is compared with the 32 bytes just before its payload
 * (a record's checksum) and the first index that differs is returned; otherwise -1.
 */
export function leafHashesInto(
  data: Buffer,
  offsets: Uint32Array,
  lengths: Uint32Array,
  out: Buffer,
  checkStored = false,
): number {
  const addon = loadNative();
  if (addon !== null) return addon.leafHashes(data, offsets, lengths, out, checkStored);
  let first = -1;
  for (let i = 0; i < offsets.length; i++) {
    const start = offsets[i]!;
    if (start + lengths[i]! > data.length || (checkStored && start < HASH_SIZE))
      throw new RangeError('leafHashesInto: a range lies outside the buffer');
    const hash = leafHash(data.subarray(start, start + lengths[i]!));
    hash.copy(out, i * HASH_SIZE);
    if (checkStored && first < 0 && !hash.equals(data.subarray(start - HASH_SIZE, start))) first = i;
  }
  return first;
}

/**
 * The next level up of a Merkle tree: for `pairs` consecutive (left, right) pairs of 32-byte
 * hashes in `level`, their node hashes.
 */
export function parentLevel(level: Buffer, pairs: number): Buffer {
  const out = Buffer.allocUnsafe(pairs * HASH_SIZE);
  const addon = loadNative();
  if (addon !== null) {
    addon.nodeHashes(level, pairs, out);
    return out;
  }
  for (let i = 0; i < pairs; i++) {
    const at = i * 2 * HASH_SIZE;
    nodeHash(level.subarray(at, at + HASH_SIZE), level.subarray(at + HASH_SIZE, at + 2 * HASH_SIZE)).copy(
      out,
      i * HASH_SIZE,
    );
  }
  return out;
}
