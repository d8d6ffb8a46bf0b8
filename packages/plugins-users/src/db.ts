/**
 * The four password database files (passwd, group, shadow, gshadow) under a root, read as lines
 * and written back atomically, with every line that is not edited kept byte for byte; and the
 * lock shadow-utils takes around such edits.
 */
import { constants } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  lchown,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OpdbusError } from '@opdbus/core';
import { ConfinedRoot } from '@opdbus/netlink';

/** The databases, by name. */
export const databases = ['passwd', 'shadow', 'group', 'gshadow'] as const;
/** One of the four databases. */
export type DatabaseName = (typeof databases)[number];

/** Mode of a database file op-dbus has to create (only shadow and gshadow may be missing). */
const defaultModes: Record<DatabaseName, number> = {
  passwd: 0o644,
  group: 0o644,
  shadow: 0o640,
  gshadow: 0o640,
};

/** Lines of an entry-per-line file (passwd(5), group(5), shadow(5), gshadow(5)). */
export class DatabaseFile {
  /** Whether the file ended with a newline (kept on write). */
  readonly finalNewline: boolean;
  readonly lines: string[];

  constructor(
    readonly name: DatabaseName,
    readonly path: string,
    readonly original: string | undefined,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
  ) {
    const text = original ?? '';
    this.finalNewline = text === '' || text.endsWith('\n');
    this.lines = text === '' ? [] : (this.finalNewline ? text.slice(0, -1) : text).split('\n');
  }

  /** The entry name of a line, or undefined for comments, blank lines and NIS `+`/`-` lines. */
  static entryName(line: string): string | undefined {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) return undefined;
    const colon = line.indexOf(':');
    return colon <= 0 ? undefined : line.slice(0, colon);
  }

  #index: Map<string, number> | undefined;

  /** Index of the line of entry `name`, or -1 (the first line of that name, as getpwnam reads). */
  indexOf(name: string): number {
    if (this.#index === undefined) {
      this.#index = new Map();
      for (const [i, line] of this.lines.entries()) {
        const entry = DatabaseFile.entryName(line);
        if (entry !== undefined && !this.#index.has(entry)) this.#index.set(entry, i);
      }
    }
    return this.#index.get(name) ?? -1;
  }

  /** The fields of entry `name`, or undefined. */
  fields(name: string): string[] | undefined {
    const i = this.indexOf(name);
    return i < 0 ? undefined : this.lines[i]!.split(':');
  }

  /** The line of entry `name`, or undefined. */
  line(name: string): string | undefined {
    const i = this.indexOf(name);
    return i < 0 ? undefined : this.lines[i];
  }

  /** Every entry, as fields, in file order. */
  entries(): string[][] {
    const out: string[][] = [];
    for (const line of this.lines) if (DatabaseFile.entryName(line) !== undefined) out.push(line.split(':'));
    return out;
  }

  /** Replace (or append, or with null remove) the line of entry `name`. */
  set(name: string, line: string | null): void {
    const i = this.indexOf(name);
    this.#index = undefined;
    if (line === null) {
      if (i >= 0) this.lines.splice(i, 1);
    } else if (i >= 0) this.lines[i] = line;
    else this.lines.push(line);
  }

  /** Insert `line` at `index` (clamped to the file), for a restore that puts a line back where it was. */
  insertAt(index: number, line: string): void {
    this.#index = undefined;
    this.lines.splice(Math.min(Math.max(index, 0), this.lines.length), 0, line);
  }

  /** The file's content now. */
  text(): string {
    if (this.lines.length === 0) return '';
    return this.lines.join('\n') + (this.finalNewline ? '\n' : '');
  }

  /** Whether the content differs from what was read. */
  changed(): boolean {
    return this.text() !== (this.original ?? '');
  }
}

/** The four files of one root, as read under the lock (or without it, for a query). */
export type Databases = Record<DatabaseName, DatabaseFile>;

/**
 * Where `path` (absolute, inside the target) is on this side: resolved inside `root` as a chroot
 * would (`RESOLVE_IN_ROOT`), so that a symbolic link planted in the target (`/etc` → `/`) cannot
 * lead to the host's files.
 */
export function pathInRoot(root: string, path: string): string {
  if (root === '/') return path;
  using confined = ConfinedRoot.open(root, { mode: 'in-root' });
  return confined.hostPath(path);
}

/** The path of a database file under `root` (its directory resolved inside the root). */
export function databasePath(root: string, name: DatabaseName): string {
  return join(pathInRoot(root, '/etc'), name);
}

