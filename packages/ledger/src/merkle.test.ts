import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EMPTY_ROOT, leafHash } from './hash.js';
import { MerkleTree, rootOfLeafHashes, verifyConsistency, verifyInclusion } from './merkle.js';

// An independent, straightforward transcription of RFC 9162 section 2.1 (recursive MTH, PATH,
// PROOF over the leaf data), sharing no code with the implementation under test.
const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const refLeaf = (d: Uint8Array): Buffer => sha(Buffer.from([0]), d);
const refNode = (l: Uint8Array, r: Uint8Array): Buffer => sha(Buffer.from([1]), l, r);
const split = (n: number): number => {
  let k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
};
// The reference works on ranges [lo, hi) of one leaf list, memoised so that checking every size
// up to a few hundred stays fast; the recursion is RFC 9162's, unchanged.
let leaves: Uint8Array[] = [];
const memo = new Map<string, Buffer>();
const useLeaves = (d: Uint8Array[]): void => {
  leaves = d;
  memo.clear();
};
const mthR = (lo: number, hi: number): Buffer => {
  const key = `${lo}:${hi}`;
  let h = memo.get(key);
  if (h === undefined) {
    const n = hi - lo;
    if (n === 0) h = sha();
    else if (n === 1) h = refLeaf(leaves[lo]!);
    else {
      const k = split(n);
      h = refNode(mthR(lo, lo + k), mthR(lo + k, hi));
    }
    memo.set(key, h);
  }
  return h;
};
const mth = (d: Uint8Array[]): Buffer => {
  useLeaves(d);
  return mthR(0, d.length);
};
const refPath = (m: number, lo: number, hi: number): Buffer[] => {
  const n = hi - lo;
  if (n <= 1) return [];
  const k = split(n);
  return m < k
    ? [...refPath(m, lo, lo + k), mthR(lo + k, hi)]
    : [...refPath(m - k, lo + k, hi), mthR(lo, lo + k)];
};
const refSubproof = (m: number, lo: number, hi: number, b: boolean): Buffer[] => {
  const n = hi - lo;
  if (m === n) return b ? [] : [mthR(lo, hi)];
  const k = split(n);
  return m <= k
    ? [...refSubproof(m, lo, lo + k, b), mthR(lo + k, hi)]
    : [...refSubproof(m - k, lo + k, hi, false), mthR(lo, lo + k)];
};
const refProof = (m: number, n: number): Buffer[] => (m === 0 || m === n ? [] : refSubproof(m, 0, n, true));

const data = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`entry ${i}`));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('RFC 9162 Merkle tree', () => {
  // The leaves and roots of the RFC 6962 reference test vectors (certificate-transparency-go, trillian).
  const vectors = [
    '',
    '00',
    '10',
    '2021',
    '3031',
    '40414243',
    '5051525354555657',
    '606162636465666768696a6b6c6d6e6f',
  ].map((h) => Buffer.from(h, 'hex'));
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];

  it('matches the RFC 6962 test vectors and the empty tree', () => {
    const tree = new MerkleTree();
    expect(hex(tree.root())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(EMPTY_ROOT)).toBe(hex(tree.root(0)));
    for (const [i, leaf] of vectors.entries()) {
      tree.appendLeafHash(leafHash(leaf));
      expect(hex(tree.root()), `root at size ${i + 1}`).toBe(roots[i]);
      expect(hex(mth(vectors.slice(0, i + 1)))).toBe(roots[i]);
    }
    for (let n = 1; n <= 8; n++) expect(hex(tree.root(n))).toBe(roots[n - 1]);
  });

  it('roots, inclusion proofs and consistency proofs equal the reference for every size up to 300', () => {
    const d = data(300);
    useLeaves(d);
    const one = new MerkleTree();
    const bulk = MerkleTree.fromLeafHashes(d.map(refLeaf));
    for (let n = 1; n <= d.length; n++) {
      one.appendLeafHash(leafHash(d[n - 1]!));
      const root = mthR(0, n);
      expect(one.root().equals(root), `root ${n}`).toBe(true);
      expect(bulk.root(n).equals(root), `bulk root ${n}`).toBe(true);
      const step = n <= 100 ? 1 : 3;
      for (let m = 0; m < n; m += step) {
        const proof = bulk.inclusionProof(m, n);
        expect(proof.map(hex), `PATH(${m}, ${n})`).toEqual(refPath(m, 0, n).map(hex));
        expect(verifyInclusion(refLeaf(d[m]!), m, n, proof, root)).toBe(true);
      }
      for (let m = 0; m <= n; m += step) {
        const proof = bulk.consistencyProof(m, n);
        expect(proof.map(hex), `PROOF(${m}, ${n})`).toEqual(refProof(m, n).map(hex));
        expect(verifyConsistency(m, n, proof, mthR(0, m), root), `consistency ${m} → ${n}`).toBe(true);
      }
    }
    expect(rootOfLeafHashes(d.map(refLeaf)).equals(mthR(0, d.length))).toBe(true);
  });

  it('accepts sizes and indexes as bigints', () => {
    const d = data(37);
    const tree = MerkleTree.fromLeafHashes(d.map(refLeaf));
    expect(verifyInclusion(refLeaf(d[20]!), 20n, 37n, tree.inclusionProof(20n, 37n), tree.root(37n))).toBe(
      true,
    );
    expect(verifyConsistency(13n, 37n, tree.consistencyProof(13n, 37n), tree.root(13), tree.root())).toBe(
      true,
    );
  });
});

