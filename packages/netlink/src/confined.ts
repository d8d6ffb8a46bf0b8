import {
  closeSync,
  constants as fsc,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readlinkSync,
  realpathSync,
} from 'node:fs';
import { mkdir, readdir, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { OpdbusError, quoteInput } from '@opdbus/core';
import { native } from './native.js';

/** openat2(2) `resolve` flags (linux/openat2.h). */
export const resolveFlags = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

/** O_PATH (x86_64, arm64 and most architectures: 010000000). */
const O_PATH = 0o10000000;
const AT_FDCWD = -100;

/**
 * openat2(2): open `path` relative to `dirfd` (-100: the working directory) with `resolve`
 * restrictions ({@link resolveFlags}). Returns the descriptor (O_CLOEXEC); throws an Error with
 * the errno `code` (`EXDEV` when the path leads out under BENEATH, `ELOOP` for a symbolic link
 * under NO_SYMLINKS, `ENOSYS` before Linux 5.6).
 */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  if (path.includes('\0'))
    throw Object.assign(new Error('openat2: a path cannot contain NUL'), { code: 'EINVAL' });
  return native().openat2(dirfd, path, flags, mode, resolve);
}

let openat2Works: boolean | undefined;

/** Whether this kernel (and its seccomp filter) allows openat2(2). */
export function hasOpenat2(): boolean {
  if (openat2Works === undefined) {
    try {
      closeSync(openat2(AT_FDCWD, '/', O_PATH, 0, 0));
      openat2Works = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOSYS' && code !== 'EPERM') throw err;
      openat2Works = false;
    }
  }
  return openat2Works;
}

/** Options of {@link ConfinedRoot.open}. */
export interface ConfinedRootOptions {
  /**
   * `beneath` (default): a path that leads out of the root (`..` above it, an absolute path or
   * symbolic link) is refused. `in-root`: the root is treated as `/`, as chroot(2) would, so that
   * absolute symbolic links and `..` inside a container's tree stay in that tree.
   */
  mode?: 'beneath' | 'in-root';
  /** Refuse every symbolic link on the way (default false). */
  noSymlinks?: boolean;
  /** What to call the root in messages (default: its path). */
  label?: string;
  /** Use the portable fallback even where openat2 works (for tests of the fallback). */
  forceFallback?: boolean;
}

/** The kind of a directory entry. */
export type EntryKind = 'file' | 'directory' | 'symlink' | 'other';

/**
 * A directory that input-derived paths must stay inside: a target's filesystem root (`--root`),
 * /proc/sys of a network namespace, a sandbox's tree. Every path given to it is resolved by the
 * kernel with openat2(2) beneath (or, `in-root`, inside) the directory, so neither `..`, an
 * absolute path nor a symbolic link planted in the tree can reach a file outside it; a path that
 * would is refused with `OPDBUS_ERR_PATH_UNSAFE`. Where openat2 is missing (Linux < 5.6, some
 * seccomp filters) paths are resolved component by component in the same way and opened with
 * O_NOFOLLOW, which is equally strict against planted links but not against a concurrent rename.
 *
 * Operations on a path's last component (create, rename, remove) act through a descriptor of its
 * resolved parent directory, never by re-resolving the path.
 *
 * @example
 * ```ts
 * using root = ConfinedRoot.open('/var/lib/machines/web', { mode: 'in-root' });
 * const text = await root.readFile('/etc/systemd/system/nginx.service'); // null when absent
 * ```
 */
export class ConfinedRoot implements Disposable {
  /** The root as given. */
  readonly root: string;
  readonly #label: string;
  readonly #resolve: number;
  readonly #inRoot: boolean;
  readonly #noSymlinks: boolean;
  readonly #fallback: boolean;
  readonly #real: string;
  #fd: number | undefined;

