import { constants, readFileSync } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OpdbusError } from './errors.js';
import { processStartTime, type ProcessIdentity } from './process.js';

/**
 * Who holds a lock: written into the lock file by its holder once the kernel has granted it, so
 * a waiter can say "held by pid 4242 (opdbus apply web.yaml) since …". Informational only: the
 * kernel's lock, not this record, decides who holds the lock.
 */
export interface LockOwner extends ProcessIdentity {
  /** What the holder is doing (by default its command line, e.g. `opdbus apply web.yaml`). */
  command: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
}

/** Options of {@link FileLock.acquire}. */
export interface FileLockOptions {
  /**
   * How long to wait for the holder, in milliseconds (default 30 s): `0` tries once,
   * `Infinity` waits for ever.
   */
  waitMs?: number;
  /** What this process is doing, recorded for waiters (default: its command line). */
  command?: string;
  /** Stops the wait early (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /**
   * The error to throw when the wait runs out (default `OPDBUS_ERR_LOCKED`). `owner` is the
   * holder's record, or `undefined` when the holder has not written it yet.
   */
  busyError?: (owner: LockOwner | undefined, path: string) => OpdbusError;
}

/** What {@link FileLock.probe} found. */
export interface LockProbe {
  /** Whether some process (this one included) holds the lock now. */
  held: boolean;
  /** The holder's record, when held and written. */
  owner?: LockOwner;
}

/** The part of fs-native-extensions used here: open-file-description (OFD) record locks. */
interface NativeLocks {
  tryLock(fd: number, offset: number, length: number, opts: { shared?: boolean }): boolean;
  unlock(fd: number, offset?: number, length?: number): void;
}

let native: NativeLocks | undefined;
function locks(): NativeLocks {
  if (native === undefined) {
    try {
      native = createRequire(import.meta.url)('fs-native-extensions') as NativeLocks;
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_INTERNAL',
        `Cannot load the file-locking addon (fs-native-extensions): ${(err as Error).message}. Reinstall op-dbus for this platform.`,
        { cause: err },
      );
    }
  }
  return native;
}

/**
 * The name a script was started by: its file name, or for a package's `dist/bin.js` the name
 * its package.json gives that file under `bin` (`opdbus`, `opdbusd`).
 */
function programName(script: string | undefined): string {
  if (script === undefined) return process.title;
  const name = basename(script).replace(/\.(c|m)?js$/, '');
  for (const dir of [dirname(script), dirname(dirname(script))]) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin?: unknown };
      if (typeof pkg.bin !== 'object' || pkg.bin === null) continue;
      for (const [command, file] of Object.entries(pkg.bin as Record<string, unknown>)) {
        if (typeof file === 'string' && join(dir, file) === script) return command;
      }
    } catch {
      // No package.json there: keep looking, then use the file name.
    }
  }
  return name;
}

let program: string | undefined;