/** Read the four files under `root`. passwd and group must exist; shadow and gshadow may not. */
export async function readDatabases(root: string): Promise<Databases> {
  const read = async (name: DatabaseName): Promise<DatabaseFile> => {
    const path = databasePath(root, name);
    try {
      const st = await lstat(path);
      if (st.isSymbolicLink())
        throw new Error('it is a symbolic link, which op-dbus does not follow in a target root');
      const text = await readFile(path, 'utf8');
      return new DatabaseFile(name, path, text, st.mode & 0o7777, st.uid, st.gid);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && (name === 'shadow' || name === 'gshadow'))
        return new DatabaseFile(name, path, undefined, defaultModes[name], 0, 0);
      throw new OpdbusError(
        'OPDBUS_ERR_USERS_NO_DATABASE',
        `Cannot read ${path}: ${(err as Error).message}; the target root (--root ${root}) needs /etc/passwd and /etc/group.`,
        { data: { file: path, root }, cause: err },
      );
    }
  };
  const [passwd, shadow, group, gshadow] = await Promise.all(databases.map(read));
  return { passwd: passwd!, shadow: shadow!, group: group!, gshadow: gshadow! };
}

/**
 * Write `file` if its content changed: a temporary file in the same directory with the original
 * mode and owner, fsynced, renamed over the file, and the directory fsynced, so that a reader or
 * a crash sees the old file or the new one, never a mix.
 */
export async function writeDatabase(file: DatabaseFile): Promise<boolean> {
  if (!file.changed()) return false;
  const tmp = join(dirname(file.path), `.${basename(file.path)}.opdbus-${randomBytes(6).toString('hex')}`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.writeFile(file.text());
    await handle.chown(file.uid, file.gid);
    await handle.chmod(file.mode);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, file.path);
    const dir = await open(dirname(file.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return true;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw new OpdbusError('OPDBUS_ERR_USERS_WRITE', `Cannot write ${file.path}: ${(err as Error).message}.`, {
      data: { file: file.path },
      cause: err,
    });
  }
}

/** Write the changed files in a safe order: on creation the files that refer to others last. */
export async function writeDatabases(dbs: Databases, order: readonly DatabaseName[]): Promise<void> {
  for (const name of order) await writeDatabase(dbs[name]);
}

interface NativeLocks {
  tryLock(fd: number, offset: number, length: number, opts: { shared?: boolean }): boolean;
  unlock(fd: number, offset?: number, length?: number): void;
}
let native: NativeLocks | undefined;
function nativeLocks(): NativeLocks {
  native ??= createRequire(import.meta.url)('fs-native-extensions') as NativeLocks;
  return native;
}

/** Whether process `pid` exists (in this PID namespace). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * shadow-utils' per-file lock (commonio's do_lock_file): `FILE.PID` holding the pid, hard-linked
 * to `FILE.lock`. A lock whose pid is gone is stale and removed, as shadow-utils does.
 */
async function tryDotLock(file: string): Promise<boolean> {
  const lockPath = `${file}.lock`;
  const mine = `${file}.${process.pid}`;
  await writeOwned(mine, String(process.pid));
  try {
    await link(mine, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder > 0 && alive(holder)) return false;
    await unlink(lockPath).catch(() => undefined);
    return false;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

async function writeOwned(path: string, text: string): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

/** A held lock on the password files of a root; `release` gives it back. */
export interface PasswordFilesLock {
  release(): Promise<void>;
}

/** Options of {@link lockPasswordFiles}. */
export interface LockOptions {
  /** How long to wait for another holder (default 15 s, as glibc's lckpwdf). */
  waitMs?: number;
  signal?: AbortSignal | undefined;
}

/**
 * Take the lock shadow-utils takes before editing the password files of `root`:
 *
 * 1. lckpwdf(3): an exclusive `fcntl` write lock on the whole of `ROOT/etc/.pwd.lock` (created
 *    0600 if missing). Taken here as an open-file-description lock (`F_OFD_SETLK`), which
 *    conflicts with glibc's classic `F_SETLKW` record lock, so useradd and op-dbus exclude each
 *    other. glibc waits 15 s for it; so does this, by default.
 * 2. commonio's `FILE.lock` for each of the four files that exists (a hard link of `FILE.PID`),
 *    which shadow-utils takes after lckpwdf, and alone when it runs with `--prefix`.
 */
export async function lockPasswordFiles(root: string, options: LockOptions = {}): Promise<PasswordFilesLock> {
  const waitMs = options.waitMs ?? 15_000;
  const deadline = Date.now() + waitMs;
  const lockFile = join(pathInRoot(root, '/etc'), '.pwd.lock');
  const busy = (what: string): OpdbusError =>
    new OpdbusError(
      'OPDBUS_ERR_USERS_LOCKED',
      `${what} is held by another program (useradd, usermod, passwd, vipw …) for more than ${waitMs} ms; wait for it to finish and apply again.`,
      { data: { lock: what, root } },
    );
  const pause = async (attempt: number): Promise<void> => {
    options.signal?.throwIfAborted();
    await delay(Math.min(50, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2));
  };
  let handle: FileHandle;
  try {
    handle = await open(lockFile, constants.O_WRONLY | constants.O_CREAT, 0o600);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_USERS_WRITE',
      `Cannot open ${lockFile}: ${(err as Error).message}; run as root on a writable target.`,
      { data: { file: lockFile }, cause: err },
    );
  }
  const locks = nativeLocks();
  const dotLocks: string[] = [];
  const release = async (): Promise<void> => {
    for (const file of dotLocks.splice(0)) await unlink(`${file}.lock`).catch(() => undefined);
    try {
      locks.unlock(handle.fd, 0, 0);
    } finally {
      await handle.close();
    }
  };
  try {
    for (let attempt = 0; !locks.tryLock(handle.fd, 0, 0, { shared: false }); attempt++) {
      if (Date.now() > deadline) throw busy(lockFile);
      await pause(attempt);
    }
    for (const name of databases) {
      const file = databasePath(root, name);
      try {
        await lstat(file);
      } catch {
        continue;
      }
      for (let attempt = 0; !(await tryDotLock(file)); attempt++) {
        if (Date.now() > deadline) throw busy(`${file}.lock`);
        await pause(attempt);
      }
      dotLocks.push(file);
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { release };
}

/** The settings of ROOT/etc/login.defs that op-dbus uses, with useradd's defaults. */
export interface LoginDefs {
  uidMin: number;
  uidMax: number;
  gidMin: number;
  gidMax: number;
  homeMode: number;
}

/** Read ROOT/etc/login.defs (missing: useradd's defaults). */
export async function readLoginDefs(root: string): Promise<LoginDefs> {
  const text = await readFile(pathInRoot(root, '/etc/login.defs'), 'utf8').catch(() => '');
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_]+)\s+(\S+)/.exec(line);
    if (m !== null) values.set(m[1]!, m[2]!);
  }
  const num = (key: string, fallback: number, radix = 10): number => {
    const v = values.get(key);
    const n = v === undefined ? Number.NaN : Number.parseInt(v, radix);
    return Number.isFinite(n) ? n : fallback;
  };
  const umask = num('UMASK', 0o022, 8);
  return {
    uidMin: num('UID_MIN', 1000),
    uidMax: num('UID_MAX', 60000),
    gidMin: num('GID_MIN', 1000),
    gidMax: num('GID_MAX', 60000),
    homeMode: num('HOME_MODE', 0o777 & ~umask, 8),
  };
}

/** Processes (by pid) whose real or effective uid is `uid`, from /proc. */
export async function processesOf(uid: number, proc = '/proc'): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(join(proc, entry, 'status'), 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    if (m !== null && (Number(m[1]) === uid || Number(m[2]) === uid)) pids.push(Number(entry));
  }
  return pids;
}

