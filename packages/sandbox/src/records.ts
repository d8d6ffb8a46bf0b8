import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, normalize } from 'node:path';
import type { ProcessIdentity } from '@opdbus/core';

/** The kinds of resource a sandbox creates. */
export type SandboxKind = 'netns' | 'dbus' | 'ovs' | 'btrfs' | 'container';

/**
 * What a sandbox resource writes to its record file before it creates anything, so that
 * {@link reapStaleSandboxes} can remove it after its owner died without cleaning up.
 */
export interface SandboxRecord {
  /** Format version of the record. */
  version: 1;
  /** The resource's id, `opdbus-sbx-<owner pid>-<8 hex digits>`; also its namespace or directory name. */
  id: string;
  kind: SandboxKind;
  /** The process that created it; the record is stale once this process is gone. */
  owner: ProcessIdentity;
  /** ISO 8601 time of creation. */
  createdAt: string;
  /** The named network namespace it created (under /run/netns), if any. */
  netns?: string;
  /** The directory it created (sockets, config, logs, images, mount points), if any. */
  dir?: string;
  /** Daemons it started (pid + start time, so a reused pid is never killed). */
  pids: ProcessIdentity[];
  /**
   * Control groups it created (`/sys/fs/cgroup/[HIERARCHY/]opdbus-sbx-…`): every process in them
   * belongs to the sandbox (a systemd container and everything it started).
   */
  cgroups?: string[];
}

const idPattern = /^opdbus-sbx-(\d+)-[0-9a-f]{8}$/;

/** A fresh resource id: `opdbus-sbx-<pid>-<8 random hex digits>` (fits an interface or namespace name). */
export function newSandboxId(): string {
  return `opdbus-sbx-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Whether `name` has the shape of a sandbox id (only such names are ever deleted). */
export function isSandboxId(name: string): boolean {
  return idPattern.test(name);
}

/** The pid a sandbox id was created by, or undefined when `name` is not a sandbox id. */
export function sandboxIdPid(name: string): number | undefined {
  const match = idPattern.exec(name);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Whether `path` is a directory a sandbox may have created: absolute, normalised, named by a sandbox id. */
export function isSandboxDir(path: string): boolean {
  return isAbsolute(path) && normalize(path) === path && path !== '/' && isSandboxId(basename(path));
}

const cgroupPattern = /^\/sys\/fs\/cgroup\/(?:[a-z0-9_,=]+\/)?(opdbus-sbx-\d+-[0-9a-f]{8})$/;

/** Whether `path` is a control group a sandbox may have created: `/sys/fs/cgroup/[HIERARCHY/]<sandbox id>`. */
export function isSandboxCgroup(path: string): boolean {
  return cgroupPattern.test(path);
}

/**
 * Where record files live: `$OPDBUS_SANDBOX_RECORD_DIR`, else /run/opdbus-sandbox for root,
 * else `<tmpdir>/opdbus-sandbox-<uid>`.
 */
export function defaultRecordDir(): string {
  const fromEnv = process.env.OPDBUS_SANDBOX_RECORD_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run/opdbus-sandbox' : join(tmpdir(), `opdbus-sandbox-${uid}`);
}

/** The file holding the record `id` in `recordDir`. */
export function recordFile(recordDir: string, id: string): string {
  return join(recordDir, `${id}.json`);
}

/** Write (or rewrite) a record atomically. */
export function writeRecord(recordDir: string, record: SandboxRecord): void {
  mkdirSync(recordDir, { recursive: true, mode: 0o755 });
  const file = recordFile(recordDir, record.id);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, file);
}

/** Remove a record file; a missing one is fine. */
export function removeRecordFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function isIdentity(value: unknown): value is ProcessIdentity {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.pid === 'number' &&
    Number.isInteger(v.pid) &&
    v.pid > 0 &&
    (v.startTime === null || typeof v.startTime === 'string')
  );
}

const kinds: readonly string[] = ['netns', 'dbus', 'ovs', 'btrfs', 'container'];

/**
 * Parse and check a record file's text. Returns undefined for anything that is not a well-formed
 * record whose namespace and directory have sandbox names: such a file is never acted on.
 */
export function parseRecord(text: string): SandboxRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (r.version !== 1 || typeof r.id !== 'string' || !isSandboxId(r.id)) return undefined;
  if (typeof r.kind !== 'string' || !kinds.includes(r.kind)) return undefined;
  if (!isIdentity(r.owner) || typeof r.createdAt !== 'string') return undefined;
  if (r.netns !== undefined && (typeof r.netns !== 'string' || !isSandboxId(r.netns))) return undefined;
  if (r.dir !== undefined && (typeof r.dir !== 'string' || !isSandboxDir(r.dir))) return undefined;
  if (!Array.isArray(r.pids) || !r.pids.every(isIdentity)) return undefined;
  if (
    r.cgroups !== undefined &&
    (!Array.isArray(r.cgroups) ||
      !r.cgroups.every((c): c is string => typeof c === 'string' && isSandboxCgroup(c)))
  )
    return undefined;
  const record: SandboxRecord = {
    version: 1,
    id: r.id,
    kind: r.kind as SandboxKind,
    owner: r.owner,
    createdAt: r.createdAt,
    pids: r.pids,
  };
  if (r.netns !== undefined) record.netns = r.netns;
  if (r.dir !== undefined) record.dir = r.dir;
  if (r.cgroups !== undefined) record.cgroups = r.cgroups;
  return record;
}

/** A record file found in the record directory. */
export interface RecordEntry {
  /** The file's path. */
  file: string;
  /** The parsed record; undefined when the file is not a valid record. */
  record: SandboxRecord | undefined;
  /** Set when the file is claimed by a reaper (`ID.json.reaping.PID`): that reaper's pid. */
  claimedBy?: number;
}

/** The record files in `recordDir` (none when it does not exist). */
export function readRecordEntries(recordDir: string): RecordEntry[] {
  let names: string[];
  try {
    names = readdirSync(recordDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: RecordEntry[] = [];
  for (const name of names.sort()) {
    const claim = /^(.+)\.json\.reaping\.(\d+)$/.exec(name);
    if (!name.endsWith('.json') && claim === null) continue;
    const file = join(recordDir, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const entry: RecordEntry = { file, record: parseRecord(text) };
    if (claim?.[2] !== undefined) entry.claimedBy = Number(claim[2]);
    entries.push(entry);
  }
  return entries;
}
