import {
  closeSync,
  constants as fsc,
  fstatSync,
  openSync,
  readSync,
  readdirSync,
  writeSync,
  type Dirent,
} from 'node:fs';
import type { NetnsRunner } from '@opdbus/core';
import { isNamespacedKey, keyPath, pathKey, printedValue } from './keys.js';

/** The errno `code` of a failed read, or the value read. */
export type ReadResult = { value: string } | { errno: string; error: Error };

/**
 * /proc/sys as seen from a network namespace (or the caller's).
 *
 * Access is synchronous, in batches: /proc/sys files are kernel memory, never disk, so a read is
 * a few microseconds, and doing a whole batch inside one switch into the namespace (setns(2)
 * twice) is an order of magnitude faster than a thread-pool round trip per file. A batch of all
 * ~600 net.* keys takes a few milliseconds.
 */
export class ProcSys {
  constructor(
    private readonly netns: NetnsRunner | undefined,
    private readonly root = '/proc/sys',
  ) {}

  #inTarget<T>(fn: () => T): T {
    return this.netns === undefined ? fn() : this.netns.run(fn);
  }

  #readOne(key: string, buf: Buffer): string {
    const fd = openSync(keyPath(key, this.root), fsc.O_RDONLY);
    try {
      const chunks: Buffer[] = [];
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
      return printedValue(Buffer.concat(chunks).toString('utf8'));
    } finally {
      closeSync(fd);
    }
  }

  /** The value as sysctl(8) prints it; errors keep their errno `code`. */
  read(key: string): string {
    return this.#inTarget(() => this.#readOne(key, Buffer.allocUnsafe(4096)));
  }

  /** Read many keys in one batch; each result is a value or the error that key gave. */
  readMany(keys: readonly string[]): ReadResult[] {
    return this.#inTarget(() => {
      const buf = Buffer.allocUnsafe(4096);
      return keys.map((key): ReadResult => {
        try {
          return { value: this.#readOne(key, buf) };
        } catch (err) {
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
    this.#inTarget(() => {
      const fd = openSync(keyPath(key, this.root), fsc.O_WRONLY);
      try {
        writeSync(fd, data, 0, data.length, null);
      } finally {
        closeSync(fd);
      }
    });
  }

  /** Whether the key's file exists, and whether it is readable (write-only keys are actions). */
  stat(key: string): { exists: boolean; readable: boolean; directory: boolean } {
    return this.#inTarget(() => {
      try {
        const fd = openSync(keyPath(key, this.root), fsc.O_RDONLY | fsc.O_NONBLOCK);
        try {
          const directory = fstatSync(fd).isDirectory();
          return { exists: true, readable: !directory, directory };
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR')
          return { exists: false, readable: false, directory: false };
        if (code === 'EACCES' || code === 'EPERM') return { exists: true, readable: false, directory: false };
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
