import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import { syncDir } from '../storage.js';

/** Snapshot ids: sortable by time, as transaction ids (`20261122T101500.123Z-a1b2c3`). */
export const snapshotIdPattern = /^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}$/;

/** Where snapshots live: one directory per snapshot, holding a few files, read-only once made. */
export interface SnapshotBackend {
  readonly kind: 'directory' | 'btrfs';
  /** The directory holding the snapshots. */
  readonly root: string;
  /** Create snapshot `id` holding `files`; it is read-only afterwards. */
  create(id: string, files: Readonly<Record<string, Uint8Array>>): Promise<void>;
  /** Ids of the snapshots present, oldest first. */
  list(): Promise<string[]>;
  /** One file of a snapshot. */
  read(id: string, name: string): Promise<Buffer>;
  /** Delete a snapshot. */
  remove(id: string): Promise<void>;
}

/** btrfs' statfs magic. */
export const BTRFS_SUPER_MAGIC = 0x9123683e;

function backendError(message: string, data: Record<string, unknown>, cause?: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_SNAPSHOT_BACKEND', message, {
    data,
    ...(cause === undefined ? {} : { cause }),
  });
}

async function writeDurable(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function listIds(root: string): Promise<string[]> {
  try {
    return (await readdir(root)).filter((name) => snapshotIdPattern.test(name)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function readSnapshotFile(root: string, id: string, name: string): Promise<Buffer> {
  if (!snapshotIdPattern.test(id)) {
    throw new OpdbusError(
      'OPDBUS_ERR_SNAPSHOT_NOT_FOUND',
      `"${id}" is not a snapshot id (e.g. 20261122T101500.123Z-a1b2c3).`,
      { data: { id } },
    );
  }
  try {
    return await readFile(join(root, id, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new OpdbusError(
        'OPDBUS_ERR_SNAPSHOT_NOT_FOUND',
        `There is no snapshot ${id} in ${root} (or it lacks ${name}); see \`opdbus snapshot list\`.`,
        {
          data: { id, root },
        },
      );
    }
    throw err;
  }
}

/** Snapshots as plain directories (the default): written under a temporary name, fsync'd, renamed, made read-only. */
export class DirectoryBackend implements SnapshotBackend {
  readonly kind = 'directory' as const;
  constructor(readonly root: string) {}

  async create(id: string, files: Readonly<Record<string, Uint8Array>>): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const tmp = join(this.root, `.tmp-${id}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    for (const [name, data] of Object.entries(files)) {
      await writeDurable(join(tmp, name), data);
      await chmod(join(tmp, name), 0o400);
    }
    await syncDir(tmp);
    await chmod(tmp, 0o500);
    await rename(tmp, join(this.root, id));
    await syncDir(this.root);
  }

  list(): Promise<string[]> {
    return listIds(this.root);
  }

  read(id: string, name: string): Promise<Buffer> {
    return readSnapshotFile(this.root, id, name);
  }

  async remove(id: string): Promise<void> {
    const dir = join(this.root, id);
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await syncDir(this.root);
  }
}

/** Run `btrfs ARGS`; throws `OPDBUS_ERR_SNAPSHOT_BACKEND` with its output when it fails. */
export function btrfs(
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'btrfs',
      [...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          backendError(
            missing
              ? 'The btrfs command is not installed; install btrfs-progs (apt-get install btrfs-progs).'
              : `\`btrfs ${args.join(' ')}\` failed: ${stderr.trim() || error.message}`,
            {
              command: ['btrfs', ...args],
              stderr: stderr.trim(),
              ...(typeof error.code === 'number' ? { exitCode: error.code } : {}),
            },
            error,
          ),
        );
      },
    );
  });
}

/** Whether `path` is on a btrfs filesystem. */
export async function isOnBtrfs(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === BTRFS_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Snapshots as btrfs read-only subvolume snapshots: a writable staging subvolume
 * (`ROOT/.staging`) receives the files, then `btrfs subvolume snapshot -r` freezes it as
 * `ROOT/ID`. Consecutive snapshots share extents, so `btrfs send -p` exports only what changed.
 */
export class BtrfsBackend implements SnapshotBackend {
  readonly kind = 'btrfs' as const;
  constructor(readonly root: string) {}

  get staging(): string {
    return join(this.root, '.staging');
  }

  async #ensureStaging(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    try {
      await readdir(this.staging);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await btrfs(['subvolume', 'create', this.staging]);
    }
  }

  async create(id: string, files: Readonly<Record<string, Uint8Array>>): Promise<void> {
    await this.#ensureStaging();
    for (const name of await readdir(this.staging))
      await rm(join(this.staging, name), { recursive: true, force: true });
    for (const [name, data] of Object.entries(files)) await writeDurable(join(this.staging, name), data);
    await syncDir(this.staging);
    await btrfs(['subvolume', 'snapshot', '-r', this.staging, join(this.root, id)]);
    await syncDir(this.root);
  }

  list(): Promise<string[]> {
    return listIds(this.root);
  }

  read(id: string, name: string): Promise<Buffer> {
    return readSnapshotFile(this.root, id, name);
  }

  async remove(id: string): Promise<void> {
    await btrfs(['subvolume', 'delete', '--commit-after', join(this.root, id)]);
  }

  /** Export snapshot `id` as a btrfs send stream to `file`: incremental against `parent` when given. */
  async send(id: string, file: string, parent?: string): Promise<void> {
    await btrfs([
      'send',
      '-q',
      ...(parent === undefined ? [] : ['-p', join(this.root, parent)]),
      '-f',
      file,
      join(this.root, id),
    ]);
  }

  /** Import a send stream (full, or incremental when its parent is here); returns the snapshot id received. */
  async receive(file: string): Promise<string> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const before = new Set(await this.list());
    const { stdout, stderr } = await btrfs(['receive', '-f', file, this.root]);
    const named = /At (?:subvol|snapshot) (\S+)/.exec(`${stdout}\n${stderr}`)?.[1];
    const added = (await this.list()).filter((id) => !before.has(id));
    const id = named !== undefined && snapshotIdPattern.test(named) ? named : added[0];
    if (id === undefined) {
      throw backendError(
        `\`btrfs receive\` of ${file} did not produce a snapshot named like an op-dbus snapshot id.`,
        { file, stdout, stderr },
      );
    }
    return id;
  }
}
