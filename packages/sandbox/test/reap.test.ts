// Cleanup when the owner does not clean up, and what reapStaleSandboxes() may touch.
//
// Exit hook (process.exit, uncaught error, SIGTERM) and reaping after a SIGKILL: the crashing
// process is a plain node process running the built package (test/fixtures/crashChild.mjs
// imports ../../dist). All reaping tests live in this one file so that they run one after the
// other: a reaper's orphan sweep would otherwise take another test's deliberately stale resources.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processStartTime, selfIdentity } from '@opdbus/core';
import { createNamedNetns, deleteNamedNetns } from '@opdbus/netlink';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  ensureDebianRootfs,
  isSandboxId,
  listSandboxRecords,
  probeSandbox,
  reapStaleSandboxes,
  type Requirement,
  type SandboxRecord,
} from '../src/index.js';
import { describeIf, loopsBackedBy, mountPoints, netnsExists, running, settle } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, 'fixtures', 'crashChild.mjs');
const probe = probeSandbox();
const canCrash: Requirement = !probe.netns.available
  ? probe.netns
  : !probe.dbus.available
    ? probe.dbus
    : { component: 'netns', available: true };

interface Created {
  pids: number[];
  dirs: string[];
  netns: string[];
  mounts: string[];
  ids: string[];
}

/** The newest mtime under src/ must not be newer than dist/index.js, or the child would run old code. */
function assertBuilt(): void {
  const pkg = join(here, '..');
  const dist = join(pkg, 'dist', 'index.js');
  const hint = 'build it first: `pnpm turbo run build --filter @opdbus/sandbox...`';
  if (!existsSync(dist)) throw new Error(`crash tests run the built package and ${dist} is missing; ${hint}`);
  const newest = Math.max(
    ...readdirSync(join(pkg, 'src'))
      .filter((f) => !f.endsWith('.test.ts'))
      .map((f) => statSync(join(pkg, 'src', f)).mtimeMs),
  );
  if (newest > statSync(dist).mtimeMs) throw new Error(`packages/sandbox/dist is older than src/; ${hint}`);
}

// The child records its resources in a private record directory, so that no other reaper on
// this machine (a concurrent test run) takes them before this test does.
let recordDir = '';

async function startChild(
  mode: 'exit' | 'throw' | 'wait',
  what: string[],
): Promise<{
  created: Created;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  pid: number;
}> {
  const child = spawn(process.execPath, [fixture, mode, what.join(',')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OPDBUS_SANDBOX_RECORD_DIR: recordDir },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    void exit.then((e) =>
      reject(new Error(`the child exited before reporting (${e.code ?? e.signal}): ${e.stderr}`)),
    );
  });
  return { created: JSON.parse(line) as Created, exit, pid: child.pid ?? 0 };
}

/** What of `created` still exists. */
function remaining(created: Created): string[] {
  const mounts = mountPoints();
  return [
    ...created.pids.filter(running).map((p) => `pid ${p}`),
    ...created.netns.filter(netnsExists).map((n) => `netns ${n}`),
    ...created.dirs.filter((d) => existsSync(d)).map((d) => `dir ${d}`),
    ...created.mounts.filter((m) => mounts.includes(m)).map((m) => `mount ${m}`),
  ];
}

function components(): string[] {
  return [
    'netns',
    'dbus',
    ...(probe.vswitchd.available ? ['ovs'] : []),
    ...(probe.btrfs.available ? ['btrfs'] : []),
    ...(probe.container.available ? ['container'] : []),
  ];
}