/** The default `command` of an owner record: this process's command line, shortened. */
export function currentCommand(): string {
  program ??= programName(process.argv[1]);
  const text = [program, ...process.argv.slice(2)].join(' ');
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

/** "pid 4242 (opdbus apply web.yaml) since 2026-11-22T10:15:00.000Z", or "this process (…)". */
export function describeLockOwner(owner: LockOwner | undefined): string {
  if (owner === undefined) return 'another process (it has not written its owner record yet)';
  const who = owner.pid === process.pid ? `this process (pid ${owner.pid})` : `pid ${owner.pid}`;
  return `${who} (${owner.command}) since ${owner.since}`;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.since !== 'string') return undefined;
    return {
      pid: value.pid,
      startTime: typeof value.startTime === 'string' ? value.startTime : null,
      command: typeof value.command === 'string' ? value.command : '?',
      since: value.since,
    };
  } catch {
    return undefined;
  }
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return parseOwner(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock on a file, held with a Linux open-file-description (OFD) record lock
 * (`fcntl(F_OFD_SETLK)`): the kernel grants it to one open file at a time, across processes and
 * within one, and releases it when its holder closes the file or dies (SIGKILL included). Nothing
 * is ever deleted on a guess: the lock file stays in place, and once granted the holder writes
 * its {@link LockOwner} record into it for the messages of those who wait.
 *
 * Waiting polls the kernel (non-blocking attempts on one open file, pausing 1 ms growing to 25 ms,
 * with jitter), so a wait can time out or be aborted and never occupies a libuv thread. The lock
 * is not re-entrant: a second `acquire` in the same process waits for the first `release`, as
 * one from another process does (so concurrent tasks of one daemon exclude each other too).
 *
 * Mixed versions: an op-dbus from before this lock (an `O_EXCL` lock file deleted on release)
 * does not see this lock; do not run old and new versions on one state directory.
 */
export class FileLock {
  #handle: FileHandle | undefined;

  private constructor(
    readonly path: string,
    readonly owner: LockOwner,
    handle: FileHandle,
  ) {
    this.#handle = handle;
  }

  /**
   * Take the lock on `path` (created with mode 0600 if missing; its directory must exist),
   * waiting up to `options.waitMs` for the holder; throws `options.busyError` (default
   * `OPDBUS_ERR_LOCKED`) naming the holder when the wait runs out.
   */
  static async acquire(path: string, options: FileLockOptions = {}): Promise<FileLock> {
    const waitMs = options.waitMs ?? 30_000;
    const deadline = Date.now() + waitMs;
    let handle = await openLockFile(path);
    try {
      for (let attempt = 0; ; attempt++) {
        options.signal?.throwIfAborted();
        const got = await FileLock.#grant(path, handle, options.command);
        if (got instanceof FileLock) return got;
        if (got === 'replaced') {
          await handle.close();
          handle = await openLockFile(path);
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          const owner = await readOwner(path);
          throw options.busyError !== undefined
            ? options.busyError(owner, path)
            : new OpdbusError('OPDBUS_ERR_LOCKED', `${path} is locked by ${describeLockOwner(owner)}.`, {
                data: { lock: path, ...ownerData(owner) },
              });
        }
        // 1, 2, 4 … 25 ms with jitter: waiters do not wake in step, and a release is seen soon.
        const pause = Math.min(25, 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2);
        try {
          await delay(Math.min(pause, left), undefined, options.signal ? { signal: options.signal } : {});
        } catch (err) {
          options.signal?.throwIfAborted();
          throw err;
        }
      }
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Take the lock if it is free now; `undefined` when another open file holds it. */
  static async tryAcquire(
    path: string,
    options: Pick<FileLockOptions, 'command'> = {},
  ): Promise<FileLock | undefined> {
    for (;;) {
      const handle = await openLockFile(path);
      try {
        const got = await FileLock.#grant(path, handle, options.command);
        if (got instanceof FileLock) return got;
        await handle.close();
        if (got === 'busy') return undefined;
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
    }
  }

  /**
   * One non-blocking attempt on an open lock file: the lock (owner record written), `busy`, or
   * `replaced` when the path no longer names the file that was locked (it was removed or replaced
   * by hand between open and lock: a lock on it would exclude nobody). Only `FileLock` keeps
   * `handle` open; on `replaced` the lock is dropped with the handle by the caller.
   */
  static async #grant(
    path: string,
    handle: FileHandle,
    command: string | undefined,
  ): Promise<FileLock | 'busy' | 'replaced'> {
    if (!locks().tryLock(handle.fd, 0, 0, { shared: false })) return 'busy';
    const [mine, named] = await Promise.all([handle.stat(), stat(path).catch(() => undefined)]);
    if (named === undefined || named.ino !== mine.ino || named.dev !== mine.dev) return 'replaced';
    const owner: LockOwner = {
      pid: process.pid,
      startTime: processStartTime(process.pid),
      command: command ?? currentCommand(),
      since: new Date().toISOString(),
    };
    const record = Buffer.from(`${JSON.stringify(owner)}\n`);
    try {
      // Overwrite, then cut: no moment where the file is empty while the lock is held.
      await handle.write(record, 0, record.length, 0);
      await handle.truncate(record.length);
    } catch (err) {
      locks().unlock(handle.fd, 0, 0);
      throw err;
    }
    return new FileLock(path, owner, handle);
  }

  /**
   * Whether the lock on `path` is held now, and by whom; takes nothing (a shared lock for an
   * instant at most, which only makes a concurrent taker retry).
   */
  static async probe(path: string): Promise<LockProbe> {
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { held: false };
      throw err;
    }
    try {
      if (locks().tryLock(handle.fd, 0, 0, { shared: true })) {
        locks().unlock(handle.fd, 0, 0);
        return { held: false };
      }
      const owner = await readOwner(path);
      return owner === undefined ? { held: true } : { held: true, owner };
    } finally {
      await handle.close();
    }
  }

  /** Whether this object still holds the lock. */
  get held(): boolean {
    return this.#handle !== undefined;
  }

  /** Release the lock (idempotent). The owner record is cleared first, while still held. */
  async release(): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    try {
      await handle.truncate(0);
    } finally {
      // Closing the only descriptor of the open file releases the OFD lock.
      await handle.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

function openLockFile(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
}

/** The fields of an owner record for an error's `data`. */
export function ownerData(owner: LockOwner | undefined): Record<string, unknown> {
  return owner === undefined ? {} : { pid: owner.pid, command: owner.command, since: owner.since };
}
