import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger, NoteSigner, exportBundle, verifyBundle, type EvidenceBundle } from '../src/index.js';

let dir: string;
let bundle: EvidenceBundle;
let key: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-bundle-'));
  const ledger = await Ledger.open({ dir, origin: 'bundle.test/ledger' });
  await Promise.all(Array.from({ length: 23 }, (_, i) => ledger.append({ kind: 'apply', i })));
  bundle = await exportBundle(ledger, { from: 5, to: 12 });
  key = ledger.verifier.toString();
  await ledger.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('evidence bundles', () => {
  it('verify offline with a pinned key, and survive a JSON round trip', () => {
    expect(bundle.entries.map((e) => e.index)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    const result = verifyBundle(JSON.stringify(bundle), { verifier: key });
    expect(result).toMatchObject({
      origin: 'bundle.test/ledger',
      size: 23,
      indexes: [5, 6, 7, 8, 9, 10, 11],
      pinnedKey: true,
    });
    expect(verifyBundle(bundle).pinnedKey).toBe(false);
  });

  it('fail on a changed entry, a changed proof, a moved entry or another key', () => {
    const copy = (): EvidenceBundle => JSON.parse(JSON.stringify(bundle)) as EvidenceBundle;
    const edited = copy();
    edited.entries[2]!.entry = edited.entries[2]!.entry.replace('"i":7', '"i":70');
    expect(() => verifyBundle(edited, { verifier: key })).toThrow(/entry 7 does not lead/);
    const proof = copy();
    proof.entries[0]!.proof[1] = Buffer.alloc(32).toString('base64');
    expect(() => verifyBundle(proof, { verifier: key })).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_LEDGER_BUNDLE_INVALID' }),
    );
    const moved = copy();
    moved.entries[0]!.index = 6;
    expect(() => verifyBundle(moved, { verifier: key })).toThrow(/does not lead/);
    const spaced = copy();
    spaced.entries[1]!.entry = spaced.entries[1]!.entry.replace(',', ', ');
    expect(() => verifyBundle(spaced, { verifier: key })).toThrow(/canonical/);
    expect(() =>
      verifyBundle(bundle, { verifier: NoteSigner.generate('bundle.test/ledger').verifier }),
    ).toThrow(/does not verify/);
    expect(() => verifyBundle('{"format":"x"}')).toThrow(/Not an evidence bundle/);
  });
});
