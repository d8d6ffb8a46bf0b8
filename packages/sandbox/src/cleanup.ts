import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isAlive, processStartTime, type ProcessIdentity } from '@opdbus/core';
import { NETNS_RUN_DIR, deleteNamedNetns } from '@opdbus/netlink';
import { isSandboxCgroup, isSandboxDir, isSandboxId, type SandboxRecord } from './records.js';
import { findTool, runCommand } from './tools.js';

/** Daemons a sandbox starts; one whose command line names a sandbox directory belongs to it. */
const daemonNames: ReadonlySet<string> = new Set([
  'dbus-daemon',
  'ovsdb-server',
  'ovs-vswitchd',
  'systemd-nspawn',
]);

/** What a record names that holds processes or mounts. */
type Releasable = Pick<SandboxRecord, 'pids' | 'dir' | 'netns' | 'cgroups'>;

/** The inode of a named sandbox namespace, when its file is a mounted namespace (nsfs). */
function netnsInode(name: string): number | undefined {
  try {
    const ns = statSync(`${NETNS_RUN_DIR}/${name}`);
    const nsfs = statSync('/proc/self/ns/net');
    return ns.dev === nsfs.dev ? ns.ino : undefined;
  } catch {
    return undefined;
  }
}

/** A sandbox cgroup and its descendants, deepest first (only existing directories). */
export function cgroupTree(cgroup: string): string[] {
  if (!isSandboxCgroup(cgroup)) return [];
  const out: string[] = [];
  const visit = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) if (entry.isDirectory()) visit(join(dir, entry.name));
    out.push(dir);
  };
  visit(cgroup);
  return out;
}

/** The pids in sandbox cgroups (and their descendants). */
export function cgroupPids(cgroups: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const cgroup of cgroups) {
    for (const dir of cgroupTree(cgroup)) {
      let text: string;
      try {
        text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
    }
  }
  pids.delete(process.pid);
  return [...pids];
}

/** Remove sandbox cgroups, deepest first; returns what could not be removed. */
export function removeCgroups(cgroups: readonly string[]): string[] {
  const leftovers: string[] = [];
  for (const cgroup of cgroups) {
    for (const dir of cgroupTree(cgroup)) {
      try {
        rmdirSync(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') leftovers.push(`cgroup ${dir}: ${code ?? (err as Error).message}`);
      }
    }
  }
  return leftovers;
}

/** Whether the named sandbox namespace file still exists. */
export function netnsExists(name: string): boolean {
  return existsSync(`${NETNS_RUN_DIR}/${name}`);
}

/**
 * The processes that belong to a record: its daemons (pid and start time must match), any
 * sandbox daemon whose command line names the record's directory, and every process inside the
 * record's network namespace. Never this process.
 */
export function processesOf(record: Releasable): ProcessIdentity[] {
  const found = new Map<number, ProcessIdentity>();
  for (const identity of record.pids) {
    if (identity.pid !== process.pid && isAlive(identity)) found.set(identity.pid, identity);
  }
  for (const pid of cgroupPids(record.cgroups ?? [])) {
    if (found.has(pid)) continue;
    const identity = { pid, startTime: processStartTime(pid) };
    if (isAlive(identity)) found.set(pid, identity);
  }
  const ino = record.netns !== undefined && isSandboxId(record.netns) ? netnsInode(record.netns) : undefined;
  const dir = record.dir !== undefined && isSandboxDir(record.dir) ? `${record.dir}/` : undefined;
  if (ino === undefined && dir === undefined) return [...found.values()];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [...found.values()];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || found.has(pid)) continue;
    let belongs = false;
    try {
      if (ino !== undefined && readlinkSync(`/proc/${pid}/ns/net`) === `net:[${ino}]`) belongs = true;
      if (!belongs && dir !== undefined) {
        const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        if (daemonNames.has(comm) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir))
          belongs = true;
      }
    } catch {
      // The process exited while we looked, or it is a kernel thread: not ours.
      continue;
    }
    if (belongs) {
      const identity = { pid, startTime: processStartTime(pid) };
      if (isAlive(identity)) found.set(pid, identity);
    }
  }
  return [...found.values()];
}

