import { fileURLToPath } from 'node:url';

/** The native system-call wrappers (see native/syscalls.c). */
export interface NativeSyscalls {
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
  ): void;
  umount2(target: string, flags: number): void;
  setInterfaceFlags(name: string, set: number, clear: number): void;
  gettid(): number;
  /** socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol) + bind: `[fd, portId]`. */
  nlSocket(protocol: number): [number, number];
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  /** One sendto(2) to the kernel of `buffer[0, length)`; returns the bytes sent. */
  nlSend(fd: number, buffer: Buffer, length: number): number;
  /**
   * Read queued datagrams into `buffer[offset..]` (4-byte aligned) until none is queued or the
   * buffer is full; returns the end offset. `status[0]`: errno that stopped it (0: nothing more
   * queued); `status[1]`: size of a datagram that did not fit.
   */
  nlRecv(fd: number, buffer: Buffer, offset: number, status: Int32Array): number;
  /** Watch `fd` for readability on the event loop; `callback(errno)` runs on each readiness. */
  pollStart(fd: number, callback: (errno: number) => void): PollHandle;
  pollStop(handle: PollHandle): void;
  pollRef(handle: PollHandle, ref: boolean): void;
  /** Create a persistent tun/tap device in the calling thread's namespace. */
  tunCreate(name: string, flags: number, owner: number, group: number): void;
  /** Clear the persist flag of a tun/tap device, which removes it. */
  tunDelete(name: string, flags: number): void;
  /**
   * Read the replies of the dump with sequence number `seq` into `buffer[offset..]` in a worker
   * thread, until its NLMSG_DONE (or an error) or until less than 64 KiB is left:
   * `[end, done, errno, needed]`.
   */
  nlDumpAsync(
    fd: number,
    buffer: Buffer,
    offset: number,
    seq: number,
  ): Promise<[number, boolean, number, number]>;
  /**
   * What {@link NativeSyscalls.nlDumpAsync} does, on the calling thread and without waiting: read
   * the queued replies (the kernel queues a dump's first part while it handles the request and
   * builds the next one inside each read), at most `maxReads` datagrams: `[end, done, errno, needed]`.
   */
  nlDumpSync(
    fd: number,
    buffer: Buffer,
    offset: number,
    seq: number,
    maxReads: number,
  ): [number, boolean, number, number];
  /** openat2(2) (native/fs.c): a descriptor, or an Error with the errno `code`. */
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  /** glibc's errno name and message: `[name, message]` ("" for an unknown name). */
  strerror(errno: number): [string, string];
}

/** An opaque libuv poll handle. */
export type PollHandle = { readonly __pollHandle: unique symbol };

let loaded: NativeSyscalls | undefined;

/**
 * Load the addon once; the message says how to build it when it is missing. It is opened by its
 * path with `process.dlopen`, as `require` would after resolving it: a command's first netlink
 * request then skips the module resolver (its package.json lookups), a millisecond of its start.
 */
export function native(): NativeSyscalls {
  if (loaded === undefined) {
    try {
      const module = { exports: {} as NativeSyscalls };
      process.dlopen(module, fileURLToPath(new URL('../build/Release/opdbus_netlink.node', import.meta.url)));
      loaded = module.exports;
    } catch (err) {
      throw new Error(
        `@opdbus/netlink: the native addon is not built (${(err as Error).message}). Build it with \`node-gyp rebuild\` in the package directory (needs python3, make, g++ and Node's headers).`,
        { cause: err },
      );
    }
  }
  return loaded;
}

/** Linux constants used with the addon. */
export const linux = {
  CLONE_NEWNET: 0x40000000,
  MS_BIND: 4096,
  MS_REC: 16384,
  MS_SHARED: 1 << 20,
  MNT_DETACH: 2,
  IFF_UP: 0x1,
} as const;