  private constructor(root: string, fd: number, real: string, options: ConfinedRootOptions) {
    this.root = root;
    this.#fd = fd;
    this.#real = real;
    this.#label = options.label ?? root;
    this.#inRoot = options.mode === 'in-root';
    this.#noSymlinks = options.noSymlinks === true;
    this.#resolve =
      (this.#inRoot ? resolveFlags.IN_ROOT : resolveFlags.BENEATH) |
      resolveFlags.NO_MAGICLINKS |
      (this.#noSymlinks ? resolveFlags.NO_SYMLINKS : 0);
    this.#fallback = options.forceFallback === true || !hasOpenat2();
  }

  /** Open the root directory (throws the errno error when it cannot be opened). */
  static open(root: string, options: ConfinedRootOptions = {}): ConfinedRoot {
    const fd = openSync(root, O_PATH | fsc.O_DIRECTORY);
    try {
      return new ConfinedRoot(root, fd, realpathSync(`/proc/self/fd/${fd}`), options);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  #rootFd(): number {
    if (this.#fd === undefined)
      throw new OpdbusError('OPDBUS_ERR_INTERNAL', `The confined root ${this.root} was closed.`);
    return this.#fd;
  }

  #unsafe(path: string, why: string, cause?: unknown): OpdbusError {
    return new OpdbusError('OPDBUS_ERR_PATH_UNSAFE', `${quoteInput(path)} ${why} ${this.#label}; refused.`, {
      data: { root: this.root, path: path.slice(0, 4096) },
      ...(cause === undefined ? {} : { cause }),
    });
  }

  #check(path: string): string {
    if (path.includes('\0')) throw this.#unsafe(path, 'contains a NUL byte, so it cannot name a file in');
    if (path.length > 4095) throw this.#unsafe(path, 'is longer than PATH_MAX for');
    if (!this.#inRoot && path.startsWith('/')) throw this.#unsafe(path, 'is absolute, so it would leave');
    const relative = path.replace(/^\/+/, '');
    return relative === '' ? '.' : relative;
  }

  /**
   * Open `path` (relative to the root; absolute paths count from the root in `in-root` mode) with
   * `flags` (and `mode` for O_CREAT). Returns a descriptor the caller closes. Escapes throw
   * `OPDBUS_ERR_PATH_UNSAFE`; other failures the errno error (ENOENT …).
   */
  openSync(path: string, flags: number, mode = 0o644): number {
    const relative = this.#check(path);
    if (this.#fallback) return openSync(this.#chase(relative, path), flags | fsc.O_NOFOLLOW, mode);
    for (let attempt = 0; ; attempt++) {
      try {
        return openat2(this.#rootFd(), relative, flags, mode, this.#resolve);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // IN_ROOT/BENEATH resolution with `..` retries on EAGAIN after a concurrent rename.
        if (code === 'EAGAIN' && attempt < 8) continue;
        if (code === 'EXDEV') throw this.#unsafe(path, 'leads out of', err);
        if (code === 'ELOOP' && this.#noSymlinks)
          throw this.#unsafe(path, 'goes through a symbolic link in', err);
        if (code === 'ELOOP')
          throw this.#unsafe(path, 'goes through too many symbolic links (or one it may not follow) in', err);
        throw err;
      }
    }
  }

  /** Resolve like openat2 would, for kernels without it: each component, links inside the root. */
  #chase(relative: string, original: string): string {
    const queue = relative.split('/').filter((p) => p !== '' && p !== '.');
    const current: string[] = [];
    let links = 0;
    while (queue.length > 0) {
      const part = queue.shift()!;
      if (part === '..') {
        if (current.length === 0) {
          if (!this.#inRoot) throw this.#unsafe(original, 'leads out of');
          continue;
        }
        current.pop();
        continue;
      }
      const candidate = `${this.#real}/${[...current, part].join('/')}`;
      let isLink = false;
      try {
        isLink = lstatSync(candidate).isSymbolicLink();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || queue.length > 0) throw err;
      }
      if (isLink) {
        if (this.#noSymlinks) throw this.#unsafe(original, 'goes through a symbolic link in');
        if (++links > 40) throw this.#unsafe(original, 'goes through too many symbolic links in');
        const target = readlinkSync(candidate);
        if (target.startsWith('/')) {
          if (!this.#inRoot) throw this.#unsafe(original, 'leads out of');
          current.length = 0;
        }
        queue.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
        continue;
      }
      current.push(part);
    }
    return current.length === 0 ? this.#real : `${this.#real}/${current.join('/')}`;
  }

  /** Split a path into its parent (opened, confined) and a plain last component. */
  #parent(path: string): { dirFd: number; name: string; dirPath: string } {
    const relative = this.#check(path);
    const slash = relative.lastIndexOf('/');
    const dir = slash < 0 ? '.' : relative.slice(0, slash) || '.';
    const name = slash < 0 ? relative : relative.slice(slash + 1);
    if (name === '' || name === '.' || name === '..')
      throw this.#unsafe(path, 'does not end in a file name, so it cannot be created or removed in');
    const dirFd = this.openSync(dir, O_PATH | fsc.O_DIRECTORY);
    return { dirFd, name, dirPath: `/proc/self/fd/${dirFd}` };
  }

  /** Read a file whole, at most `maxBytes` (default 16 MiB; more is an error). */
  readFileSync(path: string, maxBytes = 16 * 1024 * 1024): Buffer {
    const fd = this.openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    try {
      if (!fstatSync(fd).isFile())
        throw Object.assign(new Error(`${path}: not a regular file`), { code: 'EISDIR' });
      const chunks: Buffer[] = [];
      let total = 0;
      const buf = Buffer.allocUnsafe(64 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        total += n;
        if (total > maxBytes) {
          throw new OpdbusError(
            'OPDBUS_ERR_LIMIT_EXCEEDED',
            `${path} in ${this.#label} is larger than ${maxBytes} bytes; refused.`,
            { data: { root: this.root, path, limit: 'fileBytes', max: maxBytes } },
          );
        }
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
      return Buffer.concat(chunks);
    } finally {
      closeSync(fd);
    }
  }

  /** A file's content as UTF-8, or null when it (or a directory on its way) does not exist. */
  readFile(path: string, maxBytes?: number): Promise<string | null> {
    return Promise.resolve().then(() => {
      try {
        return this.readFileSync(path, maxBytes).toString('utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw err;
      }
    });
  }

  /** The entries of a directory with their kinds; null when it does not exist. */
  async readDir(path: string): Promise<Record<string, EntryKind> | null> {
    let fd: number;
    try {
      fd = this.openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw err;
    }
    try {
      const out: Record<string, EntryKind> = {};
      for (const entry of await readdir(`/proc/self/fd/${fd}`, { withFileTypes: true })) {
        out[entry.name] = entry.isFile()
          ? 'file'
          : entry.isDirectory()
            ? 'directory'
            : entry.isSymbolicLink()
              ? 'symlink'
              : 'other';
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }

  /** Create a directory and its parents (each one resolved inside the root). */
  async mkdirp(path: string, mode = 0o755): Promise<void> {
    const relative = this.#check(path);
    const parts = relative.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      try {
        closeSync(this.openSync(sub, O_PATH | fsc.O_DIRECTORY));
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const { dirFd, name, dirPath } = this.#parent(sub);
      try {
        await mkdir(`${dirPath}/${name}`, { mode }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      } finally {
        closeSync(dirFd);
      }
    }
  }

  /**
   * Write a file atomically: a new temporary file (O_EXCL, never through a link) in the resolved
   * parent directory, renamed over the target. Creates missing parent directories.
   */
  async writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
    const relative = this.#check(path);
    const slash = relative.lastIndexOf('/');
    if (slash > 0) await this.mkdirp(relative.slice(0, slash));
    const { dirFd, name, dirPath } = this.#parent(path);
    try {
      const tmp = `.${name}.opdbus-tmp-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
      await writeFile(`${dirPath}/${tmp}`, data, { mode, flag: 'wx' });
      try {
        await rename(`${dirPath}/${tmp}`, `${dirPath}/${name}`);
      } catch (err) {
        await unlink(`${dirPath}/${tmp}`).catch(() => undefined);
        throw err;
      }
    } finally {
      closeSync(dirFd);
    }
  }

  /** Remove a file (or a symbolic link itself); false when there was none. */
  async removeFile(path: string): Promise<boolean> {
    let parent;
    try {
      parent = this.#parent(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw err;
    }
    try {
      await unlink(`${parent.dirPath}/${parent.name}`);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    } finally {
      closeSync(parent.dirFd);
    }
  }

  /** Remove an empty directory; does nothing when it is absent or not empty. */
  async removeEmptyDir(path: string): Promise<void> {
    let parent;
    try {
      parent = this.#parent(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    try {
      await rmdir(`${parent.dirPath}/${parent.name}`).catch((err: NodeJS.ErrnoException) => {
        if (!['ENOENT', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR'].includes(err.code ?? '')) throw err;
      });
    } finally {
      closeSync(parent.dirFd);
    }
  }

  /**
   * Where `path` resolves to on this side (for messages and tests): the host path of the file,
   * or, when it does not exist yet, of its nearest existing ancestor joined with the missing
   * names (a missing name is no link, so nothing below it can lead out).
   */
  hostPath(path: string): string {
    return this.#hostPath(path, 0);
  }

  #hostPath(path: string, links: number): string {
    try {
      const fd = this.openSync(path, O_PATH);
      try {
        return realpathSync(`/proc/self/fd/${fd}`);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const relative = this.#check(path);
      const slash = relative.lastIndexOf('/');
      const name = slash < 0 ? relative : relative.slice(slash + 1);
      if (name === '' || name === '.' || name === '..')
        throw this.#unsafe(path, 'does not end in a file name in');
      const dir = slash < 0 ? '.' : relative.slice(0, slash) || '.';
      const below = `${this.#hostPath(dir, links)}/${name}`;
      let target: string | undefined;
      try {
        target = lstatSync(below).isSymbolicLink() ? readlinkSync(below) : undefined;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (target === undefined) return below;
      // A dangling link: where it would lead, resolved by the same rules.
      if (this.#noSymlinks) throw this.#unsafe(path, 'goes through a symbolic link in');
      if (links >= 40) throw this.#unsafe(path, 'goes through too many symbolic links in');
      if (target.startsWith('/') && !this.#inRoot) throw this.#unsafe(path, 'leads out of');
      return this.#hostPath(target.startsWith('/') ? target : `${dir}/${target}`, links + 1);
    }
  }

  /** Close the root's descriptor. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
