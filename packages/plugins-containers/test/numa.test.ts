import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { readTopology } from '@opdbus/numa';
import { createNumaPlugin } from '@opdbus/plugins-numa';
import { createSystemdPlugin } from '@opdbus/plugins-systemd';
import { probeSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createContainersPlugin } from '../src/plugin.js';
import type { MachineEntry } from '../src/schema.js';
import { makeTinyTree, must, startHost } from './helpers.js';

const registry = new PluginRegistry([
  createContainersPlugin({ jobTimeoutMs: 60_000 }),
  createSystemdPlugin({ jobTimeoutMs: 60_000 }),
  createNumaPlugin(),
]);
const doc = (plugins: object) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'placed.yaml', registry });

const machine: MachineEntry = {
  name: 'placed',
  source: { directory: '/srv/tiny' },
  boot: false,
  command: ['/bin/sleep', 'infinity'],
  bind: { readOnly: ['/usr'] },
};

// A machine as a NUMA placement target: numa resolves `numa.machines.NAME` into the properties
// of systemd-nspawn@NAME.service (the systemd plugin's change), which the machine's processes
// inherit; one plan with the machine itself, in the sandbox's systemd container.
describeIf(probeSandbox().container, 'containers + numa: a machine placed on a NUMA node', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  let engine: Engine;

  beforeAll(async () => {
    ct = await startHost();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-containers-numa-'));
    await makeTinyTree(ct, '/srv/tiny');
    engine = new Engine({
      registry,
      stateDir,
      target: { busAddress: ct.busAddress, root: ct.rootDir },
      verify: { attempts: 10, initialDelayMs: 50 },
    });
  }, 900_000);
  afterAll(async () => {
    await ct?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('plans the unit placement before the machine, runs the machine there, and rolls both back', async () => {
    const topology = await readTopology({ wholeSystem: true });
    const node = topology.nodes[0]!.id;
    const desired = doc({
      containers: { machines: [machine] },
      numa: { machines: { placed: { cpus: 1, node } } },
    });
    const planned = await engine.plan(desired);
    expect(planned.plan.changes.map((c) => `${c.plugin}:${c.resource}`)).toEqual([
      'systemd:unit/systemd-nspawn@placed.service',
      'containers:machine/placed',
    ]);
    expect(planned.notes).toContainEqual(
      expect.objectContaining({ plugin: 'containers', resource: 'machine/placed' }),
    );
    const cpus = (
      planned.desired.systemd as { units: Record<string, { properties: { CPUAffinity: number[] } }> }
    ).units['systemd-nspawn@placed.service']!.properties.CPUAffinity;
    expect(cpus).toHaveLength(1);
    expect(topology.nodes[0]!.cpus).toContain(cpus[0]);

    expect((await engine.apply(desired)).status).toBe('committed');
    const show = async (property: string): Promise<string> =>
      (
        await must(ct, 'systemctl', ['show', '-p', property, '--value', 'systemd-nspawn@placed.service'])
      ).trim();
    expect(await show('CPUAffinity')).toBe(String(cpus[0]));
    expect(await show('NUMAPolicy')).toBe('bind');
    expect(await show('NUMAMask')).toBe(String(node));
    // The machine's own process (its `command`, in its pid namespace) runs on the placed CPU.
    const leader = (await must(ct, 'machinectl', ['show', 'placed', '-p', 'Leader', '--value'])).trim();
    expect(await must(ct, 'cat', [`/proc/${leader}/cmdline`])).toBe('/bin/sleep\0infinity\0');
    expect(await must(ct, 'cat', [`/proc/${leader}/status`])).toMatch(
      new RegExp(`Cpus_allowed_list:\\s+${cpus[0]}\\n`),
    );
    expect((await engine.plan(desired)).plan.changes).toEqual([]);

    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await must(ct, 'machinectl', ['list', '--no-legend', '--no-pager'])).not.toMatch(/^placed\s/m);
    expect(await show('CPUAffinity')).toBe('');
    await expect(
      readFile(ct.path('/etc/systemd/system/systemd-nspawn@placed.service.d/50-opdbus-properties.conf')),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
