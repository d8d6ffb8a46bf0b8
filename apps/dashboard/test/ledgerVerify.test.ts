// The browser verifier against the real ledger: entries, proofs and checkpoints made by
// @opdbus/ledger, checked with WebCrypto (Node's implements the same API as the browser's).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '@opdbus/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalJson,
  fromHex,
  openCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyEntry,
} from '../client/ledgerVerify.js';

let dir: string;
let ledger: Ledger;
const entries = Array.from({ length: 13 }, (_, i) => ({
  v: 2,
  kind: 'plan',
  at: `2026-12-06T00:00:${String(i).padStart(2, '0')}Z`,
  nested: { z: i, a: [1, 'two', null, { é: true }], '\u00e9': 'x' },
  n: i / 3,
}));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dashboard-verify-'));
  ledger = await Ledger.open({ dir, origin: 'test.example/ledger' });
  for (const e of entries.slice(0, 5)) await ledger.append(e);
});
afterAll(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

const hexes = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex'));

describe('the browser ledger verifier', () => {
  it('matches the ledger canonical form and leaf hashes', async () => {
    const e = await ledger.get(3);
    expect(canonicalJson(e.value)).toBe(e.bytes.toString('utf8'));
  });

  it('verifies every entry against a signed checkpoint and the pinned key', async () => {
    for (const e of entries.slice(5)) await ledger.append(e);
    const note = await ledger.checkpoint();
    for (let index = 0; index < ledger.size; index++) {
      const verdict = await verifyEntry({
        index,
        entry: (await ledger.get(index)).value,
        proof: { size: ledger.size, proof: hexes(ledger.inclusionProof(index)) },
        checkpointNote: note,
        pinnedKey: ledger.verifier.toString(),
      });
      expect(verdict.ok, JSON.stringify(verdict.steps)).toBe(true);
    }
  });

  it('fails for a tampered entry, a wrong proof and a key that is not the pinned one', async () => {
    const note = await ledger.checkpoint();
    const good = {
      index: 4,
      entry: (await ledger.get(4)).value,
      proof: { size: ledger.size, proof: hexes(ledger.inclusionProof(4)) },
      checkpointNote: note,
      pinnedKey: ledger.verifier.toString(),
    };
    const tampered = await verifyEntry({ ...good, entry: { ...(good.entry as object), kind: 'apply' } });
    expect(tampered.ok).toBe(false);
    expect(tampered.steps.find((s) => s.label === 'inclusion proof')?.ok).toBe(false);
    const wrongIndex = await verifyEntry({ ...good, index: 5 });
    expect(wrongIndex.ok).toBe(false);
    const other = await Ledger.open({ dir: join(dir, 'other'), origin: 'other.example/ledger' });
    try {
      const wrongKey = await verifyEntry({ ...good, pinnedKey: other.verifier.toString() });
      expect(wrongKey.ok).toBe(false);
      expect(wrongKey.steps[0]?.detail).toMatch(/no signature of the pinned key/);
    } finally {
      await other.close();
    }
    const forged = note.replace(/\n\n— (\S+) (\S+)\n$/, (_m, name: string, sig: string) => {
      const raw = Buffer.from(sig, 'base64');
      raw[10] = raw[10]! ^ 1;
      return `\n\n— ${name} ${raw.toString('base64')}\n`;
    });
    const badSignature = await verifyEntry({ ...good, checkpointNote: forged });
    expect(badSignature.steps[0]).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/does not verify/),
    });
  });

  it('checks consistency between two checkpoints', async () => {
    const key = await parseVerifierKey(ledger.verifier.toString());
    const current = await openCheckpoint(await ledger.checkpoint(), key);
    for (const size1 of [0, 1, 2, 4, 5, 7, 8, 12, 13]) {
      const proof = ledger.consistencyProof(size1, current.size).map((b) => new Uint8Array(b));
      const root1 = new Uint8Array(ledger.root(size1));
      expect(await verifyConsistency(size1, current.size, proof, root1, fromHex(current.root))).toBe(true);
      if (size1 > 0 && size1 < current.size) {
        const other = new Uint8Array(ledger.root(size1 - 1));
        expect(await verifyConsistency(size1, current.size, proof, other, fromHex(current.root))).toBe(false);
      }
    }
  });
});