describe('RFC 9162 negative cases', () => {
  const d = data(117);
  const tree = MerkleTree.fromLeafHashes(d.map(refLeaf));
  const garbage = sha(Buffer.from('garbage'));
  const flip = (p: Buffer[], i: number): Buffer[] =>
    p.map((h, j) => (j === i ? Buffer.from(h.map((b, k) => (k === 5 ? b ^ 1 : b))) : h));

  it('inclusion: wrong leaf, wrong index, changed size, flipped/added/removed elements, garbage before or after', () => {
    for (const [m, n] of [
      [0, 1],
      [0, 2],
      [5, 8],
      [6, 7],
      [63, 64],
      [64, 65],
      [100, 117],
      [116, 117],
    ] as const) {
      const proof = tree.inclusionProof(m, n);
      const root = tree.root(n);
      const leaf = refLeaf(d[m]!);
      expect(verifyInclusion(leaf, m, n, proof, root)).toBe(true);
      expect(verifyInclusion(refLeaf(Buffer.from('other')), m, n, proof, root)).toBe(false);
      if (m > 0) expect(verifyInclusion(leaf, m - 1, n, proof, root)).toBe(false);
      if (m + 1 < n) expect(verifyInclusion(leaf, m + 1, n, proof, root)).toBe(false);
      expect(verifyInclusion(leaf, m ^ 2, n, proof, root)).toBe(false);
      // A changed tree size that changes the tree's height (±1 may keep the same shape and path).
      expect(verifyInclusion(leaf, m, n * 2, proof, root)).toBe(false);
      if (Math.floor(n / 2) > m) expect(verifyInclusion(leaf, m, Math.floor(n / 2), proof, root)).toBe(false);
      expect(verifyInclusion(leaf, m, n, proof, tree.root(n === 117 ? 116 : n + 1))).toBe(false);
      expect(verifyInclusion(leaf, n, n, proof, root)).toBe(false);
      for (let i = 0; i < proof.length; i++) {
        expect(verifyInclusion(leaf, m, n, flip(proof, i), root)).toBe(false);
        expect(verifyInclusion(leaf, m, n, [...proof.slice(0, i), ...proof.slice(i + 1)], root)).toBe(false);
      }
      expect(verifyInclusion(leaf, m, n, [...proof, garbage], root)).toBe(false);
      expect(verifyInclusion(leaf, m, n, [garbage, ...proof], root)).toBe(false);
      expect(verifyInclusion(leaf, m, n, [...proof, proof.at(-1) ?? garbage], root)).toBe(false);
    }
  });

  it('consistency: changed sizes or roots, flipped/added/removed elements, garbage before or after', () => {
    for (const [m, n] of [
      [1, 2],
      [1, 8],
      [3, 7],
      [4, 8],
      [6, 8],
      [7, 117],
      [64, 117],
      [100, 117],
    ] as const) {
      const proof = tree.consistencyProof(m, n);
      const r1 = tree.root(m);
      const r2 = tree.root(n);
      expect(verifyConsistency(m, n, proof, r1, r2)).toBe(true);
      expect(verifyConsistency(m, n, proof, r2, r1)).toBe(false);
      expect(verifyConsistency(m - 1, n, proof, r1, r2)).toBe(false);
      expect(verifyConsistency(m + 1, n, proof, r1, r2)).toBe(false);
      expect(verifyConsistency(m, n * 2, proof, r1, r2)).toBe(false);
      expect(verifyConsistency(m, Math.floor(n / 2), proof, r1, r2)).toBe(false);
      expect(verifyConsistency(m * 2, n, proof, r1, r2)).toBe(false);
      expect(verifyConsistency(n, m, proof, r2, r1)).toBe(false);
      expect(verifyConsistency(m, n, proof, garbage, r2)).toBe(false);
      expect(verifyConsistency(m, n, proof, r1, garbage)).toBe(false);
      for (let i = 0; i < proof.length; i++) {
        expect(verifyConsistency(m, n, flip(proof, i), r1, r2), `flip ${i} of ${m}→${n}`).toBe(false);
        expect(verifyConsistency(m, n, [...proof.slice(0, i), ...proof.slice(i + 1)], r1, r2)).toBe(false);
      }
      expect(verifyConsistency(m, n, [...proof, garbage], r1, r2)).toBe(false);
      expect(verifyConsistency(m, n, [garbage, ...proof], r1, r2)).toBe(false);
      expect(verifyConsistency(m, n, [], r1, r2)).toBe(false);
    }
    // The edge cases: equal sizes need an empty proof and equal roots; size 0 needs an empty proof.
    expect(verifyConsistency(5, 5, [], tree.root(5), tree.root(5))).toBe(true);
    expect(verifyConsistency(5, 5, [garbage], tree.root(5), tree.root(5))).toBe(false);
    expect(verifyConsistency(5, 5, [], tree.root(5), tree.root(6))).toBe(false);
    expect(verifyConsistency(0, 5, [], EMPTY_ROOT, tree.root(5))).toBe(true);
    expect(verifyConsistency(0, 5, [garbage], EMPTY_ROOT, tree.root(5))).toBe(false);
  });

  it('never throws, whatever it is given', () => {
    const good = { leaf: refLeaf(d[3]!), proof: tree.inclusionProof(3, 10), root: tree.root(10) };
    const weird: unknown[] = [
      undefined,
      null,
      -1,
      1.5,
      NaN,
      Infinity,
      -1n,
      2n ** 80n,
      '3',
      {},
      [],
      [null],
      [1, 2],
      Buffer.alloc(31),
      Buffer.alloc(33),
      new Uint16Array(16),
      Symbol('x'),
      () => 1,
      new Proxy([], {
        get() {
          throw new Error('hostile');
        },
      }),
    ];
    const call = (fn: (...args: never[]) => boolean, args: unknown[]): boolean => fn(...(args as never[]));
    for (const w of weird) {
      for (let slot = 0; slot < 5; slot++) {
        const args: unknown[] = [good.leaf, 3, 10, good.proof, good.root];
        args[slot] = w;
        expect(() => call(verifyInclusion, args)).not.toThrow();
        expect(call(verifyInclusion, args)).toBe(false);
        const cargs: unknown[] = [3, 10, tree.consistencyProof(3, 10), tree.root(3), tree.root(10)];
        cargs[slot] = w;
        expect(() => call(verifyConsistency, cargs)).not.toThrow();
        expect(call(verifyConsistency, cargs)).toBe(false);
      }
    }
    expect(call(verifyInclusion, [])).toBe(false);
    expect(call(verifyConsistency, [])).toBe(false);
  });

  it('proof generation refuses out-of-range arguments with a documented error', () => {
    expect(() => tree.inclusionProof(117)).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_LEDGER_INVALID_ARGUMENT' }),
    );
    expect(() => tree.inclusionProof(0, 118)).toThrow(/size must be an integer from 0 to 117/);
    expect(() => tree.consistencyProof(9, 8)).toThrow(/size1/);
    expect(() => tree.root(-1)).toThrow(/size/);
  });
});
