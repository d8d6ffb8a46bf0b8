import { randomBytes } from 'node:crypto';
import {
  constants,
  readdir as readdirCallback,
  readdirSync,
  readFile as readFileCallback,
  readFileSync,
} from 'node:fs';
import { mkdir, open, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Change } from './change.js';
import { OpdbusError } from './errors.js';
import type { JsonValue } from './json.js';
import type { Plan } from './planner.js';
import type { TargetSpec } from './plugin.js';
import {
  FileLock,
  describeLockOwner,
  ownerData,
  type FileLockOptions,
  type LockOwner,
  type LockProbe,
} from './lock.js';
import type { ProcessIdentity } from './process.js';

// What a read-only command reads is read with node:fs's callbacks (the journals) or synchronously
// (the names of the journals and the index: a few small local files, read before any journal):
// node:fs/promises costs milliseconds to load at every start of the `opdbus` command, and the
// first asynchronous read starts libuv's thread pool.
const readdir = promisify(readdirCallback);
const readFile = promisify(readFileCallback);

/** Who made a change: recorded in journals and, later, the ledger. */
export interface Actor {
  kind: 'user' | 'daemon' | 'mcp' | 'watchdog';
  /** User name or client name. */
  name: string;
  uid: number;
  pid: number;
}

/**
 * Where a transaction is. Terminal: `committed`, `rolled-back`, `restore-failed` (a rollback that
 * did not verify; `opdbus rollback TXID` retries it).
 */
export type TxStatus =
  | 'applying'
  | 'verifying'
  | 'pending-confirm'
  | 'committed'
  | 'rolling-back'
  | 'rolled-back'
  | 'restore-failed';

/** Statuses in which nothing more happens on its own. */
export const terminalStatuses: ReadonlySet<TxStatus> = new Set([
  'committed',
  'rolled-back',
  'restore-failed',
]);

/** The durable record of one transaction: `STATE_DIR/transactions/TXID.json`. */
export interface TransactionRecord {
  version: 1;
  txId: string;
  status: TxStatus;
  createdAt: string;
  updatedAt: string;
  actor: Actor;
  /** The process applying it (recovery restores when it is gone mid-apply). */
  owner: ProcessIdentity;
  target: TargetSpec;
  plan: Plan;
  /** Desired sections of the plugins the plan touches (what verification compares with). */
  desired: Record<string, JsonValue>;
  /** Observed sections before the change, scoped to the desired ones (what restore verification compares with). */
  observedBefore: Record<string, JsonValue>;
  /** Checkpoint tokens, per plugin. */
  checkpoints: Record<string, JsonValue>;
  /** SHA-256 of the canonical JSON of `observedBefore`. */
  stateHashBefore: string;
  /** SHA-256 of the observed state after a verified apply. */
  stateHashAfter?: string;
  /** Change ids whose apply completed (updated at phase boundaries; the progress file is finer). */
  applied: string[];
  confirm?: {
    timeoutS: number;
    deadline?: string;
    watchdog?: ProcessIdentity;
    confirmedAt?: string;
    confirmedBy?: Actor;
  };
  failure?: {
    /** `audit`: the result could not be recorded in the audit log, so it was rolled back. */
    phase: 'apply' | 'verify' | 'interrupted' | 'audit';
    changeId?: string;
    error: { code: string; message: string };
  };
  restore?: {
    reason: string;
    ok: boolean;
    residual: string[];
    at: string;
    by: Actor;
    errors: string[];
    /** SHA-256 of the observed state after the restore (when it could be observed). */
    stateHash?: string;
  };
  committedAt?: string;
}

