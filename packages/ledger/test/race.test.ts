import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, ledgerWriter, openCheckpoint, verifyInclusion, verifyLedger } from '../src/index.js';

const fixture = new URL('./fixtures/appendRace.mjs', import.meta.url).pathname;
const WORKERS = 4;
const ROUNDS = 20;
const PER = 8;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-ledger-race-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function writer(worker: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, dir, String(worker), String(ROUNDS), String(PER)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`writer ${worker} exited with ${code ?? signal}: ${stderr}`)),
    );
  });
}

/** One reader's pass: a read-only open, a checkpoint, an inclusion proof, the last entry, a full verify. */
async function read(previous: number): Promise<number> {
  const ledger = await Ledger.open({ dir, readOnly: true });
  try {
    const size = ledger.size;
    expect(size).toBeGreaterThanOrEqual(previous);
    if (size > 0) {
      const { checkpoint } = openCheckpoint(await ledger.checkpoint(), [ledger.verifier]);
      expect(checkpoint.size).toBe(size);
      const i = Math.floor(Math.random() * size);
      expect(verifyInclusion(ledger.leafHash(i), i, size, ledger.inclusionProof(i), checkpoint.root)).toBe(
        true,
      );
      expect((await ledger.get(size - 1)).value).toMatchObject({ j: expect.any(Number) as unknown });
    }
    const report = await verifyLedger(dir);
    expect(report.ok, report.tampering?.message).toBe(true);
    expect(report.size).toBeGreaterThanOrEqual(size);
    return size;
  } finally {
    await ledger.close();
  }
}

describe('one writer at a time, readers alongside', () => {
  it(`${WORKERS} processes × ${ROUNDS} opens × ${PER} appends while a reader verifies: never interleaved, never corrupt`, async () => {
    await (await Ledger.open({ dir, origin: 'race.test/ledger' })).close();
    let running = true;
    const writers = Promise.all(Array.from({ length: WORKERS }, (_, w) => writer(w))).finally(
      () => (running = false),
    );
    let reads = 0;
    let seen = 0;
    let sawWriter = false;
    while (running) {
      sawWriter ||= (await ledgerWriter(dir)).held;
      seen = await read(seen);
      reads++;
    }
    await writers;
    // Readers never waited for a writer, and ran while writers held the ledger.
    expect(reads).toBeGreaterThan(0);
    expect(sawWriter).toBe(true);

    const report = await verifyLedger(dir);
    expect(report.ok, report.tampering?.message).toBe(true);
    expect(report.tornTail).toBeUndefined();
    expect(report.size).toBe(WORKERS * ROUNDS * PER);

    const ledger = await Ledger.open({ dir });
    try {
      expect(ledger.openReport).toMatchObject({ resealed: false });
      expect(ledger.openReport.tornTail).toBeUndefined();
      const rows: { w: number; r: number; j: number }[] = [];
      for await (const e of ledger.entries()) rows.push(e.value as { w: number; r: number; j: number });
      // Every append is there once, and each writer's open-to-close holds the ledger alone: the
      // PER entries of one round are one contiguous run, in order.
      expect(new Set(rows.map((v) => `${v.w}/${v.r}/${v.j}`)).size).toBe(rows.length);
      for (let at = 0; at < rows.length; at += PER) {
        const run = rows.slice(at, at + PER);
        expect(run.map((v) => [v.w, v.r, v.j])).toEqual(run.map((_, j) => [run[0]!.w, run[0]!.r, j]));
      }
      for (let w = 0; w < WORKERS; w++) {
        const rounds = rows.filter((v) => v.w === w && v.j === 0).map((v) => v.r);
        expect(rounds).toEqual(Array.from({ length: ROUNDS }, (_, r) => r));
      }
    } finally {
      await ledger.close();
    }
  });

  it('a second writer waits or is refused, naming the holder; a reader is not held up', async () => {
    const first = await Ledger.open({ dir, origin: 'race.test/ledger', lockCommand: 'first writer' });
    await first.append({ n: 0 });
    const refused = await Ledger.open({ dir, lockWaitMs: 0 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toMatchObject({
      code: 'OPDBUS_ERR_LEDGER_LOCKED',
      data: { pid: process.pid, command: 'first writer' },
    });
    expect((refused as Error).message).toContain(`this process (pid ${process.pid}) (first writer) since`);
    expect(await ledgerWriter(dir)).toMatchObject({ held: true, owner: { command: 'first writer' } });

    const reader = await Ledger.open({ dir, readOnly: true, lockWaitMs: 0 });
    expect(reader.size).toBe(1);
    await reader.close();
    expect((await verifyLedger(dir)).writer).toMatchObject({ pid: process.pid, command: 'first writer' });

    const second = Ledger.open({ dir, lockWaitMs: 60_000 });
    await first.close();
    const ledger = await second;
    expect(ledger.size).toBe(1);
    await ledger.append({ n: 1 });
    await ledger.close();
    expect(await ledgerWriter(dir)).toEqual({ held: false });
    expect(await verifyLedger(dir)).toMatchObject({ ok: true, size: 2 });
  });
});
