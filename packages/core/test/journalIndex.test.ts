// The index of unfinished transactions (STATE_DIR/transactions/unfinished/), on real files: state
// directories of the previous version (no index), every intermediate state a crash can leave,
// prune over more than a thousand journals, and recovery through the index or without it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Engine,
  PluginRegistry,
  StateDir,
  createPlan,
  newTxId,
  parseStateDocument,
  selfIdentity,
  type StateDocument,
  type TransactionRecord,
  type TxStatus,
} from '../src/index.js';
import { memoryHost, memoryPlugin, type MemoryHost } from './memoryPlugin.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'opdbus-journal-index-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A process that cannot exist (above the kernel's largest pid). */
const deadOwner = { pid: 2 ** 22 + 1, startTime: null };

/** `n` transaction ids, oldest first, a second apart. */
function txIds(n: number, from = Date.parse('2026-11-01T00:00:00Z')): string[] {
  return Array.from({ length: n }, (_, i) => newTxId(new Date(from + i * 1000)));
}

function record(txId: string, status: TxStatus): TransactionRecord {
  return {
    version: 1,
    txId,
    status,
    createdAt: '2026-11-01T00:00:00.000Z',
    updatedAt: '2026-11-01T00:00:00.000Z',
    actor: { kind: 'user', name: 'test', uid: 0, pid: 1 },
    owner: deadOwner,
    target: {},
    plan: createPlan([]),
    desired: {},
    observedBefore: {},
    checkpoints: {},
    stateHashBefore: '0'.repeat(64),
    applied: [],
  };
}

/** A journal as the previous version wrote it: the file only, no marker. */
async function writeOld(state: StateDir, r: TransactionRecord): Promise<void> {
  await mkdir(state.transactionsDir, { recursive: true });
  await writeFile(state.journalPath(r.txId), `${JSON.stringify(r, null, 2)}\n`);
}

/** A transaction as the engine records it: applying, then `status`. */
async function run(state: StateDir, txId: string, status: TxStatus = 'committed'): Promise<void> {
  await state.write(record(txId, 'applying'));
  await state.write(record(txId, status));
}

async function markers(state: StateDir): Promise<string[]> {
  return (await readdir(state.unfinishedDir)).filter((n) => n !== 'newest' && !n.includes('.tmp-')).sort();
}

async function newest(state: StateDir): Promise<string> {
  return (await readFile(join(state.unfinishedDir, 'newest'), 'utf8')).trim();
}

async function locked<T>(state: StateDir, fn: () => Promise<T>): Promise<T> {
  const lock = await state.lock();
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

const statusOf = (records: TransactionRecord[]) => records.map((r) => [r.txId, r.status]);

describe('StateDir.unfinished', () => {
  it('reads a state directory of the previous version in full, and the first locked prune indexes it', async () => {
    const state = new StateDir(root);
    const ids = txIds(5);
    const statuses: TxStatus[] = [
      'committed',
      'applying',
      'rolled-back',
      'pending-confirm',
      'restore-failed',
    ];
    for (const [i, id] of ids.entries()) await writeOld(state, record(id, statuses[i]!));

    const expected = [
      [ids[1], 'applying'],
      [ids[3], 'pending-confirm'],
    ];
    expect(statusOf(await state.unfinished())).toEqual(expected);
    // A reader writes nothing: without the lock it must not build the index.
    expect(existsSync(state.unfinishedDir)).toBe(false);

    expect(await locked(state, () => state.prune(1000))).toEqual([]);
    expect(await markers(state)).toEqual([ids[1], ids[3]]);
    expect(await newest(state)).toBe(ids[4]);
    expect(statusOf(await state.unfinished())).toEqual(expected);

    // From now on finished journals are not read: a damaged one does not disturb the answer,
    // while reading every journal (the `transactions` command) reports it.
    await writeFile(state.journalPath(ids[2]!), '{"version": 1, "txId"');
    expect(statusOf(await state.unfinished())).toEqual(expected);
    await expect(state.list()).rejects.toMatchObject({ code: 'OPDBUS_ERR_JOURNAL_CORRUPT' });
  });

  it('marks a transaction while its journal is unfinished, and only then', async () => {
    const state = new StateDir(root);
    const [a, b] = txIds(2);
    await state.write(record(a!, 'applying'));
    expect(await markers(state)).toEqual([a]);
    expect(await newest(state)).toBe(a);
    await state.write(record(a!, 'verifying'));
    await state.write(record(a!, 'pending-confirm'));
    expect(await markers(state)).toEqual([a]);
    await state.write(record(a!, 'committed'));
    expect(await markers(state)).toEqual([]);
    // A rollback of a finished transaction makes it unfinished again until it ends.
    await state.write(record(a!, 'rolling-back'));
    expect(statusOf(await state.unfinished())).toEqual([[a, 'rolling-back']]);
    await state.write(record(a!, 'rolled-back'));
    expect(await markers(state)).toEqual([]);
    // A record written finished from the start still moves `newest`.
    await state.write(record(b!, 'committed'));
    expect(await newest(state)).toBe(b);
    expect(await state.unfinished()).toEqual([]);
  });

  it('answers right in every state a crash can leave, and prune tidies what it left', async () => {
    const state = new StateDir(root);
    const ids = txIds(6);
    const [done1, done2, markedDone, midApply, neverWritten] = ids;
    for (const id of [done1!, done2!, markedDone!]) await run(state, id);
    // Crash after a finished status was durable, before its marker went (or after the marker of
    // a rollback was made, before the journal said rolling-back): marker, journal finished.
    await writeFile(join(state.unfinishedDir, markedDone!), '');
    // Crash mid-apply: marker, journal applying.
    await state.write(record(midApply!, 'applying'));
    // Crash after the marker of a new transaction, before its first journal: a marker (and
    // `newest`) without a journal.
    await writeFile(join(state.unfinishedDir, neverWritten!), '');
    await writeFile(join(state.unfinishedDir, 'newest'), `${neverWritten}\n`);
    // Crash while the index was being rebuilt: a half-built one next to it.
    await mkdir(`${state.unfinishedDir}.tmp-1-abcd`);

    expect(statusOf(await state.unfinished())).toEqual([[midApply, 'applying']]);
    expect(await markers(state)).toEqual([markedDone, midApply, neverWritten]);
    // Keep 1: the oldest ones go (the stale marker's too), the unfinished one stays.
    expect(await locked(state, () => state.prune(1))).toEqual([done1, done2, markedDone]);
    expect(await markers(state)).toEqual([midApply]);
    expect(await state.ids()).toEqual([midApply]);
    expect(statusOf(await state.unfinished())).toEqual([[midApply, 'applying']]);

    // A damaged index is not trusted: every journal is read, and the next write rebuilds it
    // (removing what a crashed rebuild left).
    await writeFile(join(state.unfinishedDir, 'newest'), 'garbage\n');
    await writeOld(state, record(ids[5]!, 'verifying'));
    expect(statusOf(await state.unfinished())).toEqual([
      [midApply, 'applying'],
      [ids[5], 'verifying'],
    ]);
    await run(state, txIds(1, Date.now())[0]!);
    expect(await markers(state)).toEqual([midApply, ids[5]]);
    expect(existsSync(`${state.unfinishedDir}.tmp-1-abcd`)).toBe(false);
  });

  it('takes an index that is not a directory for none, and replaces it', async () => {
    const state = new StateDir(root);
    const [a, b] = txIds(2);
    await writeOld(state, record(a!, 'applying'));
    await writeFile(state.unfinishedDir, 'not a directory');
    expect(statusOf(await state.unfinished())).toEqual([[a, 'applying']]);
    await run(state, b!);
    expect(await markers(state)).toEqual([a]);
    expect(await newest(state)).toBe(b);
  });

  it('reads journals newer than the index knows (an earlier version still running), and keeps them once past', async () => {
    const state = new StateDir(root);
    const [first, byOld, byOldDone, later] = txIds(4);
    await run(state, first!);
    // An earlier version's process, unaware of the index, starts two transactions.
    await writeOld(state, record(byOld!, 'applying'));
    await writeOld(state, record(byOldDone!, 'committed'));
    expect(statusOf(await state.unfinished())).toEqual([[byOld, 'applying']]);
    // A later transaction moves `newest` past them: the unfinished one is marked on the way.
    await run(state, later!);
    expect(await newest(state)).toBe(later);
    expect(await markers(state)).toEqual([byOld]);
    expect(statusOf(await state.unfinished())).toEqual([[byOld, 'applying']]);
  });

  it('prune keeps working over more than a thousand journals of the previous version', async () => {
    const state = new StateDir(root);
    const ids = txIds(1005);
    await writeOld(state, record(ids[0]!, 'applying'));
    for (const id of ids.slice(1)) {
      await writeOld(state, record(id, 'committed'));
      await writeFile(state.progressPath(id), 'start 00\ndone 00\n');
    }
    expect(await locked(state, () => state.prune(1000))).toEqual(ids.slice(1, 5));
    for (const id of ids.slice(1, 5)) {
      expect(existsSync(state.journalPath(id))).toBe(false);
      expect(existsSync(state.progressPath(id))).toBe(false);
    }
    expect(await state.ids()).toHaveLength(1001);
    expect(await markers(state)).toEqual([ids[0]]);
    expect(await locked(state, () => state.prune(1000))).toEqual([]);

    const more = txIds(3, Date.parse('2026-12-01T00:00:00Z'));
    for (const id of more) await run(state, id);
    expect(await locked(state, () => state.prune(1000))).toEqual(ids.slice(5, 8));
    expect((await state.ids()).slice(0, 2)).toEqual([ids[0], ids[8]]);
    expect((await state.ids()).at(-1)).toBe(more[2]);
    expect(statusOf(await state.unfinished())).toEqual([[ids[0], 'applying']]);
  });
});

describe('the engine over the index', () => {
  function setup(host: MemoryHost) {
    const registry = new PluginRegistry([memoryPlugin(host)]);
    const engine = new Engine({
      registry,
      stateDir: root,
      verify: { attempts: 3, initialDelayMs: 1 },
      // The watchdog "runs" as this process: alive, so a pending transaction is left to it.
      spawnWatchdog: () => Promise.resolve(selfIdentity()),
    });
    const doc = (section: Record<string, string | null>): StateDocument =>
      parseStateDocument(JSON.stringify({ version: 1, plugins: { mem: section } }), {
        source: 'test.json',
        registry,
      });
    return { engine, doc };
  }

  it('a transaction pending confirmation blocks applies, with or without the index, until confirmed', async () => {
    const host = memoryHost({ a: '1' });
    const { engine, doc } = setup(host);
    const pending = await engine.apply(doc({ a: '2' }), { confirmTimeoutS: 60 });
    expect(pending.status).toBe('pending-confirm');
    expect(await markers(engine.state)).toEqual([pending.txId]);
    expect(statusOf(await engine.state.unfinished())).toEqual([[pending.txId, 'pending-confirm']]);
    await expect(engine.apply(doc({ a: '3' }))).rejects.toMatchObject({ code: 'OPDBUS_ERR_TX_STATE' });

    // As the previous version left it: no index. Still refused; the apply's prune rebuilds it.
    await rm(engine.state.unfinishedDir, { recursive: true });
    await expect(engine.apply(doc({ a: '3' }))).rejects.toMatchObject({ code: 'OPDBUS_ERR_TX_STATE' });
    expect(await markers(engine.state)).toEqual([pending.txId]);

    expect(await engine.confirm()).toMatchObject({ txId: pending.txId, status: 'committed' });
    expect(await markers(engine.state)).toEqual([]);
    expect(await engine.state.unfinished()).toEqual([]);
    expect((await engine.apply(doc({ a: '3' }))).status).toBe('committed');
    expect(host.values.get('a')).toBe('3');
  });

  for (const index of ['with the index', 'in a state directory of the previous version']) {
    it(`recovery finds and restores a transaction whose process died mid-apply, ${index}`, async () => {
      const host = memoryHost({ a: '1' });
      const { engine, doc } = setup(host);
      const ids: string[] = [];
      for (const v of ['2', '3', '4']) ids.push((await engine.apply(doc({ a: v }))).txId!);
      // The last one as a crash mid-apply leaves it: journal applying, owner gone.
      const last = await engine.state.read(ids[2]!);
      const crashed: TransactionRecord = { ...last, status: 'applying', owner: deadOwner };
      if (index === 'with the index') await engine.state.write(crashed);
      else {
        await rm(engine.state.unfinishedDir, { recursive: true });
        await writeOld(engine.state, crashed);
      }
      expect(statusOf(await engine.state.unfinished())).toEqual([[ids[2], 'applying']]);
      expect(await engine.recover()).toEqual([
        expect.objectContaining({ txId: ids[2], found: 'applying', action: 'restored' }),
      ]);
      expect(host.values.get('a')).toBe('3');
      expect((await engine.state.read(ids[2]!)).status).toBe('rolled-back');
      expect(await engine.state.unfinished()).toEqual([]);
      expect(await markers(engine.state)).toEqual([]);
      expect(await engine.recover()).toEqual([]);
    });
  }
});
