import { mkdtemp, readFile, rm, stat, truncate, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FRAME_HEADER,
  Ledger,
  NoteVerifier,
  leafHash,
  openCheckpoint,
  verifyConsistency,
  verifyInclusion,
  verifyLedger,
} from '../src/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-ledger-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const entry = (i: number) => ({ kind: 'test', i, note: `entry number ${i}` });

async function fill(n: number, batch = 7): Promise<void> {
  const ledger = await Ledger.open({ dir, origin: 'test.example/ledger' });
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => ledger.append(entry(i + j))));
  }
  await ledger.close();
}

/** Byte offsets of every record in the log, by parsing the framing. */
async function records(): Promise<{ offset: number; type: number; seq: number; length: number }[]> {
  const log = await readFile(join(dir, 'log'));
  const out = [];
  for (let at = 0; at < log.length;) {
    const length = log.readUInt32LE(at + 4);
    out.push({ offset: at, type: log[at + 2]!, seq: log.readUInt32LE(at + 8), length });
    at += FRAME_HEADER + length;
  }
  return out;
}

describe('Ledger', () => {
  it('appends, reopens, proves inclusion and consistency, and signs checkpoints', async () => {
    const ledger = await Ledger.open({ dir, origin: 'test.example/ledger' });
    expect(ledger.openReport.keyCreated).toBe(true);
    expect((await stat(join(dir, 'signing.key'))).mode & 0o777).toBe(0o600);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.append(entry(i))));
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const root20 = ledger.root(20);
    await ledger.close();

    const again = await Ledger.open({ dir });
    expect(again.size).toBe(50);
    expect(again.origin).toBe('test.example/ledger');
    expect(again.openReport).toMatchObject({ rebuilt: 0, resealed: false, keyCreated: false });
    const e = await again.get(17);
    expect(e.value).toEqual(entry(17));
    expect(e.bytes.toString()).toBe('{"i":17,"kind":"test","note":"entry number 17"}');
    expect(e.leafHash.equals(leafHash(e.bytes))).toBe(true);
    const note = await again.checkpoint();
    const { checkpoint } = openCheckpoint(note, [again.verifier]);
    expect(checkpoint).toMatchObject({ origin: 'test.example/ledger', size: 50 });
    expect(verifyInclusion(e.leafHash, 17, 50, again.inclusionProof(17), checkpoint.root)).toBe(true);
    expect(verifyConsistency(20, 50, again.consistencyProof(20), root20, checkpoint.root)).toBe(true);
    await again.append(entry(50));
    expect(again.size).toBe(51);
    await again.close();
    const report = await verifyLedger(dir);
    expect(report).toMatchObject({ ok: true, size: 51 });
    expect(report.checkpoints).toBeGreaterThan(1);
  });

  it('is exclusive between processes and instances', async () => {
    const a = await Ledger.open({ dir });
    await expect(Ledger.open({ dir, lockWaitMs: 0 })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_LEDGER_LOCKED',
    });
    await a.close();
    await (await Ledger.open({ dir, lockWaitMs: 0 })).close();
  });

  it('refuses a key file others can read', async () => {
    await (await Ledger.open({ dir })).close();
    const { chmod } = await import('node:fs/promises');
    await chmod(join(dir, 'signing.key'), 0o644);
    await expect(Ledger.open({ dir })).rejects.toMatchObject({ code: 'OPDBUS_ERR_LEDGER_KEY' });
  });

  it('cuts a torn tail back to the last whole record and reports it', async () => {
    await fill(20);
    const size = (await stat(join(dir, 'log'))).size;
    // A crash mid-append: half a record at the end.
    const partial = Buffer.alloc(FRAME_HEADER + 10);
    partial.write('OL', 0);
    partial[2] = 1;
    partial.writeUInt32LE(500, 4);
    partial.writeUInt32LE(20, 8);
    await appendFile(join(dir, 'log'), partial);
    const report = await verifyLedger(dir);
    expect(report).toMatchObject({ ok: true, size: 20, tornTail: { offset: size, bytes: partial.length } });
    const ledger = await Ledger.open({ dir });
    expect(ledger.openReport.tornTail).toMatchObject({ offset: size, bytes: partial.length });
    expect(ledger.size).toBe(20);
    expect((await stat(join(dir, 'log'))).size).toBe(size);
    await ledger.append(entry(20));
    await ledger.close();
    expect(await verifyLedger(dir)).toMatchObject({ ok: true, size: 21 });
  });

  it('re-signs entries whose checkpoint record was torn off', async () => {
    await fill(10, 10);
    const recs = await records();
    const last = recs.at(-1)!;
    expect(last.type).toBe(2);
    await truncate(join(dir, 'log'), last.offset + 20);
    await rm(join(dir, 'head'));
    const ledger = await Ledger.open({ dir });
    expect(ledger.openReport).toMatchObject({ resealed: true, tornTail: { offset: last.offset } });
    expect(ledger.size).toBe(10);
    await ledger.close();
    expect(await verifyLedger(dir)).toMatchObject({ ok: true, size: 10 });
  });

  it('rebuilds the derived index and tree files when they are lost', async () => {
    await fill(33);
    const root = (await verifyLedger(dir)).root;
    await rm(join(dir, 'index'));
    await writeFile(join(dir, 'tree.00'), Buffer.alloc(64));
    await rm(join(dir, 'tree.01'));
    const ledger = await Ledger.open({ dir });
    expect(ledger.size).toBe(33);
    expect(ledger.root().toString('hex')).toBe(root);
    expect((await ledger.get(32)).value).toEqual(entry(32));
    await ledger.close();
    const again = await Ledger.open({ dir });
    expect(again.openReport.rebuilt).toBe(0);
    await again.close();
  });

  describe('tampering is reported with the index where it starts', () => {
    const N = 40;
    beforeEach(async () => {
      await fill(N, 5);
    });

    // verifyLedger reads the whole log; opening for append checks only what a crash can touch
    // (the tail and the head checkpoint), so it refuses only the truncation.
    async function expectTampered(index: number, kind?: string, openRefuses = false): Promise<void> {
      const report = await verifyLedger(dir);
      expect(report.ok).toBe(false);
      expect(report.tampering?.index, report.tampering?.message).toBe(index);
      if (kind !== undefined) expect(report.tampering?.kind).toBe(kind);
      if (openRefuses)
        await expect(Ledger.open({ dir })).rejects.toMatchObject({ code: 'OPDBUS_ERR_LEDGER_TAMPERED' });
    }

    it('a flipped byte in an entry', async () => {
      const rec = (await records()).find((r) => r.type === 1 && r.seq === 23)!;
      const log = await readFile(join(dir, 'log'));
      log[rec.offset + FRAME_HEADER + 5] = log[rec.offset + FRAME_HEADER + 5]! ^ 0x20;
      await writeFile(join(dir, 'log'), log);
      await expectTampered(23, 'record');
    });

    it('a flipped byte in the length field', async () => {
      const rec = (await records()).find((r) => r.type === 1 && r.seq === 12)!;
      const log = await readFile(join(dir, 'log'));
      log[rec.offset + 5] = log[rec.offset + 5]! ^ 0x01;
      await writeFile(join(dir, 'log'), log);
      await expectTampered(12, 'record');
    });

    it('a deleted entry', async () => {
      const recs = await records();
      const rec = recs.find((r) => r.type === 1 && r.seq === 8)!;
      const log = await readFile(join(dir, 'log'));
      await writeFile(
        join(dir, 'log'),
        Buffer.concat([log.subarray(0, rec.offset), log.subarray(rec.offset + FRAME_HEADER + rec.length)]),
      );
      await expectTampered(8, 'order');
    });

    it('two entries swapped', async () => {
      const recs = await records();
      const a = recs.find((r) => r.type === 1 && r.seq === 31)!;
      const b = recs.find((r) => r.type === 1 && r.seq === 32)!;
      const log = await readFile(join(dir, 'log'));
      const ra = log.subarray(a.offset, a.offset + FRAME_HEADER + a.length);
      const rb = log.subarray(b.offset, b.offset + FRAME_HEADER + b.length);
      await writeFile(
        join(dir, 'log'),
        Buffer.concat([log.subarray(0, a.offset), rb, ra, log.subarray(b.offset + FRAME_HEADER + b.length)]),
      );
      await expectTampered(31, 'order');
    });

    it('an inserted entry', async () => {
      const recs = await records();
      const at = recs.find((r) => r.type === 1 && r.seq === 17)!;
      const log = await readFile(join(dir, 'log'));
      const { encodeFrame } = await import('../src/frame.js');
      const forged = encodeFrame(1, 17, Buffer.from('{"forged":true}'));
      await writeFile(
        join(dir, 'log'),
        Buffer.concat([log.subarray(0, at.offset), forged, log.subarray(at.offset)]),
      );
      await expectTampered(17);
    });

    it('an entry rewritten with a recomputed checksum and renumbered frames', async () => {
      // The strongest local rewrite: valid framing everywhere, only the signed roots disagree.
      const recs = await records();
      const rec = recs.find((r) => r.type === 1 && r.seq === 26)!;
      const log = await readFile(join(dir, 'log'));
      const { encodeFrame } = await import('../src/frame.js');
      const payload = Buffer.from(
        log
          .subarray(rec.offset + FRAME_HEADER, rec.offset + FRAME_HEADER + rec.length)
          .toString()
          .replace('26', '99'),
      );
      const forged = encodeFrame(1, 26, payload);
      await writeFile(
        join(dir, 'log'),
        Buffer.concat([
          log.subarray(0, rec.offset),
          forged,
          log.subarray(rec.offset + FRAME_HEADER + rec.length),
        ]),
      );
      await expectTampered(26, 'root');
    });

    it('entries cut off the end (the head checkpoint remembers them)', async () => {
      const recs = await records();
      const rec = recs.find((r) => r.type === 1 && r.seq === 35)!;
      await truncate(join(dir, 'log'), rec.offset);
      await expectTampered(35, 'truncated', true);
    });

    describe('the last record: a torn tail is incomplete, a complete record that fails is tampering', () => {
      /** The last record is the checkpoint for size N. */
      async function lastRecord(): Promise<{ offset: number; type: number; seq: number; length: number }> {
        const last = (await records()).at(-1)!;
        expect(last).toMatchObject({ type: 2, seq: N });
        return last;
      }

      /** Verify and open both report tampering at `index`, and the log is left as it was. */
      async function expectRefusedAndKept(index: number): Promise<void> {
        const before = await readFile(join(dir, 'log'));
        const report = await verifyLedger(dir);
        expect(report.ok).toBe(false);
        expect(report.tornTail).toBeUndefined();
        expect(report.tampering).toMatchObject({ index, kind: 'record' });
        for (let attempt = 0; attempt < 2; attempt++) {
          await expect(Ledger.open({ dir })).rejects.toMatchObject({
            code: 'OPDBUS_ERR_LEDGER_TAMPERED',
            data: { index },
          });
          await expect(Ledger.open({ dir, readOnly: true })).rejects.toMatchObject({
            code: 'OPDBUS_ERR_LEDGER_TAMPERED',
          });
        }
        expect((await readFile(join(dir, 'log'))).equals(before)).toBe(true);
      }

      it('a flipped byte inside the final checkpoint record', async () => {
        const last = await lastRecord();
        const log = await readFile(join(dir, 'log'));
        const at = last.offset + FRAME_HEADER + Math.floor(last.length / 2);
        log[at] = log[at]! ^ 0x01;
        await writeFile(join(dir, 'log'), log);
        await expectRefusedAndKept(N);
        expect((await verifyLedger(dir)).tampering?.message).toMatch(/checkpoint record for size 40/);
      });

      it('a flipped byte in the checksum, the type or the magic of the final record', async () => {
        const last = await lastRecord();
        const original = await readFile(join(dir, 'log'));
        for (const field of [20, 2, 0]) {
          const log = Buffer.from(original);
          log[last.offset + field] = log[last.offset + field]! ^ 0x01;
          await writeFile(join(dir, 'log'), log);
          await expectRefusedAndKept(N);
        }
      });

      it('a final record whose length field was made to run past the end of the file', async () => {
        const last = await lastRecord();
        const log = await readFile(join(dir, 'log'));
        log.writeUInt32LE(last.length + 100, last.offset + 4);
        await writeFile(join(dir, 'log'), log);
        await expectRefusedAndKept(N);
      });

      it('a final record cut short (a crash mid-write) is a torn tail, cut back and re-signed', async () => {
        const last = await lastRecord();
        await truncate(join(dir, 'log'), last.offset + FRAME_HEADER + Math.floor(last.length / 2));
        expect(await verifyLedger(dir)).toMatchObject({
          ok: true,
          size: N,
          tornTail: { offset: last.offset },
        });
        const ledger = await Ledger.open({ dir });
        expect(ledger.openReport).toMatchObject({ resealed: true, tornTail: { offset: last.offset } });
        await ledger.close();
        expect(await verifyLedger(dir)).toMatchObject({ ok: true, size: N });
        expect((await verifyLedger(dir)).tornTail).toBeUndefined();
      });

      it('zeros after the last record (a file extended by a crash before its data) are a torn tail', async () => {
        const size = (await stat(join(dir, 'log'))).size;
        await appendFile(join(dir, 'log'), Buffer.alloc(4096));
        expect(await verifyLedger(dir)).toMatchObject({
          ok: true,
          size: N,
          tornTail: { offset: size, bytes: 4096 },
        });
        const ledger = await Ledger.open({ dir });
        expect(ledger.openReport.tornTail).toMatchObject({ offset: size, bytes: 4096 });
        await ledger.close();
        expect((await stat(join(dir, 'log'))).size).toBe(size);
      });
    });

    it('a log not consistent with a checkpoint exported earlier', async () => {
      const trusted = (await verifyLedger(dir)).checkpoint!;
      await rm(dir, { recursive: true, force: true });
      await fill(N, 5); // a new history under a new key: the old checkpoint no longer verifies
      const report = await verifyLedger(dir, { trusted: [trusted] });
      expect(report.ok).toBe(false);
      expect(report.tampering?.kind).toBe('trusted');
      // With the old verifier key, the new log's own checkpoints are the ones that fail.
      const oldKey = NoteVerifier.parse((await readFile(join(dir, 'verifier.pub'), 'utf8')).trim());
      expect((await verifyLedger(dir, { verifier: oldKey })).ok).toBe(true);
    });
  });
});