describeIf(canCrash, 'cleanup when the owner dies', () => {
  beforeAll(async () => {
    assertBuilt();
    recordDir = mkdtempSync(join(tmpdir(), 'opdbus-crash-records-'));
    // The children boot containers: build the cached image first (once per machine) so no test waits for it.
    if (probe.container.available) await ensureDebianRootfs();
  }, 600_000);
  afterAll(() => rmSync(recordDir, { recursive: true, force: true }));

  it('reapStaleSandboxes() removes everything a SIGKILLed process left behind', async () => {
    const { created, exit, pid } = await startChild('wait', components());
    process.kill(pid, 'SIGKILL');
    expect((await exit).signal).toBe('SIGKILL');
    // SIGKILL cannot be caught: the daemons, the namespaces, the mounts and the dirs are all still there ...
    expect(remaining(created).length).toBe(
      created.pids.length + created.netns.length + created.dirs.length + created.mounts.length,
    );
    const records = listSandboxRecords({ recordDir }).filter((r) => created.ids.includes(r.record.id));
    expect(records.map((r) => r.record.id).sort()).toEqual([...created.ids].sort());
    expect(records.every((r) => r.stale && r.record.owner.pid === pid)).toBe(true);

    // ... until the next run reaps them.
    const report = await reapStaleSandboxes({ recordDir });
    const reaped = report.reaped.filter((r) => created.ids.includes(r.id));
    expect(reaped.map((r) => r.id).sort()).toEqual([...created.ids].sort());
    expect(reaped.flatMap((r) => r.leftovers)).toEqual([]);
    expect(remaining(created)).toEqual([]);
    expect(listSandboxRecords({ recordDir }).filter((r) => created.ids.includes(r.record.id))).toEqual([]);
    expect(await settle(() => created.dirs.every((d) => loopsBackedBy(`${d}/`).length === 0))).toBe(true);
  });

  for (const mode of ['exit', 'throw'] as const) {
    it(`the exit hook cleans up when the process ${mode === 'exit' ? 'calls process.exit()' : 'dies of an uncaught error'}`, async () => {
      const { created, exit } = await startChild(mode, components());
      const result = await exit;
      expect(result.code).toBe(mode === 'exit' ? 3 : 1);
      expect(remaining(created)).toEqual([]);
      expect(listSandboxRecords({ recordDir }).filter((r) => created.ids.includes(r.record.id))).toEqual([]);
    });
  }

  it('SIGTERM cleans up, then the process still dies of SIGTERM', async () => {
    const { created, exit, pid } = await startChild('wait', ['netns', 'dbus']);
    process.kill(pid, 'SIGTERM');
    expect((await exit).signal).toBe('SIGTERM');
    expect(remaining(created)).toEqual([]);
  });
});

let scratchRecords = '';
const cleanups: Array<() => void> = [];

/** A pid that certainly does not run any more (a finished child's). */
function deadPid(): number {
  const pid = spawnSync('true').pid;
  if (pid === undefined || running(pid)) throw new Error('no dead pid');
  return pid;
}

function writeRecord(record: SandboxRecord): void {
  writeFileSync(join(scratchRecords, `${record.id}.json`), JSON.stringify(record));
}

it('ids are recognisable and unique enough to be safe to delete by name', () => {
  expect(isSandboxId(`opdbus-sbx-${process.pid}-0123abcd`)).toBe(true);
  for (const name of [
    'opdbus-sbx-1-xyz',
    'opdbus-sbx-1-0123abcd-x',
    'blue',
    'opdbus-sbx--0123abcd',
    '../opdbus-sbx-1-0123abcd',
  ])
    expect(isSandboxId(name)).toBe(false);
});

