import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
  statfsSync,
  unlinkSync,
  constants as fsc,
} from 'node:fs';
import { OpdbusError, quoteInput, type NetnsRunner } from '@opdbus/core';
import { linux, native } from './native.js';

/** Where iproute2 (and op-dbus) keep named network namespaces. */
export const NETNS_RUN_DIR = '/run/netns';

const namePattern = /^[A-Za-z0-9_.-]{1,64}$/;
/** statfs f_type of namespace files (linux/magic.h NSFS_MAGIC). */
const NSFS_MAGIC = 0x6e736673;

/**
 * Resolve a namespace spec to its file: a name under /run/netns (`blue`), an absolute path
 * (`/run/netns/blue`, `/proc/1234/ns/net`), or `pid:1234`.
 */
export function netnsPath(spec: string): string {
  if (spec.startsWith('/')) return spec;
  const pid = /^pid:(\d+)$/.exec(spec);
  if (pid) return `/proc/${pid[1]}/ns/net`;
  if (!namePattern.test(spec) || spec === '.' || spec === '..') {
    throw new OpdbusError(
      'OPDBUS_ERR_NETNS',
      `${quoteInput(spec)} is not a network namespace name (letters, digits, "_", "." and "-"), a path or pid:N.`,
      { data: { netns: spec.slice(0, 256) } },
    );
  }
  return `${NETNS_RUN_DIR}/${spec}`;
}

/**
 * A network namespace this process can act in without having entered it.
 *
 * `run(fn)` moves the calling thread into the namespace with setns(2), runs `fn` synchronously,
 * and moves back. Sockets (netlink, inet) and /proc/sys/net files opened inside `fn` stay bound
 * to the namespace for their whole life, so asynchronous I/O on them afterwards is fine; code
 * inside `fn` must not await. This is how pyroute2's NetNS and iproute2's `ip -n` work, without
 * forking a helper for every call.
 */
export class Netns implements NetnsRunner {
  readonly name: string;
  readonly path: string;
  #fd: number | undefined;

  private constructor(name: string, path: string, fd: number) {
    this.name = name;
    this.path = path;
    this.#fd = fd;
  }

  /** Open a namespace by name, path or `pid:N`; throws `OPDBUS_ERR_NETNS` when it does not exist. */
  static open(spec: string): Netns {
    const path = netnsPath(spec);
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO named by mistake (or on purpose) must not hang the open.
      fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new OpdbusError(
        'OPDBUS_ERR_NETNS',
        code === 'ENOENT'
          ? `Network namespace ${quoteInput(spec)} does not exist (${quoteInput(path)}); create it with \`ip netns add\` or name an existing one.`
          : `Cannot open network namespace ${quoteInput(spec)} (${quoteInput(path)}): ${code}; op-dbus needs root (CAP_SYS_ADMIN) to enter namespaces.`,
        { data: { netns: spec.slice(0, 256), path: path.slice(0, 256), errno: code }, cause: err },
      );
    }
    // Whatever the spec named, it must be a namespace file (nsfs), never a regular file, a
    // device or a directory: a path from the command line or an API is checked before use.
    let type: number | bigint;
    try {
      type = statfsSync(`/proc/self/fd/${fd}`).type;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (Number(type) !== NSFS_MAGIC) {
      closeSync(fd);
      throw new OpdbusError(
        'OPDBUS_ERR_NETNS',
        `${quoteInput(spec)} (${quoteInput(path)}) is not a network namespace file; give a name under ${NETNS_RUN_DIR}, a /proc/PID/ns/net path or pid:N.`,
        { data: { netns: spec.slice(0, 256), path: path.slice(0, 256) } },
      );
    }
    return new Netns(spec, path, fd);
  }

