import { OpdbusError } from '@opdbus/core';
import { EMPTY_ROOT, HASH_SIZE, nodeHash, parentLevel } from './hash.js';

/** A tree size or leaf index: a non-negative integer, as a number or a bigint. */
export type TreeIndex = number | bigint;

function toBig(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value >= 0n ? value : undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return undefined;
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function proofArray(proof: unknown): Uint8Array[] | undefined {
  if (!Array.isArray(proof)) return undefined;
  const out: Uint8Array[] = [];
  for (const element of proof as unknown[]) {
    if (!isHash(element)) return undefined;
    out.push(element);
  }
  return out;
}

/**
 * Verify an RFC 9162 (section 2.1.3.2) inclusion proof: that the leaf with hash `leafHash` is at
 * `leafIndex` in the tree of `treeSize` leaves whose root is `rootHash`. Returns `true` or
 * `false` and never throws, whatever it is given.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  leafIndex: TreeIndex,
  treeSize: TreeIndex,
  proof: readonly Uint8Array[],
  rootHash: Uint8Array,
): boolean {
  try {
    const index = toBig(leafIndex);
    const size = toBig(treeSize);
    const path = proofArray(proof);
    if (index === undefined || size === undefined || path === undefined) return false;
    if (!isHash(leafHash) || !isHash(rootHash)) return false;
    if (index >= size) return false;
    let fn = index;
    let sn = size - 1n;
    let r: Uint8Array = leafHash;
    for (const p of path) {
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        r = nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equalBytes(r, rootHash);
  } catch {
    return false;
  }
}

/**
 * Verify an RFC 9162 (section 2.1.4.2) consistency proof: that the tree of `size2` leaves with
 * root `root2` extends the tree of `size1` leaves with root `root1`. Equal sizes need an empty
 * proof and equal roots; any tree is consistent with the empty tree (size 0, empty proof).
 * Returns `true` or `false` and never throws, whatever it is given.
 */
export function verifyConsistency(
  size1: TreeIndex,
  size2: TreeIndex,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  try {
    const first = toBig(size1);
    const second = toBig(size2);
    const path = proofArray(proof);
    if (first === undefined || second === undefined || path === undefined) return false;
    if (!isHash(root1) || !isHash(root2)) return false;
    if (first > second) return false;
    if (first === second) return path.length === 0 && equalBytes(root1, root2);
    if (first === 0n) return path.length === 0;
    if (path.length === 0) return false;
    const chain = (first & (first - 1n)) === 0n ? [root1, ...path] : path;
    let fn = first - 1n;
    let sn = second - 1n;
    while ((fn & 1n) === 1n) {
      fn >>= 1n;
      sn >>= 1n;
    }
    let fr: Uint8Array = chain[0]!;
    let sr: Uint8Array = chain[0]!;
    for (let i = 1; i < chain.length; i++) {
      const c = chain[i]!;
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        fr = nodeHash(c, fr);
        sr = nodeHash(c, sr);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        sr = nodeHash(sr, c);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equalBytes(fr, root1) && equalBytes(sr, root2);
  } catch {
    return false;
  }
}

/** The largest power of two strictly below `n` (n ≥ 2). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

function log2Exact(n: number): number {
  let k = 0;
  while (n > 1) {
    n /= 2;
    k++;
  }
  return k;
}

/** A growable array of 32-byte hashes in one buffer. */
class HashList {
  buffer: Buffer;
  count = 0;
  constructor(capacity = 64) {
    this.buffer = Buffer.allocUnsafe(Math.max(1, capacity) * HASH_SIZE);
  }
  #reserve(count: number): void {
    if (count * HASH_SIZE <= this.buffer.length) return;
    let capacity = this.buffer.length / HASH_SIZE;
    while (capacity < count) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity * HASH_SIZE);
    this.buffer.copy(next, 0, 0, this.count * HASH_SIZE);
    this.buffer = next;
  }
  push(hash: Uint8Array): void {
    this.#reserve(this.count + 1);
    this.buffer.set(hash, this.count * HASH_SIZE);
    this.count++;
  }
  pushMany(hashes: Uint8Array): void {
    const n = hashes.length / HASH_SIZE;
    this.#reserve(this.count + n);
    this.buffer.set(hashes, this.count * HASH_SIZE);
    this.count += n;
  }
  get(i: number): Buffer {
    return this.buffer.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }
  slice(from: number, to = this.count): Buffer {
    return this.buffer.subarray(from * HASH_SIZE, to * HASH_SIZE);
  }
  truncate(count: number): void {
    this.count = Math.min(this.count, count);
  }
}

