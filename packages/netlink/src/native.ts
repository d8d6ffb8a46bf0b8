import { createRequire } from 'node:module';

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
}

let loaded: NativeSyscalls | undefined;

/** Load the addon once; the message says how to build it when it is missing. */
export function native(): NativeSyscalls {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    try {
      loaded = require('../build/Release/opdbus_netlink.node') as NativeSyscalls;
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