/** A new transaction id: sortable by time, unique. */
export function newTxId(now = new Date()): string {
  // 20261122T101500.123Z: sortable, millisecond resolution (a transaction takes longer than that).
  const stamp = now.toISOString().replace(/[-:]/g, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

const txIdPattern = /^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}$/;

/**
 * What the index of unfinished transactions holds (`transactions/unfinished/`): a marker per
 * transaction that may be unfinished, and the newest transaction whose creation it saw.
 */
interface UnfinishedIndex {
  /** Transactions with a marker: every unfinished one, plus finished ones a crash left marked. */
  marked: Set<string>;
  /** Journals newer than this were written by something that keeps no markers: read them. */
  newest: string;
}

/**
 * The state directory: transaction journals, progress logs, the lock. Writes are atomic
 * (temporary file, fsync, rename, fsync of the directory) so a crash leaves the old or the new
 * record, never half of one.
 *
 * Next to the journals, `transactions/unfinished/` indexes the transactions that are not finished,
 * so that "is anything unfinished?" reads those journals only, not the whole history: an empty
 * file `TXID` per transaction that may be unfinished (made durable before its journal takes a
 * status outside {@link terminalStatuses}, removed after the journal's terminal status is
 * durable), and `newest`, the newest transaction id created while the index was kept. A crash
 * leaves at worst a marker too many (a finished or never-written transaction), which readers
 * skip and {@link StateDir.prune} removes. A state directory without the index (written by an
 * earlier version) is read in full until the first locked write or prune builds it; a journal
 * newer than `newest` without a marker (an earlier version still running) is read too.
 */
export class StateDir {
  readonly root: string;
  readonly transactionsDir: string;

  constructor(root: string) {
    this.root = root;
    this.transactionsDir = join(root, 'transactions');
  }

  /** Create the directories (mode 0700: journals can hold secrets). */
  async ensure(): Promise<void> {
    try {
      await mkdir(this.transactionsDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_STATE_DIR',
        `Cannot create the state directory ${this.root}: ${(err as Error).message}. Run as root or pass a writable --state-dir.`,
        {
          data: { stateDir: this.root },
          cause: err,
        },
      );
    }
  }

  journalPath(txId: string): string {
    return join(this.transactionsDir, `${txId}.json`);
  }

  progressPath(txId: string): string {
    return join(this.transactionsDir, `${txId}.progress`);
  }

  watchdogLogPath(txId: string): string {
    return join(this.transactionsDir, `${txId}.watchdog.log`);
  }

  /** The index of unfinished transactions (see {@link StateDir}). */
  get unfinishedDir(): string {
    return join(this.transactionsDir, 'unfinished');
  }

  /**
   * Durably write a transaction record, keeping the index of unfinished transactions: the marker
   * is durable before an unfinished status is, and goes only once a finished one is. Call it
   * holding the lock (the first write to a state directory without the index builds it, reading
   * every journal once).
   */
  async write(record: TransactionRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    const finished = terminalStatuses.has(record.status);
    if (!finished) await this.#mark(record.txId);
    await writeFileAtomic(this.journalPath(record.txId), `${JSON.stringify(record, null, 2)}\n`);
    if (finished) await this.#settle(record.txId);
  }

  /** Read one transaction record; `OPDBUS_ERR_TX_NOT_FOUND` or `OPDBUS_ERR_JOURNAL_CORRUPT`. */
  async read(txId: string): Promise<TransactionRecord> {
    if (!txIdPattern.test(txId)) {
      throw new OpdbusError(
        'OPDBUS_ERR_TX_NOT_FOUND',
        `"${txId}" is not a transaction id (expected e.g. 20261122T101500.123Z-a1b2c3).`,
        { data: { txId } },
      );
    }
    const file = this.journalPath(txId);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new OpdbusError(
          'OPDBUS_ERR_TX_NOT_FOUND',
          `No transaction ${txId} in ${this.transactionsDir}; check --state-dir (journals of old finished transactions are pruned; the ledger keeps their record).`,
          { data: { txId, stateDir: this.root } },
        );
      }
      throw err;
    }
    return parseRecord(text, file);
  }

  /** All transaction records, oldest first (reads every journal: see {@link StateDir.unfinished}). */
  async list(): Promise<TransactionRecord[]> {
    const records: TransactionRecord[] = [];
    for (const id of this.#ids()) records.push(await this.read(id));
    return records;
  }

  /**
   * The transactions that are not finished (status outside {@link terminalStatuses}: applying,
   * verifying, pending confirmation, rolling back), oldest first. Reads only the journals the
   * index of unfinished transactions names (and any newer than it knows), so its cost follows
   * the number of unfinished transactions, not the history; without the index (a state directory
   * of an earlier version) it reads every journal. Takes no lock and writes nothing: the
   * answer is as of the call, like {@link StateDir.list}. Throws `OPDBUS_ERR_JOURNAL_CORRUPT`
   * for an unreadable journal it reads (recovery has to look at it).
   *
   * @example
   * ```ts
   * const state = new StateDir('/var/lib/opdbus');
   * if ((await state.unfinished()).length > 0) console.log('recovery needed');
   * ```
   */
  async unfinished(): Promise<TransactionRecord[]> {
    // The index before the listing: a transaction created in between is then newer than the
    // `newest` read, so it is read.
    const index = this.#readIndex();
    const ids = this.#ids();
    const records: TransactionRecord[] = [];
    for (const id of ids) {
      if (index !== undefined && !index.marked.has(id) && id <= index.newest) continue;
      const record = await this.#readIfPresent(id);
      if (record !== undefined && !terminalStatuses.has(record.status)) records.push(record);
    }
    return records;
  }

  /** The ids of the journals present, oldest first. */
  ids(): Promise<string[]> {
    return new Promise((resolve) => resolve(this.#ids()));
  }

  #ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.transactionsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -5))
      .filter((id) => txIdPattern.test(id))
      .sort();
  }

  /**
   * Remove the journals (with their progress and watchdog logs) of the oldest finished transactions
   * beyond the most recent `keep`, so that the state directory, which every apply reads, stays
   * bounded however long a daemon runs. Only transactions in a terminal status go (committed,
   * rolled back, restore failed); one that is unfinished or waits for confirmation is never removed.
   * Oldest first, so every transaction later than one still present is present too (what
   * `rollback` checks). It also removes the index markers a crash left on finished or unwritten
   * transactions, and builds the index of a state directory that has none. Whether an old
   * journal is finished comes from the index: only marked journals, and any the index does not
   * know, are read. Call it holding the lock. Returns the ids removed.
   *
   * @example
   * ```ts
   * const state = new StateDir('/var/lib/opdbus');
   * const lock = await state.lock();
   * try {
   *   await state.prune(1000);
   * } finally {
   *   await lock.release();
   * }
   * ```
   */
  async prune(keep: number): Promise<string[]> {
    if (!Number.isInteger(keep) || keep < 1) {
      throw new OpdbusError('OPDBUS_ERR_USAGE', `Keep at least one journal when pruning (got ${keep}).`, {
        data: { keep },
      });
    }
    const index = this.#readIndex() ?? (await this.#buildIndex());
    const ids = this.#ids();
    await this.#dropStaleMarkers(index, new Set(ids));
    const removed: string[] = [];
    for (const id of ids.slice(0, Math.max(0, ids.length - keep))) {
      // Unmarked and known to the index: finished. Otherwise the journal says.
      if (index.marked.has(id) || id > index.newest) {
        let record: TransactionRecord;
        try {
          record = await this.read(id);
        } catch {
          // A journal that cannot be read is recovery's to report, not ours to delete.
          continue;
        }
        if (!terminalStatuses.has(record.status)) continue;
      }
      // The journal last: a crash in between leaves a journal whose logs are gone, which reads fine.
      for (const file of [
        this.#markerPath(id),
        this.progressPath(id),
        this.watchdogLogPath(id),
        this.journalPath(id),
      ]) {
        await unlinkIfPresent(file);
      }
      removed.push(id);
    }
    return removed;
  }

  #markerPath(txId: string): string {
    return join(this.unfinishedDir, txId);
  }

  get #newestPath(): string {
    return join(this.unfinishedDir, 'newest');
  }

  /** One record, or undefined when its journal is gone (pruned, or never written after its marker). */
  async #readIfPresent(txId: string): Promise<TransactionRecord | undefined> {
    try {
      return await this.read(txId);
    } catch (err) {
      if (err instanceof OpdbusError && err.code === 'OPDBUS_ERR_TX_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /**
   * The index of unfinished transactions, or undefined when there is none or it is damaged
   * (then readers read every journal). `newest` first, then the markers: a writer makes a
   * transaction's marker before it records it as `newest`.
   */
  #readIndex(): UnfinishedIndex | undefined {
    let newest: string;
    let names: string[];
    try {
      newest = readFileSync(this.#newestPath, 'utf8').trim();
      names = readdirSync(this.unfinishedDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    if (newest !== '' && !txIdPattern.test(newest)) return undefined;
    return { marked: new Set(names.filter((n) => txIdPattern.test(n))), newest };
  }

  /**
   * Build the index from every journal (a state directory of an earlier version, or one whose
   * index is damaged), in a temporary directory renamed into place. Unreadable journals are
   * marked: recovery reports them. Call it holding the lock.
   */
  async #buildIndex(): Promise<UnfinishedIndex> {
    await this.ensure();
    // What a build or replacement that crashed left behind.
    for (const name of await readdir(this.transactionsDir)) {
      if (name.startsWith('unfinished.')) await rm(join(this.transactionsDir, name), { recursive: true });
    }
    const ids = this.#ids();
    const marked = new Set<string>();
    for (const id of ids) {
      try {
        const record = await this.#readIfPresent(id);
        if (record !== undefined && !terminalStatuses.has(record.status)) marked.add(id);
      } catch {
        marked.add(id);
      }
    }
    const newest = ids.at(-1) ?? '';
    const tmp = `${this.unfinishedDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp, { mode: 0o700 });
    for (const id of marked) await touch(join(tmp, id));
    await writeFileAtomic(join(tmp, 'newest'), `${newest}\n`);
    const old = `${this.unfinishedDir}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
    await rename(this.unfinishedDir, old).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rename(tmp, this.unfinishedDir);
    await syncDir(this.transactionsDir);
    await rm(old, { recursive: true, force: true });
    return { marked, newest };
  }

  /** Make the marker of `txId` durable (and `newest` at least `txId`) before its journal says unfinished. */
  async #mark(txId: string): Promise<void> {
    const index = this.#readIndex() ?? (await this.#buildIndex());
    const created = !index.marked.has(txId);
    if (created) {
      await touch(this.#markerPath(txId));
      index.marked.add(txId);
    }
    await this.#advance(index, txId, created);
  }

  /**
   * After a finished status of `txId` is durable: drop its marker (a crash before leaves a marker
   * too many) and move `newest` up to it. Nothing to keep without an index.
   */
  async #settle(txId: string): Promise<void> {
    const index = this.#readIndex();
    if (index === undefined) return;
    await unlinkIfPresent(this.#markerPath(txId));
    index.marked.delete(txId);
    await this.#advance(index, txId, false);
  }

  /**
   * Move `newest` up to `to`, first marking the unfinished journals in between that the index
   * does not know (written by an earlier version): moving past them unmarked would hide them.
   * `created`: a marker was just made, to be made durable before `newest` is written.
   */
  async #advance(index: UnfinishedIndex, to: string, created: boolean): Promise<void> {
    let sync = created;
    if (to > index.newest) {
      let found = false;
      for (const id of this.#ids()) {
        if (id <= index.newest || id > to || index.marked.has(id)) continue;
        let unfinished: boolean;
        try {
          const record = await this.#readIfPresent(id);
          unfinished = record !== undefined && !terminalStatuses.has(record.status);
        } catch {
          unfinished = true; // unreadable: marked for recovery to report
        }
        if (unfinished) {
          await touch(this.#markerPath(id));
          index.marked.add(id);
          found = true;
        }
      }
      // Their markers durable before `newest` moves past their journals.
      if (found) await syncDir(this.unfinishedDir);
      // No fsync of its own: the directory's below makes it durable before the journal is
      // written, and a `newest` that a crash loses or empties only makes readers read more.
      await replaceFile(this.#newestPath, `${to}\n`);
      index.newest = to;
      sync = true;
    }
    if (sync) await syncDir(this.unfinishedDir);
  }

  /** Remove the markers of transactions that are finished or have no journal (left by crashes). */
  async #dropStaleMarkers(index: UnfinishedIndex, present: ReadonlySet<string>): Promise<void> {
    for (const id of index.marked) {
      let stale = !present.has(id);
      if (!stale) {
        try {
          const record = await this.#readIfPresent(id);
          stale = record === undefined || terminalStatuses.has(record.status);
        } catch {
          continue; // unreadable: stays marked for recovery to report
        }
      }
      if (stale) {
        await unlinkIfPresent(this.#markerPath(id));
        index.marked.delete(id);
      }
    }
  }

  /** Append progress lines (best effort durability: fsync'd at phase boundaries by the caller). */
  async openProgress(txId: string): Promise<ProgressLog> {
    const handle = await open(
      this.progressPath(txId),
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
      0o600,
    );
    return new ProgressLog(handle);
  }

  /** Read the progress log: change ids started and finished. */
  async readProgress(txId: string): Promise<{ started: string[]; done: string[] }> {
    let text = '';
    try {
      text = await readFile(this.progressPath(txId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const started: string[] = [];
    const done: string[] = [];
    for (const line of text.split('\n')) {
      // A torn last line (crash mid-write) is ignored: it can only be the last one.
      const m = /^(start|done) ([0-9a-f]+)$/.exec(line);
      if (m?.[1] === 'start') started.push(m[2]!);
      else if (m?.[1] === 'done') done.push(m[2]!);
    }
    return { started, done };
  }

  /** The state directory's lock file (never removed: the kernel's lock on it is what counts). */
  get lockPath(): string {
    return join(this.root, 'lock');
  }

  /**
   * Take the state directory lock: an exclusive OFD lock on `STATE_DIR/lock` (see
   * {@link FileLock}), which the kernel releases when its holder exits or dies, so no lock is ever
   * "stale" and none is deleted on a guess. One holder at a time across every process (CLI,
   * daemon, watchdog, MCP server) and within one process: a second `lock()` waits for the first
   * `release()`. Waits up to `waitMs` (default 30 s, `Infinity` to wait for ever), then throws
   * `OPDBUS_ERR_LOCKED` naming the holder ("pid N (opdbus apply web.yaml) since …").
   */
  async lock(waitMs = 30_000, options: Pick<FileLockOptions, 'command' | 'signal'> = {}): Promise<StateLock> {
    await this.ensure();
    const lock = await FileLock.acquire(this.lockPath, {
      waitMs,
      ...options,
      busyError: (owner) =>
        new OpdbusError(
          'OPDBUS_ERR_LOCKED',
          `The state directory ${this.root} is locked by ${describeLockOwner(owner)}; wait for it to finish.`,
          { data: { stateDir: this.root, ...ownerData(owner) } },
        ),
    });
    return new StateLock(lock);
  }

  /** Who holds the state directory lock now (`held: false` when nobody does); takes nothing. */
  async lockHolder(): Promise<LockProbe> {
    return FileLock.probe(this.lockPath);
  }
}

/** A held state directory lock. */
export class StateLock {
  readonly #lock: FileLock;
  constructor(lock: FileLock) {
    this.#lock = lock;
  }

  /** The lock file. */
  get path(): string {
    return this.#lock.path;
  }

  /** This process's owner record, as waiters see it. */
  get owner(): LockOwner {
    return this.#lock.owner;
  }

  /** Release the lock (idempotent). */
  async release(): Promise<void> {
    await this.#lock.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** Append-only progress of a transaction: `start ID` / `done ID` lines. */
export class ProgressLog {
  constructor(private readonly handle: FileHandle) {}
  async started(change: Change): Promise<void> {
    await this.handle.write(`start ${change.id}\n`);
  }
  async done(change: Change): Promise<void> {
    await this.handle.write(`done ${change.id}\n`);
  }
  async sync(): Promise<void> {
    await this.handle.datasync();
  }
  async close(): Promise<void> {
    await this.handle.close();
  }
}

function parseRecord(text: string, file: string): TransactionRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_JOURNAL_CORRUPT',
      `${file}: the transaction journal is not valid JSON (${(err as Error).message}); inspect it and move it aside.`,
      {
        data: { file },
        cause: err,
      },
    );
  }
  const r = value as Partial<TransactionRecord>;
  if (
    r.version !== 1 ||
    typeof r.txId !== 'string' ||
    typeof r.status !== 'string' ||
    r.plan === undefined ||
    typeof r.checkpoints !== 'object'
  ) {
    throw new OpdbusError(
      'OPDBUS_ERR_JOURNAL_CORRUPT',
      `${file}: the transaction journal lacks version/txId/status/plan/checkpoints; inspect it and move it aside.`,
      {
        data: { file },
      },
    );
  }
  return r as TransactionRecord;
}

/** Write a file atomically and durably: temp file, fsync, rename over, fsync the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/** fsync a directory, so that the entries created, renamed or removed in it are durable. */
async function syncDir(dir: string): Promise<void> {
  const dirHandle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** Replace a file by rename (never half written), without waiting for it to reach the disk. */
async function replaceFile(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Create an empty file (mode 0600), or leave it as it is. */
async function touch(file: string): Promise<void> {
  await (await open(file, constants.O_WRONLY | constants.O_CREAT, 0o600)).close();
}

async function unlinkIfPresent(file: string): Promise<void> {
  await unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
