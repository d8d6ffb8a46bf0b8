import { readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, silentLogger, type Logger, type ProcessIdentity } from '@opdbus/core';
import { NETNS_RUN_DIR } from '@opdbus/netlink';
import { release } from './cleanup.js';
import {
  defaultRecordDir,
  isSandboxId,
  readRecordEntries,
  recordFile,
  removeRecordFile,
  sandboxIdPid,
  type SandboxKind,
  type SandboxRecord,
} from './records.js';

/** A sandbox record as {@link listSandboxRecords} reports it. */
export interface SandboxRecordInfo {
  /** The record file. */
  file: string;
  record: SandboxRecord;
  /** True when the owner process is gone: {@link reapStaleSandboxes} would remove it. */
  stale: boolean;
}

/** Options of {@link listSandboxRecords} and {@link reapStaleSandboxes}. */
export interface RecordDirOptions {
  /** The record directory (default /run/opdbus-sandbox for root; see `OPDBUS_SANDBOX_RECORD_DIR`). */
  recordDir?: string;
}

/** The sandbox records on this machine, with whether their owner is gone. */
export function listSandboxRecords(options: RecordDirOptions = {}): SandboxRecordInfo[] {
  const out: SandboxRecordInfo[] = [];
  for (const entry of readRecordEntries(options.recordDir ?? defaultRecordDir())) {
    if (entry.record === undefined) continue;
    out.push({ file: entry.file, record: entry.record, stale: !isAlive(entry.record.owner) });
  }
  return out;
}

/** Options of {@link reapStaleSandboxes}. */
export interface ReapOptions extends RecordDirOptions {
  /**
   * Also remove sandbox namespaces (/run/netns/opdbus-sbx-*) and directories (TMPDIR/opdbus-sbx-*)
   * that have no record and whose creating pid (part of the name) is gone. Default true.
   */
  orphans?: boolean;
  /** Debug logging (default silent). */
  logger?: Logger;
}

/** One sandbox resource removed by {@link reapStaleSandboxes}. */
export interface ReapedSandbox {
  id: string;
  /** The record's kind, or `orphan` for a namespace or directory found without a record. */
  kind: SandboxKind | 'orphan';
  /** The dead owner (for orphans: the pid from the name, start time unknown). */
  owner: ProcessIdentity;
  netns?: string;
  dir?: string;
  /** What could not be removed; empty when everything is gone. A record with leftovers is kept for the next run. */
  leftovers: string[];
}

/** What {@link reapStaleSandboxes} did. */
export interface ReapReport {
  reaped: ReapedSandbox[];
  /** Records whose owner still runs (left alone). */
  live: number;
  /** Record files that are not valid records (left alone, listed here). */
  invalid: string[];
}

function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take a record for reaping by renaming it: only one reaper wins. Returns the claimed path. */
function claim(file: string, base: string): string | undefined {
  const claimed = `${base}.reaping.${process.pid}`;
  try {
    renameSync(file, claimed);
    return claimed;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Remove what earlier runs left behind when they died without cleaning up (SIGKILL, OOM, power
 * loss of the test runner): for every record whose owner process is gone (pid and start time),
 * stop its daemons and every process in its namespace, unmount and detach its loop devices,
 * delete its namespace and its directory. With `orphans` (default), also sandbox namespaces and
 * directories without a record whose creating pid is gone.
 *
 * Only resources with sandbox names (`opdbus-sbx-<pid>-<hex>`) are ever touched, and nothing
 * whose owner still runs. Call it in a test suite's global setup.
 */
export async function reapStaleSandboxes(options: ReapOptions = {}): Promise<ReapReport> {
  const logger = options.logger ?? silentLogger;
  const recordDir = options.recordDir ?? defaultRecordDir();
  const report: ReapReport = { reaped: [], live: 0, invalid: [] };
  const claimed: Array<{ file: string; record: SandboxRecord }> = [];
  const known = new Set<string>();
  for (const entry of readRecordEntries(recordDir)) {
    if (entry.record === undefined) {
      report.invalid.push(entry.file);
      continue;
    }
    const { record } = entry;
    known.add(record.id);
    if (
      entry.claimedBy !== undefined
        ? entry.claimedBy === process.pid || pidRunning(entry.claimedBy)
        : isAlive(record.owner)
    ) {
      if (entry.claimedBy === undefined) report.live++;
      continue;
    }
    const file = claim(entry.file, recordFile(recordDir, record.id));
    if (file !== undefined) claimed.push({ file, record });
  }
  // Daemons, mounts and directories first, namespaces last (a namespace's processes are killed with it anyway).
  claimed.sort((a, b) => Number(a.record.kind === 'netns') - Number(b.record.kind === 'netns'));
  for (const { file, record } of claimed) {
    const leftovers = await release(record);
    if (leftovers.length === 0) removeRecordFile(file);
    else renameSync(file, recordFile(recordDir, record.id));
    const reaped: ReapedSandbox = { id: record.id, kind: record.kind, owner: record.owner, leftovers };
    if (record.netns !== undefined) reaped.netns = record.netns;
    if (record.dir !== undefined) reaped.dir = record.dir;
    report.reaped.push(reaped);
    logger.info(
      { id: record.id, kind: record.kind, owner: record.owner.pid, leftovers },
      'reaped stale sandbox',
    );
  }
  if (options.orphans !== false) {
    // A resource recorded in the default directory is not an orphan either (its own record reaps it).
    const defaultDir = defaultRecordDir();
    if (defaultDir !== recordDir)
      for (const entry of readRecordEntries(defaultDir))
        if (entry.record !== undefined) known.add(entry.record.id);
    for (const orphan of findOrphans(known)) {
      const leftovers = await release({ pids: [], ...orphan.where });
      report.reaped.push({
        id: orphan.id,
        kind: 'orphan',
        owner: { pid: orphan.pid, startTime: null },
        ...orphan.where,
        leftovers,
      });
      logger.info({ id: orphan.id, ...orphan.where, leftovers }, 'reaped orphaned sandbox resource');
    }
  }
  return report;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Sandbox namespaces and temp directories with no record, whose creator pid is gone. */
function findOrphans(
  known: ReadonlySet<string>,
): Array<{ id: string; pid: number; where: { netns?: string; dir?: string } }> {
  const orphans = new Map<string, { id: string; pid: number; where: { netns?: string; dir?: string } }>();
  const consider = (
    name: string,
  ): { id: string; pid: number; where: { netns?: string; dir?: string } } | undefined => {
    if (!isSandboxId(name) || known.has(name)) return undefined;
    const pid = sandboxIdPid(name);
    if (pid === undefined || pidRunning(pid)) return undefined;
    let orphan = orphans.get(name);
    if (orphan === undefined) {
      orphan = { id: name, pid, where: {} };
      orphans.set(name, orphan);
    }
    return orphan;
  };
  for (const name of listDir(NETNS_RUN_DIR)) {
    const orphan = consider(name);
    if (orphan !== undefined) orphan.where.netns = name;
  }
  const tmp = tmpdir();
  for (const name of listDir(tmp)) {
    const orphan = consider(name);
    if (orphan !== undefined) orphan.where.dir = join(tmp, name);
  }
  return [...orphans.values()];
}
