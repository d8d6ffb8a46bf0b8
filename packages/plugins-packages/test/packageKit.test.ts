// Installs, upgrades, downgrades and removals as dpkg itself then reports them; rollback that
// reinstalls a previous version, and says so when the archive no longer has it; plan-time errors.
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, OpdbusError, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { connectBus } from '@opdbus/dbus';
import { silentLogger } from '@opdbus/core';
import { probeSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PackageKit, createPackagesPlugin, type PkProgress } from '../src/index.js';
import { buildArchive, dpkgVersion, startPackagesContainer } from './archive.js';

describeIf(probeSandbox().container, 'packages through PackageKit', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  let engine: Engine;
  const progress: (PkProgress & { change: string })[] = [];
  const registry = new PluginRegistry([createPackagesPlugin({ onProgress: (p) => progress.push(p) })]);
  const doc = (yaml: string) =>
    parseStateDocument(`version: 1\nplugins:\n  packages:\n${yaml}`, { source: 'test.yaml', registry });

  beforeAll(async () => {
    ct = await startPackagesContainer([
      { name: 'opdbus-gamma', version: '1.0' },
      { name: 'opdbus-gamma', version: '1.5' },
      { name: 'opdbus-gamma', version: '2.0' },
    ]);
    stateDir = mkdtempSync(join(tmpdir(), 'opdbus-packages-test-'));
    engine = new Engine({ registry, stateDir, target: { busAddress: ct.busAddress, root: ct.rootDir } });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  });

  it('installs the newest version when none is named, with progress from PackageKit', async () => {
    expect((await engine.apply(doc('    opdbus-gamma: {}\n'))).status).toBe('committed');
    expect(await dpkgVersion(ct, 'opdbus-gamma')).toBe('2.0');
    expect(progress.some((p) => p.change === 'opdbus-gamma' && p.percentage !== undefined)).toBe(true);
  });

  it('moves down and up to named versions, and rollback reinstalls the previous one', async () => {
    expect((await engine.apply(doc('    opdbus-gamma: { version: "1.0" }\n'))).status).toBe('committed');
    expect(await dpkgVersion(ct, 'opdbus-gamma')).toBe('1.0');
    expect((await engine.apply(doc('    opdbus-gamma: { version: "1.5" }\n'))).status).toBe('committed');
    expect(await dpkgVersion(ct, 'opdbus-gamma')).toBe('1.5');
    await engine.rollback();
    expect(await dpkgVersion(ct, 'opdbus-gamma')).toBe('1.0');
  });

  it('refuses unknown packages and versions at plan time, naming the path', async () => {
    await expect(engine.plan(doc('    opdbus-nosuch: {}\n'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PACKAGES_UNKNOWN',
      message: expect.stringContaining('plugins.packages.opdbus-nosuch'),
    });
    await expect(engine.plan(doc('    opdbus-gamma: { version: "9.9" }\n'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PACKAGES_VERSION',
      message: expect.stringContaining('plugins.packages.opdbus-gamma.version'),
    });
    // Absent and not known is simply absent.
    expect((await engine.plan(doc('    opdbus-nosuch: { state: absent }\n'))).plan.changes).toEqual([]);
  });

  it('removes; a rollback whose version left the archive says so', async () => {
    expect((await engine.apply(doc('    opdbus-gamma: { version: "1.5" }\n'))).status).toBe('committed');
    expect((await engine.apply(doc('    opdbus-gamma: { state: absent }\n'))).status).toBe('committed');
    expect(await dpkgVersion(ct, 'opdbus-gamma')).toBeNull();
    // 1.5 leaves the archive; the index is refreshed.
    const repo = join(ct.rootDir, 'srv/repo');
    unlinkSync(join(repo, 'opdbus-gamma_1.5_all.deb'));
    buildArchive(repo, []);
    {
      await using bus = await connectBus({ address: ct.busAddress });
      await new PackageKit(bus, silentLogger).run('RefreshCache', 'b', [true]);
    }
    const err = await engine.rollback().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).message).toMatch(
      /opdbus-gamma: version 1\.5 is not in the repositories any more, so it cannot be reinstalled; it stays removed/,
    );
    expect(await dpkgVersion(ct, 'opdbus-gamma')).toBeNull();
  });
});
