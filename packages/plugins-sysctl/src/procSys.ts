import {
  closeSync,
  constants as fsc,
  fstatSync,
  readSync,
  readdirSync,
  writeSync,
  type Dirent,
} from 'node:fs';
import { OpdbusError, type NetnsRunner } from '@opdbus/core';
import { ConfinedRoot } from '@opdbus/netlink';
import { isNamespacedKey, keyRelativePath, pathKey, printedValue, sysctlKeyProblem } from './keys.js';

/**
 * The errno `code` of a failed read, or the value read and whether the key can be set (its mode
 * has the owner's write bit: /proc/sys checks mode bits even for root, so a 0444 key is read-only
 * for everyone).
 */
export type ReadResult = { value: string; writable: boolean } | { errno: string; error: Error };

const writableMode = (mode: number): boolean => (mode & 0o200) !== 0;

/**
 * /proc/sys as seen from a network namespace (or the caller's).
 *
 * Access is synchronous, in batches: /proc/sys files are kernel memory, never disk, so a read is
 * a few microseconds, and doing a whole batch inside one switch into the namespace (setns(2)
 * twice) is an order of magnitude faster than a thread-pool round trip per file. A batch of all
 * ~600 net.* keys takes a few milliseconds.
 *
 * Every key is checked ({@link sysctlKeyProblem}) and opened with openat2(2) beneath the root
 * with no symbolic links (see `ConfinedRoot` of @opdbus/netlink): a key can name a file of
 * /proc/sys of the target namespace and nothing else, whatever the caller's validation did.
 */
export class ProcSys {
  constructor(
    private readonly netns: NetnsRunner | undefined,
    private readonly root = '/proc/sys',
  ) {}

  #inTarget<T>(fn: (root: ConfinedRoot) => T): T {
    const run = (): T => {
      const root = ConfinedRoot.open(this.root, { noSymlinks: true, label: this.#label() });
      try {
        return fn(root);
      } finally {
        root.close();
      }
    };
    return this.netns === undefined ? run() : this.netns.run(run);
  }

  #label(): string {
    return this.netns === undefined ? this.root : `${this.root} of network namespace "${this.netns.name}"`;
  }

  /** The confined relative path of a key; refuses one that is not a plain sysctl key. */
  #relative(key: string): string {
    const problem = sysctlKeyProblem(key);
    if (problem !== undefined) {
      throw new OpdbusError('OPDBUS_ERR_PATH_UNSAFE', `Not a sysctl key (${problem}); refused.`, {
        data: { key: key.slice(0, 256) },
      });
    }
    return keyRelativePath(key);
  }

  #readOne(root: ConfinedRoot, key: string, buf: Buffer): string {
    return this.#readOneWithMode(root, key, buf).value;
  }

  #readOneWithMode(root: ConfinedRoot, key: string, buf: Buffer): { value: string; writable: boolean } {
    const fd = root.openSync(this.#relative(key), fsc.O_RDONLY);
    try {
      const writable = writableMode(fstatSync(fd).mode);
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        total += n;
        // /proc/sys values fit a page or a few; stop a file that streams without end.
        if (total > 1024 * 1024)
          throw Object.assign(new Error(`${key}: value larger than 1 MiB`), { code: 'EFBIG' });
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
      return { value: printedValue(Buffer.concat(chunks).toString('utf8')), writable };
    } finally {
      closeSync(fd);
    }
  }

  /** The value as sysctl(8) prints it; errors keep their errno `code`. */
  read(key: string): string {
    return this.#inTarget((root) => this.#readOne(root, key, Buffer.allocUnsafe(4096)));
  }

  /** Read many keys in one batch; each result is a value or the error that key gave. */
  readMany(keys: readonly string[]): ReadResult[] {
    return this.#inTarget((root) => {
      const buf = Buffer.allocUnsafe(4096);
      return keys.map((key): ReadResult => {
        try {
          return this.#readOneWithMode(root, key, buf);
        } catch (err) {
          if (err instanceof OpdbusError) throw err;
          return { errno: (err as NodeJS.ErrnoException).code ?? 'EIO', error: err as Error };
        }
      });
    });
  }

  /**
   * Write a value in one write(2), as sysctl(8) does. An empty value is written as a newline:
   * the kernel ignores a zero-length write, but clears a list (ip_local_reserved_ports) on "\n".
   */
  write(key: string, value: string): void {
    const data = Buffer.from(value === '' ? '\n' : value, 'utf8');
    this.#inTarget((root) => {
      const fd = root.openSync(this.#relative(key), fsc.O_WRONLY);
      try {
        writeSync(fd, data, 0, data.length, null);
      } finally {
        closeSync(fd);
      }
    });
  }

  /**
   * Whether the key's file exists, whether it is readable (write-only keys are actions) and
   * whether it is writable (read-only keys are reports of the kernel, not settings).
   */
  stat(key: string): { exists: boolean; readable: boolean; writable: boolean; directory: boolean } {
    return this.#inTarget((root) => {
      try {
        const fd = root.openSync(this.#relative(key), fsc.O_RDONLY | fsc.O_NONBLOCK);
        try {
          const stat = fstatSync(fd);
          const directory = stat.isDirectory();
          return {
            exists: true,
            readable: !directory,
            writable: !directory && writableMode(stat.mode),
            directory,
          };
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR')
          return { exists: false, readable: false, writable: false, directory: false };
        // Not readable even by its owner: a write-only action key (e.g. vm.drop_caches is 0200).
        if (code === 'EACCES' || code === 'EPERM')
          return { exists: true, readable: false, writable: true, directory: false };
        throw err;
      }
    });
  }

  /**
   * Every key, sorted. With `onlyNamespaced`, only `net.*` (the keys a network namespace has of
   * its own).
   */
  keys(onlyNamespaced: boolean): string[] {
    return this.#inTarget(() => {
      const out: string[] = [];
      const walk = (relative: string): void => {
        let entries: Dirent[];
        try {
          entries = readdirSync(relative === '' ? this.root : `${this.root}/${relative}`, {
            withFileTypes: true,
          });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EACCES' || code === 'EPERM' || code === 'ENOENT') return;
          throw err;
        }
        for (const entry of entries) {
          const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
          if (relative === '' && onlyNamespaced && entry.name !== 'net') continue;
          if (entry.isDirectory()) walk(rel);
          else if (entry.isFile()) out.push(rel);
        }
      };
      walk('');
      return out;
    })
      .map(pathKey)
      .filter((key) => !onlyNamespaced || isNamespacedKey(key))
      .sort();
  }
}