function signal(identities: readonly ProcessIdentity[], sig: NodeJS.Signals): void {
  for (const identity of identities) {
    // Re-check the start time right before the signal: never signal a reused pid.
    if (!isAlive(identity)) continue;
    try {
      process.kill(identity.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** Wait (polling /proc, bounded) until none of `identities` runs; returns those still running. */
export async function waitGone(
  identities: readonly ProcessIdentity[],
  timeoutMs: number,
): Promise<ProcessIdentity[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = identities.filter((i) => isAlive(i));
  while (alive.length > 0 && Date.now() < deadline) {
    await delay(20);
    alive = alive.filter((i) => isAlive(i));
  }
  return alive;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait again; returns what survived both. */
export async function terminate(
  identities: readonly ProcessIdentity[],
  graceMs = 3000,
): Promise<ProcessIdentity[]> {
  if (identities.length === 0) return [];
  signal(identities, 'SIGTERM');
  const stubborn = await waitGone(identities, graceMs);
  if (stubborn.length === 0) return [];
  signal(stubborn, 'SIGKILL');
  return waitGone(stubborn, 5000);
}

function decodeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** A mount below a sandbox directory. */
export interface MountEntry {
  mountPoint: string;
  /** The mounted device (e.g. /dev/loop3). */
  source: string;
  fstype: string;
}

/** The mounts at or below `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string): MountEntry[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const mountPoint = fields[4];
    if (mountPoint === undefined || dash < 0) continue;
    const path = decodeMountPath(mountPoint);
    if (path === dir || path.startsWith(`${dir}/`)) {
      mounts.push({
        mountPoint: path,
        fstype: fields[dash + 1] ?? '',
        source: decodeMountPath(fields[dash + 2] ?? ''),
      });
    }
  }
  return mounts.sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}

/** Loop devices whose backing file lies below `dir` (e.g. `/dev/loop3`). */
export function loopDevicesUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return [];
  }
  const devices: string[] = [];
  for (const name of names) {
    try {
      const backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
      if (backing.startsWith(`${dir}/`)) devices.push(`/dev/${name}`);
    } catch {
      // No backing file: the device is free.
    }
  }
  return devices;
}

/**
 * Unmount `mountPoint`: retry briefly while it is busy, then detach it lazily (it disappears from
 * the tree now; the kernel releases it when its last user goes). Returns how, or an error text.
 */
async function unmount(mountPoint: string): Promise<{ lazy: boolean; error?: string }> {
  const umount = findTool('umount') ?? '/bin/umount';
  let last = '';
  for (const pause of [50, 150, 300]) {
    const result = await runCommand(umount, [mountPoint], { timeoutMs: 30_000 });
    if (result.code === 0) return { lazy: false };
    last = result.stderr.trim();
    if (mountsUnder(mountPoint).every((m) => m.mountPoint !== mountPoint)) return { lazy: false };
    await delay(pause);
  }
  const lazy = await runCommand(umount, ['-l', mountPoint], { timeoutMs: 30_000 });
  return lazy.code === 0
    ? { lazy: true }
    : { lazy: true, error: `umount ${mountPoint}: ${last}; umount -l: ${lazy.stderr.trim()}` };
}

/**
 * Remove everything a record names, gracefully: stop its processes (SIGTERM, then SIGKILL),
 * unmount what is mounted below its directory (lazily if still busy), detach loop devices backed
 * by files there, delete its namespace, remove its directory. Idempotent. Returns a description
 * of whatever could not be removed (empty when all is gone).
 */
export async function release(record: Releasable): Promise<string[]> {
  const leftovers: string[] = [];
  if (record.cgroups !== undefined && record.cgroups.length > 0) {
    // A container: SIGTERM to systemd-nspawn first (it shuts the container down cleanly), then
    // SIGKILL whatever is left in its cgroups (SIGTERM would make the container's systemd re-execute).
    await terminate(
      record.pids.filter((p) => isAlive(p)),
      15_000,
    );
    const rest = processesOf({ pids: [], cgroups: record.cgroups });
    signal(rest, 'SIGKILL');
    for (const s of await waitGone(rest, 5000)) leftovers.push(`process ${s.pid} still runs after SIGKILL`);
  }
  const survivors = await terminate(processesOf(record));
  for (const s of survivors) leftovers.push(`process ${s.pid} still runs after SIGKILL`);
  const dir = record.dir !== undefined && isSandboxDir(record.dir) ? record.dir : undefined;
  if (dir !== undefined) {
    let lazy = false;
    for (const mount of mountsUnder(dir)) {
      const result = await unmount(mount.mountPoint);
      lazy ||= result.lazy;
      if (result.error !== undefined) leftovers.push(result.error);
    }
    // A loop device set up by `mount -o loop` clears itself when the filesystem is released:
    // after a plain umount, wait for that (bounded). Then detach whatever is still attached to
    // a file of ours; on a device still in use (lazy unmount) the kernel turns that into
    // autoclear, so it goes as soon as its last user does.
    let loops = loopDevicesUnder(dir);
    for (let waited = 0; !lazy && loops.length > 0 && waited < 2000; waited += 25) {
      await delay(25);
      loops = loopDevicesUnder(dir);
    }
    const losetup = findTool('losetup');
    for (const device of loops) {
      const result =
        losetup === undefined ? undefined : await runCommand(losetup, ['-d', device], { timeoutMs: 10_000 });
      if (result?.code !== 0 && loopDevicesUnder(dir).includes(device))
        leftovers.push(`loop device ${device} is still attached to a file in ${dir}`);
    }
  }
  if (record.netns !== undefined && isSandboxId(record.netns)) {
    try {
      deleteNamedNetns(record.netns);
    } catch (err) {
      leftovers.push(`network namespace ${record.netns}: ${(err as Error).message}`);
    }
  }
  if (record.cgroups !== undefined && record.cgroups.length > 0) {
    // Killed processes leave their cgroups once reaped: wait for that (bounded), then remove them.
    const deadline = Date.now() + 5000;
    while (cgroupPids(record.cgroups).length > 0 && Date.now() < deadline) await delay(20);
    leftovers.push(...removeCgroups(record.cgroups));
  }
  if (dir !== undefined) leftovers.push(...removeDir(dir));
  return leftovers;
}

/** Remove a sandbox directory unless something is still mounted below it (never recurse into a mount). */
function removeDir(dir: string): string[] {
  const mounted = mountsUnder(dir);
  if (mounted.length > 0)
    return [`${dir} not removed: ${mounted.map((m) => m.mountPoint).join(', ')} still mounted`];
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    return [];
  } catch (err) {
    return [`${dir}: ${(err as Error).message}`];
  }
}

/**
 * The synchronous, best-effort form of {@link release} for `process.on('exit')`, where nothing
 * can be awaited: SIGKILL the processes, detach mounts lazily, delete the namespace, remove the
 * directory. Returns what could not be removed.
 */
export function releaseSync(record: Releasable): string[] {
  const leftovers: string[] = [];
  try {
    signal(processesOf(record), 'SIGKILL');
  } catch (err) {
    leftovers.push(`kill: ${(err as Error).message}`);
  }
  const dir = record.dir !== undefined && isSandboxDir(record.dir) ? record.dir : undefined;
  if (dir !== undefined) {
    const umount = findTool('umount') ?? '/bin/umount';
    for (const mount of mountsUnder(dir)) {
      spawnSync(umount, ['-l', mount.mountPoint], { stdio: 'ignore', timeout: 10_000 });
    }
  }
  if (record.netns !== undefined && isSandboxId(record.netns)) {
    try {
      deleteNamedNetns(record.netns);
    } catch (err) {
      leftovers.push(`network namespace ${record.netns}: ${(err as Error).message}`);
    }
  }
  if (record.cgroups !== undefined && record.cgroups.length > 0) {
    // The killed processes leave their cgroups asynchronously: wait for that, bounded.
    const deadline = Date.now() + 3000;
    while (cgroupPids(record.cgroups).length > 0 && Date.now() < deadline) {
      spawnSync('sleep', ['0.02'], { stdio: 'ignore' });
    }
    leftovers.push(...removeCgroups(record.cgroups));
  }
  if (dir !== undefined) leftovers.push(...removeDir(dir));
  return leftovers;
}