describeIf(probe.netns, 'reapStaleSandboxes', () => {
  beforeEach(() => {
    scratchRecords = mkdtempSync(join(tmpdir(), 'opdbus-reap-test-'));
  });
  afterEach(() => {
    for (const fn of cleanups.splice(0)) fn();
    rmSync(scratchRecords, { recursive: true, force: true });
  });
  afterAll(() => {
    for (const fn of cleanups.splice(0)) fn();
  });

  it("removes a dead owner's namespace, its processes and its directory; keeps a live owner's", async () => {
    const dead = deadPid();
    const staleId = `opdbus-sbx-${dead}-0000aaaa`;
    const liveId = `opdbus-sbx-${process.pid}-0000bbbb`;
    const staleDir = join(tmpdir(), staleId);
    const liveDir = join(tmpdir(), liveId);
    for (const id of [staleId, liveId]) {
      createNamedNetns(id).close();
      cleanups.push(() => deleteNamedNetns(id));
    }
    mkdirSync(staleDir);
    mkdirSync(liveDir);
    cleanups.push(() => rmSync(liveDir, { recursive: true, force: true }));
    // A process inside the stale namespace: it belongs to the sandbox and must go with it.
    const inside = spawn('ip', ['netns', 'exec', staleId, 'sleep', '600'], { stdio: 'ignore' });
    const insideExit = new Promise((r) => inside.once('exit', r));
    const staleRecord: SandboxRecord = {
      version: 1,
      id: staleId,
      kind: 'netns',
      owner: { pid: dead, startTime: '1' },
      createdAt: new Date().toISOString(),
      netns: staleId,
      dir: staleDir,
      pids: [],
    };
    writeRecord(staleRecord);
    writeRecord({ ...staleRecord, id: liveId, owner: selfIdentity(), netns: liveId, dir: liveDir });
    // Wait until `ip netns exec` has entered the namespace and exec'd sleep.
    await expect
      .poll(() => spawnSync('ip', ['netns', 'pids', staleId], { encoding: 'utf8' }).stdout.trim(), {
        timeout: 5000,
      })
      .not.toBe('');

    const report = await reapStaleSandboxes({ recordDir: scratchRecords, orphans: false });
    expect(report.reaped.map((r) => r.id)).toEqual([staleId]);
    expect(report.reaped[0]?.leftovers).toEqual([]);
    expect(report.live).toBe(1);
    await insideExit;
    expect(netnsExists(staleId)).toBe(false);
    expect(existsSync(staleDir)).toBe(false);
    expect(readdirSync(scratchRecords)).toEqual([`${liveId}.json`]);
    // The live owner's resources are untouched.
    expect(netnsExists(liveId)).toBe(true);
    expect(existsSync(liveDir)).toBe(true);
    expect(listSandboxRecords({ recordDir: scratchRecords }).map((r) => [r.record.id, r.stale])).toEqual([
      [liveId, false],
    ]);
  });

  it('never kills a recorded pid that now belongs to another process (start time differs)', async () => {
    const bystander = spawn('sleep', ['600'], { stdio: 'ignore' });
    cleanups.push(() => bystander.kill('SIGKILL'));
    const pid = bystander.pid ?? 0;
    const id = `opdbus-sbx-${deadPid()}-0000cccc`;
    writeRecord({
      version: 1,
      id,
      kind: 'dbus',
      owner: { pid: deadPid(), startTime: '1' },
      createdAt: '',
      pids: [{ pid, startTime: String(Number(processStartTime(pid)) + 1) }],
    });
    const report = await reapStaleSandboxes({ recordDir: scratchRecords, orphans: false });
    expect(report.reaped.map((r) => r.id)).toEqual([id]);
    expect(running(pid)).toBe(true);
  });

  it('leaves invalid records alone and never touches resources without a sandbox name', async () => {
    const dead = deadPid();
    // A record pointing at things outside the sandbox: not a valid record, so nothing is done.
    writeFileSync(
      join(scratchRecords, 'evil.json'),
      JSON.stringify({
        version: 1,
        id: `opdbus-sbx-${dead}-0000dddd`,
        kind: 'btrfs',
        owner: { pid: dead, startTime: null },
        createdAt: '',
        dir: '/',
        pids: [],
      }),
    );
    writeFileSync(join(scratchRecords, 'garbage.json'), '{ not json');
    const other = `opdbus-test-${dead}`;
    createNamedNetns(other).close();
    cleanups.push(() => deleteNamedNetns(other));
    const report = await reapStaleSandboxes({ recordDir: scratchRecords });
    expect(report.invalid.sort()).toEqual([
      join(scratchRecords, 'evil.json'),
      join(scratchRecords, 'garbage.json'),
    ]);
    expect(report.reaped.some((r) => r.id.includes('0000dddd'))).toBe(false);
    expect(netnsExists(other)).toBe(true);
    expect(readdirSync(scratchRecords).sort()).toEqual(['evil.json', 'garbage.json']);
  });

  it('removes orphaned sandbox namespaces and directories (no record, creator gone)', async () => {
    const id = `opdbus-sbx-${deadPid()}-0000eeee`;
    createNamedNetns(id).close();
    cleanups.push(() => deleteNamedNetns(id));
    const dir = join(tmpdir(), id);
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'file'), 'x');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const report = await reapStaleSandboxes({ recordDir: scratchRecords });
    expect(report.reaped.find((r) => r.id === id)).toMatchObject({
      kind: 'orphan',
      netns: id,
      dir,
      leftovers: [],
    });
    expect(netnsExists(id)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