function invalid(message: string, data: Record<string, unknown>): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_LEDGER_INVALID_ARGUMENT', message, { data });
}

function checkIndex(name: string, value: TreeIndex, max: number, inclusive: boolean): number {
  const big = toBig(value);
  const n = big === undefined || big > BigInt(Number.MAX_SAFE_INTEGER) ? NaN : Number(big);
  if (Number.isNaN(n) || (inclusive ? n > max : n >= max)) {
    throw invalid(
      `${name} must be an integer from 0 to ${inclusive ? max : max - 1} (the tree has ${max} leaves), got ${String(value)}.`,
      { [name]: String(value), max },
    );
  }
  return n;
}

/**
 * An RFC 9162 Merkle tree kept as levels of complete subtree hashes (level 0: the leaf hashes;
 * level k: the hashes of the aligned subtrees of 2^k leaves). Any root, inclusion proof or
 * consistency proof for any size up to the current one takes O(log n) lookups plus at most
 * O(log n) hashes for the ragged right edge.
 */
export class MerkleTree {
  readonly #levels: HashList[] = [new HashList()];
  #size = 0;

  /** The number of leaves. */
  get size(): number {
    return this.#size;
  }

  /** Build a tree from leaf hashes (32 bytes each, concatenated or as an array), hashing levels in batches. */
  static fromLeafHashes(leaves: Uint8Array | readonly Uint8Array[]): MerkleTree {
    const tree = new MerkleTree();
    tree.appendLeafHashes(
      Array.isArray(leaves) ? Buffer.concat(leaves as readonly Uint8Array[]) : (leaves as Uint8Array),
    );
    return tree;
  }

