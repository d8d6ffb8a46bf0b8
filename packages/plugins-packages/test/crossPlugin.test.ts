// Nothing half-applied across plugins: one document that installs a package, creates a user and
// sets an sshd option that sshd -t refuses. The ssh change fails last, and the transaction rolls
// back all three: dpkg no longer has the package, getent no longer knows the user, the drop-in is as
// it was. Real PackageKit, shadow files and sshd in a systemd-nspawn container.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, OpdbusError, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { SSHD_DROPIN, sshPlugin } from '@opdbus/plugins-ssh';
import { usersPlugin } from '@opdbus/plugins-users';
import { probeSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPackagesPlugin } from '../src/index.js';
import { dpkgVersion, startPackagesContainer } from './archive.js';

describeIf(probeSandbox().container, 'packages + users + ssh in one transaction', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  let engine: Engine;
  // The built-in order: packages before users, users before ssh.
  const registry = new PluginRegistry([createPackagesPlugin(), usersPlugin, sshPlugin]);

  beforeAll(async () => {
    ct = await startPackagesContainer([{ name: 'opdbus-delta', version: '1.0' }]);
    stateDir = mkdtempSync(join(tmpdir(), 'opdbus-cross-plugin-'));
    engine = new Engine({ registry, stateDir, target: { busAddress: ct.busAddress, root: ct.rootDir } });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  });

  it('a failure in the last plugin rolls back the package install and the new user too', async () => {
    const dropIn = (): string | null => {
      try {
        return readFileSync(join(ct.rootDir, SSHD_DROPIN), 'utf8');
      } catch {
        return null;
      }
    };
    const before = dropIn();
    const doc = parseStateDocument(
      JSON.stringify({
        version: 1,
        plugins: {
          packages: { 'opdbus-delta': {} },
          users: { users: { mallory: { uid: 2666 } } },
          ssh: { sshd: { AuthenticationMethods: ['publickey,bogus-method'] } },
        },
      }),
      { source: 'cross.yaml', registry },
    );
    const plan = await engine.plan(doc);
    expect(plan.plan.changes.map((c) => c.plugin)).toEqual(['packages', 'users', 'ssh']);
    const err = await engine.apply(doc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).message).toMatch(/sshd -t refused the drop-in/);
    expect((err as OpdbusError).message).toMatch(/rolled back/);
    // The package and the user were really there before the ssh change failed.
    const record = await engine.state.read((err as OpdbusError).data?.txId as string);
    const applied = new Set(record.applied);
    expect(plan.plan.changes.filter((c) => applied.has(c.id)).map((c) => c.plugin)).toEqual([
      'packages',
      'users',
    ]);
    expect(record.status).toBe('rolled-back');
    expect(await dpkgVersion(ct, 'opdbus-delta')).toBeNull();
    expect((await ct.exec('getent', ['passwd', 'mallory'])).code).toBe(2);
    expect(dropIn()).toBe(before);
  });
});
