import { cp, mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeSandbox, createBtrfsLoop, type BtrfsLoop } from '@opdbus/sandbox';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BtrfsBackend, Ledger, SnapshotManager, btrfs, verifyLedger } from '../src/index.js';
import { describeIf } from '@opdbus/sandbox/testing';

const state = (n: number) => ({
  sysctl: { 'net.ipv4.ip_forward': String(n % 2), 'net.core.somaxconn': String(4096 + n) },
});

describe('snapshots in plain directories', () => {
  let dir: string;
  let ledger: Ledger;
  let clock: Date;
  const open = () =>
    SnapshotManager.open({
      dir: join(dir, 'snapshots'),
      keyFile: join(dir, 'keys', 'snapshot.key'),
      ledger,
      now: () => clock,
      backend: 'directory',
    });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-snap-'));
    ledger = await Ledger.open({ dir: join(dir, 'ledger') });
    clock = new Date('2026-11-22T10:00:00Z');
  });
  afterEach(async () => {
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('encrypts at rest, records each snapshot in the ledger and loads it back', async () => {
    const snaps = await open();
    expect(snaps.backend.kind).toBe('directory');
    const meta = await snaps.create(state(1), { kind: 'apply', txId: 'tx-1' });
    expect((await stat(join(dir, 'keys', 'snapshot.key'))).mode & 0o777).toBe(0o600);
    const raw = await readFile(join(dir, 'snapshots', meta.id, 'state.enc'));
    expect(raw.includes(Buffer.from('somaxconn'))).toBe(false);
    const entry = await ledger.get(meta.ledgerIndex);
    expect(entry.value).toMatchObject({
      kind: 'snapshot.created',
      id: meta.id,
      cipherHash: meta.cipherHash,
      trigger: { kind: 'apply', txId: 'tx-1' },
    });
    expect((await snaps.load(meta.id)).state).toEqual(state(1));
    expect(await snaps.list()).toEqual([
      expect.objectContaining({ id: meta.id, status: 'ok', plugins: ['sysctl'] }),
    ]);
    expect((await verifyLedger(join(dir, 'ledger'))).ok).toBe(true);
  });

  it('detects an old snapshot replayed over a newer one, a pruned one put back, and one the ledger never saw', async () => {
    const snaps = await open();
    const old = await snaps.create(state(1));
    clock = new Date('2026-11-22T12:00:00Z');
    const newer = await snaps.create(state(2));
    clock = new Date('2026-11-22T14:00:00Z');
    await snaps.create(state(3));
    // Replay: the old snapshot's files copied over the newer one's.
    const newerDir = join(dir, 'snapshots', newer.id);
    await chmod(newerDir, 0o700);
    await cp(join(dir, 'snapshots', old.id, 'state.enc'), join(newerDir, 'state.enc'), { force: true });
    await expect(snaps.load(newer.id)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SNAPSHOT_INVALID',
      message: expect.stringMatching(/replayed or changed/),
    });
    // The description edited to match: the ciphertext no longer authenticates under that id.
    expect((await snaps.list()).find((s) => s.id === newer.id)?.status).toBe('altered');

    // Pruning removes `old` (2 hourly periods kept), and records it; putting it back is detected.
    const backup = join(dir, 'backup');
    await cp(join(dir, 'snapshots', old.id), backup, { recursive: true });
    const dry = await snaps.prune({
      dryRun: true,
      policy: { hourly: 1, daily: 0, weekly: 0, quarterly: 0, minAgeS: 0 },
    });
    expect(dry.removed).toEqual([]);
    expect(dry.remove.map((r) => r.id)).toEqual([old.id]); // the altered `newer` does not take part
    const pruned = await snaps.prune({
      policy: { hourly: 1, daily: 0, weekly: 0, quarterly: 0, minAgeS: 0 },
    });
    expect(pruned.removed).toEqual([old.id]);
    await cp(backup, join(dir, 'snapshots', old.id), { recursive: true });
    await expect(snaps.load(old.id)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SNAPSHOT_INVALID',
      message: expect.stringMatching(/pruned/),
    });

    // A snapshot made elsewhere and dropped in: unknown to the ledger.
    const otherDir = await mkdtemp(join(tmpdir(), 'opdbus-snap-other-'));
    const otherLedger = await Ledger.open({ dir: join(otherDir, 'ledger') });
    const other = await (
      await SnapshotManager.open({
        dir: join(otherDir, 'snapshots'),
        keyFile: join(dir, 'keys', 'snapshot.key'),
        ledger: otherLedger,
        backend: 'directory',
      })
    ).create(state(9));
    await otherLedger.close();
    await cp(join(otherDir, 'snapshots', other.id), join(dir, 'snapshots', other.id), { recursive: true });
    await rm(otherDir, { recursive: true, force: true });
    await expect(snaps.load(other.id)).rejects.toMatchObject({ message: expect.stringMatching(/no record/) });
  });

  it('refuses a snapshot whose ciphertext was flipped even with a matching ledger hash', async () => {
    const snaps = await open();
    const meta = await snaps.create(state(4));
    await expect(snaps.load('20990101T000000.000Z-abcdef')).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SNAPSHOT_NOT_FOUND',
    });
    const file = join(dir, 'snapshots', meta.id, 'state.enc');
    await chmod(join(dir, 'snapshots', meta.id), 0o700);
    await chmod(file, 0o600);
    const bytes = await readFile(file);
    bytes[30] = bytes[30]! ^ 1;
    await writeFile(file, bytes);
    await expect(snaps.load(meta.id)).rejects.toMatchObject({ code: 'OPDBUS_ERR_SNAPSHOT_INVALID' });
  });
});

