import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, parseStateDocument, type PluginContext } from '@opdbus/core';
import { probeSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createContainersPlugin } from '../src/plugin.js';
import type { ContainersSection, MachineEntry } from '../src/schema.js';
import { makeTinyTree, must, sleeper, startHost } from './helpers.js';

const plugin = createContainersPlugin({ jobTimeoutMs: 60_000 });
const registry = new PluginRegistry([plugin]);
const doc = (section: ContainersSection) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins: { containers: section } }), {
    source: 'test.yaml',
    registry,
  });

const machine = (name: string, address: string, extra: Partial<MachineEntry> = {}): MachineEntry => ({
  name,
  source: { directory: '/srv/tiny' },
  boot: false,
  command: sleeper(address),
  bind: { readOnly: ['/usr'] },
  network: { bridge: 'br0' },
  ...extra,
});

// systemd-nspawn machines inside the sandbox's systemd-nspawn container: machined and systemd
// there are the real ones, reached over the container's system bus.
describeIf(
  probeSandbox().container,
  'containers plugin: nspawn machines through machined, in a systemd container',
  () => {
    let ct: SystemdContainer;
    let stateDir: string;
    const engine = (): Engine =>
      new Engine({
        registry,
        stateDir,
        target: { busAddress: ct.busAddress, root: ct.rootDir },
        verify: { attempts: 10, initialDelayMs: 50 },
      });
    const ctx = (): PluginContext => engine().context('containers');
    const machines = async (): Promise<string> =>
      must(ct, 'machinectl', ['list', '--no-legend', '--no-pager']);

    beforeAll(async () => {
      ct = await startHost();
      stateDir = await mkdtemp(join(tmpdir(), 'opdbus-containers-'));
      await makeTinyTree(ct, '/srv/tiny');
      await must(ct, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
      await must(ct, 'ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'br0']);
      await must(ct, 'ip', ['link', 'set', 'br0', 'up']);
    }, 900_000);
    afterAll(async () => {
      await ct?.stop();
      await rm(stateDir, { recursive: true, force: true });
    });

    it('probes machined and the nspawn unit', async () => {
      expect(await plugin.probe(ctx())).toMatchObject({ available: true });
    });

    it('creates two machines on a bridge, with limits, enabled at boot; machined runs them', async () => {
      const section: ContainersSection = {
        machines: [
          machine('web', '10.1.0.2/24', {
            enabled: true,
            limits: { cpuQuota: 50, memoryMax: '256M', tasksMax: 64 },
          }),
          machine('db', '10.1.0.3/24'),
        ],
      };
      const { plan } = await engine().plan(doc(section));
      expect(plan.changes.map((c) => c.summary)).toEqual([
        'create machine web from /srv/tiny (running)',
        'create machine db from /srv/tiny (running)',
      ]);
      expect((await engine().apply(doc(section))).status).toBe('committed');
      expect(await machines()).toMatch(/^db\s+container\s+systemd-nspawn/m);
      expect(await machines()).toMatch(/^web\s+container\s+systemd-nspawn/m);
      // The veth host ends are ports of br0; the machines configured their ends.
      const ports = await must(ct, 'ip', ['-o', 'link', 'show', 'master', 'br0']);
      expect(ports).toContain('vb-web');
      expect(ports).toContain('vb-db');
      const leader = (await must(ct, 'machinectl', ['show', 'web', '-p', 'Leader', '--value'])).trim();
      expect(await must(ct, 'nsenter', ['-t', leader, '-n', 'ip', '-o', 'addr', 'show', 'host0'])).toContain(
        '10.1.0.2/24',
      );
      // The limits are the unit's properties; enabled means wanted by machines.target.
      const props = await must(ct, 'systemctl', [
        'show',
        'systemd-nspawn@web.service',
        '-p',
        'MemoryMax,TasksMax,CPUQuotaPerSecUSec',
      ]);
      expect(props).toContain('MemoryMax=268435456');
      expect(props).toContain('TasksMax=64');
      expect(props).toContain('CPUQuotaPerSecUSec=500ms');
      expect((await must(ct, 'systemctl', ['is-enabled', 'systemd-nspawn@web.service'])).trim()).toBe(
        'enabled',
      );
      expect(await readFile(ct.path('/etc/systemd/nspawn/web.nspawn'), 'utf8')).toContain('Bridge=br0');
      // Query says the same, and nothing is left to do.
      const observed = await plugin.query(ctx(), { scope: section });
      expect(observed.machines?.[0]).toMatchObject({
        name: 'web',
        state: 'running',
        enabled: true,
        network: { bridge: 'br0' },
        limits: { cpuQuota: 50, memoryMax: 268435456, tasksMax: 64 },
      });
      expect((await engine().plan(doc(section))).plan.changes).toEqual([]);
      const all = await plugin.query(ctx());
      expect(all.machines?.map((m) => m.name).sort()).toEqual(['db', 'web']);
    });

    it('stops a machine, and a rollback starts it again', async () => {
      expect((await engine().apply(doc({ machines: [{ name: 'db', state: 'stopped' }] }))).status).toBe(
        'committed',
      );
      expect(await machines()).not.toMatch(/^db\s/m);
      expect((await engine().rollback()).status).toBe('rolled-back');
      expect(await machines()).toMatch(/^db\s/m);
    });

    it('a machine that fails to start is rolled back with everything created before it', async () => {
      const err = await engine()
        .apply(
          doc({
            machines: [
              machine('first', '10.1.0.4/24'),
              // A bind mount whose source does not exist: nspawn fails while setting the machine
              // up, before it reports it started. (A command that fails to exec fails only after
              // that report: see "Known limits" in the README.)
              { ...machine('broken', '10.1.0.5/24'), bind: { readOnly: ['/usr', '/no/such/dir'] } },
            ],
          }),
        )
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'OPDBUS_ERR_APPLY_FAILED' });
      expect(String((err as Error).message)).toMatch(/broken/);
      expect(await machines()).not.toMatch(/^(first|broken)\s/m);
      const images = await must(ct, 'machinectl', ['list-images', '--no-legend', '--no-pager']);
      expect(images).not.toMatch(/^(first|broken)\s/m);
    });

    it('restores a machine that was removed underneath', async () => {
      await must(ct, 'machinectl', ['stop', 'db']);
      await must(ct, 'systemctl', ['stop', 'systemd-nspawn@db.service']);
      await must(ct, 'machinectl', ['remove', 'db']);
      const section: ContainersSection = { machines: [machine('db', '10.1.0.3/24')] };
      const { plan } = await engine().plan(doc(section));
      expect(plan.changes.map((c) => c.summary)).toEqual(['create machine db from /srv/tiny (running)']);
      expect((await engine().apply(doc(section))).status).toBe('committed');
      expect(await machines()).toMatch(/^db\s/m);
    });

    it('removes a machine and its image; a rollback brings both back', async () => {
      expect((await engine().apply(doc({ machines: [{ name: 'web', state: 'absent' }] }))).status).toBe(
        'committed',
      );
      expect(await machines()).not.toMatch(/^web\s/m);
      expect(await must(ct, 'machinectl', ['list-images', '--no-legend', '--no-pager'])).not.toMatch(
        /^web\s/m,
      );
      expect((await engine().rollback()).status).toBe('rolled-back');
      expect(await machines()).toMatch(/^web\s/m);
      const images = await must(ct, 'machinectl', ['list-images', '--no-legend', '--no-pager']);
      expect(images).toMatch(/^web\s/m);
      expect(images).not.toMatch(/opdbus-ckpt-/);
    });

    it('creates a machine from a tarball (made with tar(1) in the container), and removes it', async () => {
      await must(ct, 'tar', ['-czf', '/srv/tiny.tar.gz', '-C', '/srv/tiny', '.']);
      const section: ContainersSection = {
        machines: [machine('packed', '10.1.0.6/24', { source: { tarball: '/srv/tiny.tar.gz' } })],
      };
      const { plan } = await engine().plan(doc(section));
      expect(plan.changes.map((c) => c.summary)).toEqual([
        'create machine packed from tarball /srv/tiny.tar.gz (running)',
      ]);
      expect((await engine().apply(doc(section))).status).toBe('committed');
      expect(await machines()).toMatch(/^packed\s/m);
      // The image is the archive's tree, symlinks included.
      expect(await must(ct, 'readlink', ['/var/lib/machines/packed/bin'])).toBe('usr/bin\n');
      expect(await must(ct, 'cat', ['/var/lib/machines/packed/etc/os-release'])).toContain('ID=opdbus-test');
      expect((await engine().plan(doc(section))).plan.changes).toEqual([]);
      expect((await engine().apply(doc({ machines: [{ name: 'packed', state: 'absent' }] }))).status).toBe(
        'committed',
      );
      expect(await machines()).not.toMatch(/^packed\s/m);
    });

    it('refuses a tarball that is not an archive, and leaves no image behind', async () => {
      await must(ct, 'sh', ['-c', 'echo not a tar archive > /srv/bogus.tar']);
      const err = await engine()
        .apply(
          doc({ machines: [machine('bogus', '10.1.0.7/24', { source: { tarball: '/srv/bogus.tar' } })] }),
        )
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'OPDBUS_ERR_APPLY_FAILED' });
      expect(String((err as Error).message)).toMatch(/bogus\.tar/);
      const images = await must(ct, 'machinectl', ['list-images', '--no-legend', '--no-pager']);
      expect(images).not.toMatch(/^bogus\s/m);
    });
  },
);