  /**
   * Build a tree of `size` leaves from stored levels (level k: the first floor(size / 2^k)
   * complete-subtree hashes, concatenated). Levels that are short are completed by hashing the
   * level below; `stored` reports how many levels were taken as stored.
   */
  static fromLevels(levels: readonly Uint8Array[], size: number): { tree: MerkleTree; complete: boolean } {
    const tree = new MerkleTree();
    const level0 = levels[0] ?? new Uint8Array(0);
    if (level0.length < size * HASH_SIZE) throw invalid('Level 0 must hold every leaf hash.', { size });
    tree.#levels[0]!.pushMany(level0.subarray(0, size * HASH_SIZE));
    tree.#size = size;
    let complete = true;
    for (let k = 1; Math.floor(size / 2 ** k) > 0; k++) {
      const want = Math.floor(size / 2 ** k);
      const list = new HashList(want);
      const stored = levels[k];
      if (stored !== undefined && stored.length >= want * HASH_SIZE) {
        list.pushMany(stored.subarray(0, want * HASH_SIZE));
      } else {
        complete = false;
        list.pushMany(parentLevel(tree.#levels[k - 1]!.slice(0, want * 2), want));
      }
      tree.#levels[k] = list;
    }
    return { tree, complete };
  }

  /** Append one leaf hash; returns its index. */
  appendLeafHash(hash: Uint8Array): number {
    if (hash.length !== HASH_SIZE) throw invalid('A leaf hash must be 32 bytes.', { length: hash.length });
    const index = this.#size;
    this.#levels[0]!.push(hash);
    this.#size++;
    let i = index;
    let k = 0;
    while (i % 2 === 1) {
      const level = this.#levels[k]!;
      const parent = nodeHash(level.get(i - 1), level.get(i));
      k++;
      if (this.#levels[k] === undefined) this.#levels[k] = new HashList();
      this.#levels[k]!.push(parent);
      i = (i - 1) / 2;
    }
    return index;
  }

  /** Append many leaf hashes (concatenated, 32 bytes each), computing new interior nodes level by level in batches. */
  appendLeafHashes(hashes: Uint8Array): void {
    if (hashes.length % HASH_SIZE !== 0)
      throw invalid('Leaf hashes must be 32 bytes each.', { length: hashes.length });
    if (hashes.length === 0) return;
    this.#levels[0]!.pushMany(hashes);
    this.#size += hashes.length / HASH_SIZE;
    for (let k = 0; ; k++) {
      const level = this.#levels[k]!;
      const target = Math.floor(level.count / 2);
      if (this.#levels[k + 1] === undefined) {
        if (target === 0) break;
        this.#levels[k + 1] = new HashList();
      }
      const up = this.#levels[k + 1]!;
      const missing = target - up.count;
      if (missing <= 0) break;
      up.pushMany(parentLevel(level.slice(up.count * 2, target * 2), missing));
    }
  }

  /** Forget leaves from `size` on (used when a failed write is rolled back). */
  truncate(size: number): void {
    if (size >= this.#size) return;
    this.#size = size;
    let count = size;
    for (const level of this.#levels) {
      level.truncate(count);
      count = Math.floor(count / 2);
    }
  }

  /** The hash of leaf `index`. */
  leafHash(index: number): Buffer {
    return Buffer.from(this.#levels[0]!.get(checkIndex('index', index, this.#size, false)));
  }

  /** The complete level k (hashes of aligned subtrees of 2^k leaves), concatenated. */
  level(k: number): Buffer {
    return this.#levels[k]?.slice(0) ?? Buffer.alloc(0);
  }

  /** MTH(D[start:end]) for a range that RFC 9162's recursion produces (start aligned to the split). */
  #subtree(start: number, end: number): Buffer {
    const n = end - start;
    if (n === 0) return EMPTY_ROOT;
    if (isPowerOfTwo(n) && start % n === 0) {
      const k = log2Exact(n);
      const level = this.#levels[k];
      const index = start / n;
      if (level !== undefined && index < level.count) return level.get(index);
    }
    const k = largestPowerOfTwoBelow(n);
    return nodeHash(this.#subtree(start, start + k), this.#subtree(start + k, end));
  }

  /** The root hash of the tree of the first `size` leaves (default: all). */
  root(size: TreeIndex = this.#size): Buffer {
    const n = checkIndex('size', size, this.#size, true);
    return Buffer.from(this.#subtree(0, n));
  }

  /** The RFC 9162 inclusion proof of leaf `index` in the tree of the first `size` leaves (default: all). */
  inclusionProof(index: TreeIndex, size: TreeIndex = this.#size): Buffer[] {
    const n = checkIndex('size', size, this.#size, true);
    const m = checkIndex('index', index, n, false);
    const out: Buffer[] = [];
    const path = (m: number, start: number, n: number): void => {
      if (n <= 1) return;
      const k = largestPowerOfTwoBelow(n);
      if (m < k) {
        path(m, start, k);
        out.push(this.#subtree(start + k, start + n));
      } else {
        path(m - k, start + k, n - k);
        out.push(this.#subtree(start, start + k));
      }
    };
    path(m, 0, n);
    return out.map((h) => Buffer.from(h));
  }

  /** The RFC 9162 consistency proof between the trees of the first `size1` and `size2` leaves. */
  consistencyProof(size1: TreeIndex, size2: TreeIndex = this.#size): Buffer[] {
    const n = checkIndex('size2', size2, this.#size, true);
    const m = checkIndex('size1', size1, n, true);
    if (m === 0 || m === n) return [];
    const out: Buffer[] = [];
    const sub = (m: number, start: number, n: number, complete: boolean): void => {
      if (m === n) {
        if (!complete) out.push(this.#subtree(start, start + n));
        return;
      }
      const k = largestPowerOfTwoBelow(n);
      if (m <= k) {
        sub(m, start, k, complete);
        out.push(this.#subtree(start + k, start + n));
      } else {
        sub(m - k, start + k, n - k, false);
        out.push(this.#subtree(start, start + k));
      }
    };
    sub(m, 0, n, true);
    return out.map((h) => Buffer.from(h));
  }
}

/** The RFC 9162 root (MTH) of a list of leaf hashes. */
export function rootOfLeafHashes(leaves: readonly Uint8Array[]): Buffer {
  return MerkleTree.fromLeafHashes(leaves).root();
}