const probe = probeSandbox();
describeIf(probe.btrfs, 'snapshots as btrfs read-only subvolumes', () => {
  let fs: BtrfsLoop;
  beforeAll(async () => {
    fs = await createBtrfsLoop({ size: '256M' });
  });
  afterAll(async () => {
    await fs?.destroy();
  });

  it('creates read-only subvolume snapshots, exports them with btrfs send (full and incremental) and imports them with receive', async () => {
    // Host A's state directory is a btrfs subvolume; host B is another one on the same filesystem.
    const a = join(fs.mountPoint, 'a');
    const b = join(fs.mountPoint, 'b');
    await btrfs(['subvolume', 'create', a]);
    await btrfs(['subvolume', 'create', b]);
    const ledgerA = await Ledger.open({ dir: join(a, 'ledger') });
    const snapsA = await SnapshotManager.open({
      dir: join(a, 'snapshots'),
      keyFile: join(a, 'keys', 'snapshot.key'),
      ledger: ledgerA,
    });
    expect(snapsA.backend.kind).toBe('btrfs');
    const first = await snapsA.create(state(1));
    const second = await snapsA.create(state(2));
    const show = await btrfs(['subvolume', 'show', join(a, 'snapshots', first.id)]);
    expect(show.stdout).toMatch(/Flags:\s+readonly/);
    await expect(writeFile(join(a, 'snapshots', first.id, 'state.enc'), 'x')).rejects.toMatchObject({
      code: 'EROFS',
    });
    expect((await snapsA.load(second.id)).state).toEqual(state(2));

    const full = join(fs.mountPoint, 'full.stream');
    const incremental = join(fs.mountPoint, 'incremental.stream');
    await snapsA.export(first.id, full);
    await snapsA.export(second.id, incremental, first.id);
    // A full stream starts a new subvolume; an incremental one is a snapshot of its parent.
    expect((await btrfs(['receive', '--dump', '-f', full])).stdout).toMatch(
      new RegExp(`^subvol\\s+\\./${first.id.replace('.', '\\.')}`, 'm'),
    );
    expect((await btrfs(['receive', '--dump', '-f', incremental])).stdout).toMatch(
      /^snapshot\s+\S+.*parent_uuid=/m,
    );
    await ledgerA.close();

    // Host B shares A's snapshot key (restoring A's backups) but has its own ledger.
    await cp(join(a, 'keys'), join(b, 'keys'), { recursive: true });
    const ledgerB = await Ledger.open({ dir: join(b, 'ledger') });
    const snapsB = await SnapshotManager.open({
      dir: join(b, 'snapshots'),
      keyFile: join(b, 'keys', 'snapshot.key'),
      ledger: ledgerB,
    });
    const got1 = await snapsB.import(full);
    const got2 = await snapsB.import(incremental);
    expect([got1.id, got2.id]).toEqual([first.id, second.id]);
    expect((await snapsB.load(second.id)).state).toEqual(state(2));
    expect((await snapsB.list()).map((s) => s.status)).toEqual(['ok', 'ok']);
    const pruned = await snapsB.prune({
      policy: { hourly: 0, daily: 0, weekly: 0, quarterly: 0, minAgeS: 0 },
    });
    expect(pruned.removed).toEqual([first.id]);
    await expect(stat(join(b, 'snapshots', first.id))).rejects.toMatchObject({ code: 'ENOENT' });
    await ledgerB.close();
    expect(new BtrfsBackend(join(b, 'snapshots')).staging).toBe(join(b, 'snapshots', '.staging'));
  });
});