  /** Run `fn` inside the namespace (synchronously) and return its result. */
  run<T>(fn: () => T): T {
    if (this.#fd === undefined)
      throw new OpdbusError('OPDBUS_ERR_NETNS', `Network namespace "${this.name}" was closed.`);
    const sys = native();
    const home = openSync('/proc/thread-self/ns/net', fsc.O_RDONLY);
    try {
      try {
        sys.setns(this.#fd, linux.CLONE_NEWNET);
      } catch (err) {
        throw new OpdbusError(
          'OPDBUS_ERR_NETNS',
          `Cannot enter network namespace "${this.name}": ${(err as Error).message}; op-dbus needs root (CAP_SYS_ADMIN).`,
          {
            data: { netns: this.name, path: this.path },
            cause: err,
          },
        );
      }
      let result: T;
      try {
        result = fn();
      } finally {
        // Returning home cannot fail for a namespace we were in a moment ago; if it does, the
        // thread would act in the wrong namespace from now on, so stop the process.
        try {
          sys.setns(home, linux.CLONE_NEWNET);
        } catch (err) {
          process.stderr.write(
            `@opdbus/netlink: FATAL: cannot return to the original network namespace: ${(err as Error).message}\n`,
          );
          process.abort();
        }
      }
      if (result instanceof Promise) {
        throw new TypeError(
          'Netns.run() takes a synchronous function: open sockets or files inside it, then await outside.',
        );
      }
      return result;
    } finally {
      closeSync(home);
    }
  }

  /** Release the namespace file descriptor. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Open a namespace (`Netns.open`), typed as core's runner: pass it as the engine's `openNetns`. */
export function openNetns(spec: string): Netns {
  return Netns.open(spec);
}

/** Names of the namespaces under /run/netns. */
export function listNamedNetns(): string[] {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Make /run/netns a shared mount point so namespaces mounted there show in other mount namespaces (as iproute2). */
function ensureRunDir(): void {
  mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  const sys = native();
  try {
    sys.mount('none', NETNS_RUN_DIR, 'none', linux.MS_SHARED | linux.MS_REC, null);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    // Not a mount point yet: bind it onto itself, then mark it shared.
    sys.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', linux.MS_BIND | linux.MS_REC, null);
    sys.mount('none', NETNS_RUN_DIR, 'none', linux.MS_SHARED | linux.MS_REC, null);
  }
}

/** Options of {@link createNamedNetns}. */
export interface CreateNetnsOptions {
  /** Bring the loopback interface up (default true). */
  loopbackUp?: boolean;
}

/**
 * Create a named network namespace, as `ip netns add NAME` does: unshare(CLONE_NEWNET) on this
 * thread, bind-mount the new namespace onto /run/netns/NAME so it outlives the thread's stay,
 * and return. Loopback is brought up unless asked otherwise. Throws `OPDBUS_ERR_NETNS` when the
 * name is taken.
 */
export function createNamedNetns(name: string, options: CreateNetnsOptions = {}): Netns {
  if (name.startsWith('/') || name.startsWith('pid:')) {
    throw new OpdbusError(
      'OPDBUS_ERR_NETNS',
      `createNamedNetns takes a name (created under ${NETNS_RUN_DIR}), not a path ("${name}").`,
      { data: { netns: name } },
    );
  }
  // netnsPath validates the name: letters, digits, "_", "." and "-", never "." or "..".
  const path = netnsPath(name);
  const sys = native();
  ensureRunDir();
  try {
    closeSync(openSync(path, fsc.O_RDONLY | fsc.O_CREAT | fsc.O_EXCL, 0o000));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new OpdbusError('OPDBUS_ERR_NETNS', `Network namespace "${name}" already exists (${path}).`, {
        data: { netns: name, path },
      });
    }
    throw err;
  }
  const home = openSync('/proc/thread-self/ns/net', fsc.O_RDONLY);
  try {
    sys.unshare(linux.CLONE_NEWNET);
    try {
      sys.mount('/proc/thread-self/ns/net', path, 'none', linux.MS_BIND, null);
      if (options.loopbackUp !== false) sys.setInterfaceFlags('lo', linux.IFF_UP, 0);
    } finally {
      sys.setns(home, linux.CLONE_NEWNET);
    }
  } catch (err) {
    try {
      sys.umount2(path, linux.MNT_DETACH);
    } catch {
      // Not mounted: the failure happened before the bind mount.
    }
    unlinkSync(path);
    throw new OpdbusError(
      'OPDBUS_ERR_NETNS',
      `Cannot create network namespace "${name}": ${(err as Error).message}; op-dbus needs root.`,
      {
        data: { netns: name },
        cause: err,
      },
    );
  } finally {
    closeSync(home);
  }
  return Netns.open(name);
}

/**
 * Delete a named network namespace, as `ip netns delete NAME`: detach the bind mount and remove
 * the file. The namespace itself goes away when nothing else holds it (processes, open fds).
 */
export function deleteNamedNetns(name: string): void {
  if (name.startsWith('/') || name.startsWith('pid:')) {
    throw new OpdbusError(
      'OPDBUS_ERR_NETNS',
      `deleteNamedNetns takes a name (under ${NETNS_RUN_DIR}), not a path ("${name}").`,
      { data: { netns: name } },
    );
  }
  const path = netnsPath(name);
  try {
    statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    native().umount2(path, linux.MNT_DETACH);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  }
  unlinkSync(path);
}
