import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HASH_SIZE, hashBackend, leafHash, leafHashesInto, nodeHash, parentLevel } from './hash.js';

const ref = (prefix: number, ...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256').update(Buffer.from([prefix]));
  for (const p of parts) h.update(p);
  return h.digest();
};

describe(`bulk hashing (${hashBackend()})`, () => {
  it('hashes many records in one call exactly as one at a time, and finds the first bad checksum', () => {
    // Records laid out as in the log: a 32-byte checksum, then the payload; enough of them to be split across threads.
    const n = 20_000;
    const parts: Buffer[] = [];
    const offsets = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const payload = randomBytes(i % 700);
      parts.push(ref(0, payload), payload);
      offsets[i] = at + HASH_SIZE;
      lengths[i] = payload.length;
      at += HASH_SIZE + payload.length;
    }
    const data = Buffer.concat(parts);
    const out = Buffer.alloc(n * HASH_SIZE);
    expect(leafHashesInto(data, offsets, lengths, out, true)).toBe(-1);
    for (const i of [0, 1, 4095, 12_345, n - 1]) {
      expect(
        out
          .subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE)
          .equals(leafHash(data.subarray(offsets[i], offsets[i]! + lengths[i]!))),
      ).toBe(true);
    }
    data[offsets[15_000]! - 1] = data[offsets[15_000]! - 1]! ^ 1;
    data[offsets[17_000]! - 1] = data[offsets[17_000]! - 1]! ^ 1;
    expect(leafHashesInto(data, offsets, lengths, out, true)).toBe(15_000);
    expect(leafHashesInto(data, offsets, lengths, out)).toBe(-1);
    expect(() => leafHashesInto(data, new Uint32Array([data.length]), new Uint32Array([1]), out)).toThrow();
  });

  it('computes a level of node hashes as one at a time', () => {
    const level = randomBytes(2 * 9_001 * HASH_SIZE);
    const up = parentLevel(level, 9_001);
    for (const i of [0, 1, 4500, 9_000]) {
      const l = level.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE);
      const r = level.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE);
      expect(up.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE).equals(ref(1, l, r))).toBe(true);
      expect(nodeHash(l, r).equals(ref(1, l, r))).toBe(true);
    }
  });
});
