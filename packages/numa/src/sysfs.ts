/**
 * Reading a sysfs/procfs tree under a root directory, fast and without holding the event loop.
 *
 * sysfs and procfs attributes are generated in memory by the kernel: reading one never waits on a
 * device and costs a few microseconds of CPU. Going through libuv's thread pool for each of them
 * costs ten times more than the read itself (one pool round trip for each of open, read and
 * close), so a topology of thousands of attributes would take hundreds of milliseconds. The
 * reader therefore reads attributes synchronously into one reused buffer, in slices: callers
 * `await pace()` between units of work, which yields to the event loop once the current slice has
 * run for `sliceMs`. Timers, sockets and other work keep running while a topology is read.
 */
import { closeSync, constants, existsSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parseCpuList, parseCpuMask } from './cpuList.js';

const absent = new Set(['ENOENT', 'ENOTDIR']);

/** A read-only view of the files under a root, as the kernel lays out /sys and /proc. */
export class SysfsTree {
  /** The root: `/` for this machine, or a directory that holds `sys/` and `proc/`. */
  readonly root: string;
  /** Problems other than "does not exist" (permission, I/O errors), for the topology's warnings. */
  readonly problems: string[] = [];
  /** Files and directories read so far. */
  reads = 0;
  /** Names of attributes found missing, for readers that skip them afterwards. */
  readonly missing = new Set<string>();
  readonly #prefix: string;
  readonly #sliceMs: number;
  #buffer = Buffer.allocUnsafe(64 * 1024);
  #sliceStart = performance.now();

  constructor(root: string, sliceMs = 2) {
    this.root = root;
    this.#prefix = root.endsWith('/') ? root : `${root}/`;
    this.#sliceMs = sliceMs;
  }

  /** The absolute path of `rel` (a path relative to the root, e.g. `sys/devices/system/cpu`). */
  path(rel: string): string {
    return this.#prefix + rel;
  }

  #failed(rel: string, err: unknown): undefined {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !absent.has(code))
      this.problems.push(`${this.path(rel)}: ${(err as Error).message}`);
    return undefined;
  }

  /**
   * The content of a file, or undefined when it does not exist or cannot be read. A read that
   * returns less than was asked for is taken as the end of the file (sysfs attributes and procfs
   * seq_files return everything they have in one read), which saves a system call per file.
   */
  read(rel: string): string | undefined {
    this.reads++;
    let fd: number;
    try {
      fd = openSync(this.#prefix + rel, constants.O_RDONLY);
    } catch (err) {
      return this.#failed(rel, err);
    }
    try {
      let length = 0;
      for (;;) {
        if (length === this.#buffer.length) {
          const bigger = Buffer.allocUnsafe(this.#buffer.length * 2);
          this.#buffer.copy(bigger);
          this.#buffer = bigger;
        }
        const wanted = this.#buffer.length - length;
        const n = readSync(fd, this.#buffer, length, wanted, null);
        length += n;
        if (n < wanted) break;
      }
      // Older kernels end some values with "\n\0" (a C string written whole): as hwloc reads them
      // (as C strings), nothing from the first NUL on is part of the value.
      const buffer = this.#buffer;
      let end = 0;
      while (end < length && buffer[end] !== 0) end++;
      return buffer.toString('latin1', 0, end);
    } catch (err) {
      return this.#failed(rel, err);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The first `bytes` of a file (one read), or undefined: for the head of a long generated file
   * such as /proc/cpuinfo, of which the kernel then renders only the first entries.
   */
  head(rel: string, bytes: number): string | undefined {
    this.reads++;
    let fd: number;
    try {
      fd = openSync(this.#prefix + rel, constants.O_RDONLY);
    } catch (err) {
      return this.#failed(rel, err);
    }
    try {
      const buffer = Buffer.allocUnsafe(bytes);
      const n = readSync(fd, buffer, 0, bytes, null);
      let end = 0;
      while (end < n && buffer[end] !== 0) end++;
      return buffer.toString('latin1', 0, end);
    } catch (err) {
      return this.#failed(rel, err);
    } finally {
      closeSync(fd);
    }
  }

  /** A file's content trimmed, or undefined. */
  text(rel: string): string | undefined {
    return this.read(rel)?.trim();
  }

  /** A file holding one integer, or undefined when it is absent or not an integer. */
  int(rel: string): number | undefined {
    const value = this.text(rel);
    if (value === undefined || !/^-?\d+$/.test(value)) return undefined;
    return Number(value);
  }

  /**
   * A file holding a CPU or node set in the mask format (`cpumap`, `*_cpus`, `shared_cpu_map`),
   * else its list-format twin when one is named, or undefined when neither exists.
   */
  mask(rel: string, listTwin?: string): number[] | undefined {
    const text = this.read(rel);
    if (text !== undefined) return parseCpuMask(text, this.path(rel));
    if (listTwin === undefined) return undefined;
    const list = this.read(listTwin);
    return list === undefined ? undefined : parseCpuList(list, this.path(listTwin));
  }

  /** A file holding a set in the list format (`online`, `cpulist`), or undefined. */
  list(rel: string): number[] | undefined {
    const text = this.read(rel);
    return text === undefined ? undefined : parseCpuList(text, this.path(rel));
  }

  /**
   * Whether a path exists. Cheaper than a read that fails (a failed open costs an exception), so
   * it guards reads of what is often absent.
   */
  exists(rel: string): boolean {
    this.reads++;
    return existsSync(this.#prefix + rel);
  }

  /** The names in a directory, sorted, or undefined when it does not exist. */
  dir(rel: string): string[] | undefined {
    this.reads++;
    try {
      return readdirSync(this.#prefix + rel).sort();
    } catch (err) {
      return this.#failed(rel, err);
    }
  }

  /**
   * The names in a directory that is often absent (no exception is made when it is), or undefined.
   */
  optionalDir(rel: string): string[] | undefined {
    return this.exists(rel) ? this.dir(rel) : undefined;
  }

  /** The content of a file that is often absent (no exception is made when it is), or undefined. */
  optionalRead(rel: string): string | undefined {
    return this.exists(rel) ? this.read(rel) : undefined;
  }

  /** The target of a symbolic link (as written, usually relative), or undefined. */
  link(rel: string): string | undefined {
    this.reads++;
    try {
      return readlinkSync(this.#prefix + rel);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINVAL') return undefined; // not a link
      return this.#failed(rel, err);
    }
  }

  /**
   * Yield to the event loop when the current slice of synchronous reads has run long enough:
   * a promise to await then, else undefined (no promise made per unit of work).
   */
  pace(): Promise<void> | undefined {
    if (performance.now() - this.#sliceStart < this.#sliceMs) return undefined;
    return nextTurn().then(() => {
      this.#sliceStart = performance.now();
    });
  }
}
