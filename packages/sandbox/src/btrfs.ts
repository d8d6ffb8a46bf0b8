import { existsSync, mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { loopDevicesUnder, mountsUnder } from './cleanup.js';
import { sandboxDir } from './paths.js';
import type { Registration } from './registry.js';
import { DisposableResource, createRegistered } from './resource.js';
import { checkedCommand, requireTool } from './tools.js';

/** Smallest image mkfs.btrfs accepts with its default profiles (114 MiB, rounded up). */
export const BTRFS_MIN_BYTES = 120 * 1024 * 1024;

/** Options of {@link createBtrfsLoop}. */
export interface BtrfsOptions {
  /** Image size: bytes, or a number with K/M/G/T (binary units), e.g. `'512M'` (default). The file is sparse. */
  size?: number | string;
  /** Filesystem label (`mkfs.btrfs -L`). */
  label?: string;
  /** Extra mount options (joined to `-o loop,...`), e.g. `['compress=zstd']`. */
  mountOptions?: readonly string[];
  /** Parent directory of the sandbox directory (default: the OS temp dir). */
  baseDir?: string;
  /** Bound on mkfs and mount (default 60 s). */
  timeoutMs?: number;
  /** Debug logging (default silent). */
  logger?: Logger;
}

/**
 * Parse a size: a number of bytes, or a string like `512M`, `1G`, `1.5GiB` (K, M, G, T are
 * powers of 1024). Throws `OPDBUS_ERR_SANDBOX_INVALID_OPTION` for anything else.
 */
export function parseSize(size: number | string): number {
  let bytes: number;
  if (typeof size === 'number') {
    bytes = size;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(size);
    const unit = match?.[2]?.toUpperCase() ?? '';
    const factor = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[unit];
    bytes = match?.[1] === undefined || factor === undefined ? NaN : Math.floor(Number(match[1]) * factor);
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_INVALID_OPTION',
      `"${String(size)}" is not a size; pass bytes or a string like "512M" or "1G".`,
      { data: { size } },
    );
  }
  return bytes;
}

/**
 * A btrfs filesystem in a sparse image file, mounted through a loop device. `destroy()` unmounts
 * it (retrying while busy, lazily as a last resort), which also frees the loop device, and
 * removes the image and directories.
 */
export class BtrfsLoop extends DisposableResource {
  /** The sandbox directory holding the image and the mount point. */
  readonly dir: string;
  /** The image file. */
  readonly image: string;
  /** Where the filesystem is mounted. */
  readonly mountPoint: string;
  /** The image size in bytes. */
  readonly sizeBytes: number;
  /** The loop device backing the mount, e.g. `/dev/loop3`. */
  readonly loopDevice: string;

  /** @internal Use {@link createBtrfsLoop}. */
  constructor(init: {
    dir: string;
    image: string;
    mountPoint: string;
    sizeBytes: number;
    loopDevice: string;
    registration: Registration;
    logger: Logger;
  }) {
    super(init.registration, init.logger);
    this.dir = init.dir;
    this.image = init.image;
    this.mountPoint = init.mountPoint;
    this.sizeBytes = init.sizeBytes;
    this.loopDevice = init.loopDevice;
  }

  protected override get label(): string {
    return `btrfs loop ${this.id}`;
  }

  /** The release unmounts (which frees the loop device) and removes the directory. */
  protected override leftovers(): string[] {
    return existsSync(this.dir) ? [`${this.dir} still exists`] : [];
  }
}

/**
 * Create a sparse image, format it btrfs and mount it through a loop device. Needs root and the
 * Debian package btrfs-progs; throws `OPDBUS_ERR_SANDBOX_PERMISSION`,
 * `OPDBUS_ERR_SANDBOX_MISSING_TOOL` or `OPDBUS_ERR_SANDBOX_COMMAND` (nothing is left behind).
 *
 * @example
 * ```ts
 * await using fs = await createBtrfsLoop({ size: '256M' });
 * // btrfs subvolume create ${fs.mountPoint}/data
 * ```
 */
export async function createBtrfsLoop(options: BtrfsOptions = {}): Promise<BtrfsLoop> {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const sizeBytes = parseSize(options.size ?? '512M');
  if (sizeBytes < BTRFS_MIN_BYTES) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_INVALID_OPTION',
      `A btrfs image needs at least ${BTRFS_MIN_BYTES} bytes (120M); ${sizeBytes} was asked for.`,
      { data: { sizeBytes } },
    );
  }
  if (process.getuid?.() !== 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_PERMISSION',
      'Mounting a btrfs image through a loop device needs root; run as root or skip with probeSandbox().btrfs.',
      {},
    );
  }
  requireTool('mkfs.btrfs');
  requireTool('mount');
  return createRegistered(
    'btrfs',
    (id) => ({ dir: sandboxDir(id, options.baseDir) }),
    async (registration) => {
      const dir = registration.record.dir ?? '';
      mkdirSync(dir, { mode: 0o700 });
      const image = join(dir, 'btrfs.img');
      const mountPoint = join(dir, 'mnt');
      mkdirSync(mountPoint);
      const handle = await open(image, 'wx', 0o600);
      try {
        await handle.truncate(sizeBytes);
      } finally {
        await handle.close();
      }
      await checkedCommand(
        'mkfs.btrfs',
        ['-q', ...(options.label === undefined ? [] : ['-L', options.label]), image],
        { what: `Formatting ${image} as btrfs`, timeoutMs },
      );
      const mountOptions = ['loop', ...(options.mountOptions ?? [])].join(',');
      try {
        await checkedCommand('mount', ['-t', 'btrfs', '-o', mountOptions, image, mountPoint], {
          what: `Mounting ${image} on ${mountPoint}`,
          timeoutMs,
        });
      } catch (err) {
        if (err instanceof OpdbusError) {
          throw new OpdbusError(
            'OPDBUS_ERR_SANDBOX_COMMAND',
            `${err.message}\nThe kernel needs btrfs and loop device support (see /proc/filesystems and /dev/loop-control).`,
            { ...(err.data === undefined ? {} : { data: err.data }), cause: err },
          );
        }
        throw err;
      }
      const mount = mountsUnder(mountPoint).find((m) => m.mountPoint === mountPoint);
      const loopDevice = mount?.source ?? loopDevicesUnder(dir)[0] ?? '';
      logger.debug(
        { id: registration.record.id, image, mountPoint, loopDevice, sizeBytes },
        'sandbox btrfs mounted',
      );
      return new BtrfsLoop({ dir, image, mountPoint, sizeBytes, loopDevice, registration, logger });
    },
  );
}