/** Whether `path` exists (without following a final symbolic link). */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuse a path under `root` whose components below the root are symbolic links (a home
 * directory created through one could land outside the target).
 */
export async function assertNoSymlinkBelow(root: string, relative: string): Promise<void> {
  let current = root;
  for (const part of relative.split('/').filter((p) => p !== '')) {
    current = join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (st === undefined) return;
    if (st.isSymbolicLink())
      throw new OpdbusError(
        'OPDBUS_ERR_USERS_UNSAFE',
        `${current} is a symbolic link; op-dbus does not create home directories through links (they may lead out of the target root).`,
        { data: { path: current } },
      );
  }
}

/**
 * Create the home directory `home` (a path inside the target) for `uid`:`gid`, with `mode`, and
 * copy ROOT/etc/skel into it (files, directories and symbolic links, owned by the user), as
 * `useradd -m` does. Parents are created root-owned, 0755.
 */
export async function createHome(
  root: string,
  home: string,
  uid: number,
  gid: number,
  mode: number,
): Promise<void> {
  await assertNoSymlinkBelow(root, home);
  const target = join(root, home);
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  await mkdir(target, { mode: 0o700 });
  const copy = async (from: string, to: string): Promise<void> => {
    for (const entry of await readdir(from, { withFileTypes: true })) {
      const src = join(from, entry.name);
      const dst = join(to, entry.name);
      const st = await lstat(src);
      if (st.isDirectory()) {
        await mkdir(dst, { mode: 0o700 });
        await copy(src, dst);
        await chmod(dst, st.mode & 0o7777);
      } else if (st.isSymbolicLink()) {
        await symlink(await readlink(src), dst);
      } else if (st.isFile()) {
        await copyFile(src, dst, constants.COPYFILE_EXCL);
        await chmod(dst, st.mode & 0o7777);
      } else continue;
      await lchown(dst, uid, gid);
    }
  };
  const skel = pathInRoot(root, '/etc/skel');
  if ((await stat(skel).catch(() => undefined))?.isDirectory()) await copy(skel, target);
  await chown(target, uid, gid);
  await chmod(target, mode);
}

/** Remove a home directory op-dbus created (on restore). */
export async function removeHome(root: string, home: string): Promise<void> {
  if (home === '/' || home === '') return;
  // A link on the way: op-dbus never creates a home through one, so none of its own is there.
  if (
    await assertNoSymlinkBelow(root, dirname(home)).then(
      () => false,
      () => true,
    )
  )
    return;
  await rm(join(root, home), { recursive: true, force: true });
}
