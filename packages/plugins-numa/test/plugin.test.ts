import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, parseStateDocument, type OpdbusError } from '@opdbus/core';
import { readTopology } from '@opdbus/numa';
import { writeSyntheticMachine } from '@opdbus/numa/synthetic';
import { createSystemdPlugin } from '@opdbus/plugins-systemd';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNumaPlugin } from '../src/plugin.js';
import { describeIf } from '@opdbus/sandbox/testing';

const GiB = 1024 ** 3;

describe('numa plugin on a generated 2-socket machine', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-plugins-numa-'));
    writeSyntheticMachine(dir, {
      packages: 2,
      coresPerPackage: 4,
      threadsPerCore: 2,
      nodesPerPackage: 1,
      memoryPerNodeBytes: 32 * GiB,
      pci: [
        {
          address: '0000:3b:00.0',
          class: 0x030200,
          vendor: 0x10de,
          device: 0x2330,
          node: 1,
          driver: 'nvidia',
          drm: ['card0'],
        },
      ],
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('expands placements into systemd unit properties, with the reason', async () => {
    const plugin = createNumaPlugin({ root: dir });
    const topology = await readTopology({ root: dir });
    const gpuNodeCpus = topology.nodes.find((n) => n.id === 1)!.cpus;
    const expansion = await plugin.expand(
      { placements: { 'train.service': { cpus: 4, memory: '8G', near: 'card0' } } },
      undefined as never,
    );
    const props = (
      expansion.sections.systemd as {
        units: Record<
          string,
          { properties: { CPUAffinity: number[]; NUMAPolicy: string; NUMAMask: number[] } }
        >;
      }
    ).units['train.service']!.properties;
    expect(props.CPUAffinity).toHaveLength(4);
    expect(props.CPUAffinity.every((cpu) => gpuNodeCpus.includes(cpu))).toBe(true);
    expect(props.NUMAMask).toEqual([1]);
    expect(props.NUMAPolicy).toBe('bind');
    expect(expansion.notes).toEqual([
      { plugin: 'systemd', resource: 'unit/train.service', note: expect.stringMatching(/^numa: .*node 1/) },
    ]);
  });

  it('places a machine as its unit, together with the units, and names it in errors', async () => {
    const plugin = createNumaPlugin({ root: dir });
    const topology = await readTopology({ root: dir });
    const expansion = await plugin.expand(
      {
        placements: { 'a.service': { cpus: 4, node: 0, exclusive: true } },
        machines: { web: { cpus: 2, node: 0, exclusive: true } },
      },
      undefined as never,
    );
    const units = (
      expansion.sections.systemd as {
        units: Record<string, { properties: { CPUAffinity: number[]; NUMAMask: number[] } }>;
      }
    ).units;
    const web = units['systemd-nspawn@web.service']!.properties;
    const a = units['a.service']!.properties;
    expect(web.NUMAMask).toEqual([0]);
    expect(web.CPUAffinity).toHaveLength(2);
    expect(web.CPUAffinity.every((cpu) => topology.nodes.find((n) => n.id === 0)!.cpus.includes(cpu))).toBe(
      true,
    );
    // Exclusive placements share the node out: no CPU twice.
    expect(web.CPUAffinity.filter((cpu) => a.CPUAffinity.includes(cpu))).toEqual([]);
    expect(expansion.notes).toContainEqual({
      plugin: 'containers',
      resource: 'machine/web',
      note: expect.stringMatching(/^numa: systemd-nspawn@web\.service: .*node 0/),
    });
    await expect(
      plugin.expand({ machines: { big: { cpus: 64 } } }, undefined as never),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/^OPDBUS_ERR_NUMA_/),
      message: expect.stringContaining('Placement of machine big (plugins.numa.machines["big"])'),
      data: expect.objectContaining({ path: 'plugins.numa.machines["big"]', machine: 'big' }),
    });
  });

  it('refuses a machine that is also placed as its unit, and a name that is not a machine name', () => {
    const plugin = createNumaPlugin({ root: dir });
    const both = plugin.schema.safeParse({
      placements: { 'systemd-nspawn@web.service': { cpus: 1 } },
      machines: { web: { cpus: 1 } },
    });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]).toMatchObject({ path: ['machines', 'web'] });
    const bad = plugin.schema.safeParse({ machines: { 'no/such': { cpus: 1 } } });
    expect(bad.error?.issues[0]).toMatchObject({ path: ['machines', 'no/such'] });
  });

  it('contributes nothing when there are no placements', async () => {
    const plugin = createNumaPlugin({ root: dir });
    expect(await plugin.expand({ placements: {} }, undefined as never)).toEqual({ sections: {} });
  });

  it('names the request that cannot be met', async () => {
    const plugin = createNumaPlugin({ root: dir });
    await expect(
      plugin.expand({ placements: { 'big.service': { cpus: 64 } } }, undefined as never),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/^OPDBUS_ERR_NUMA_/),
      message: expect.stringContaining('plugins.numa.placements["big.service"]'),
    });
  });
});

const probe = probeSandbox().container;

describeIf(probe, 'numa placement applied through systemd in a container', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  const registry = new PluginRegistry([createSystemdPlugin({ jobTimeoutMs: 30_000 }), createNumaPlugin()]);
  let engine: Engine;
  const doc = (plugins: object) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'placement.yaml', registry });
  const show = async (unit: string, property: string): Promise<string> =>
    (await ct.exec('systemctl', ['show', '-p', property, '--value', unit], { check: true })).stdout.trim();

  beforeAll(async () => {
    ct = await startSystemdContainer();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-plugins-numa-ct-'));
    engine = new Engine({ registry, stateDir, target: { busAddress: ct.busAddress, root: ct.rootDir } });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('places a running service on this machine, verified in the process, and rolls back', async () => {
    const topology = await readTopology();
    const desired = doc({
      systemd: {
        units: {
          'opdbus-placed.service': { content: '[Service]\nExecStart=/bin/sleep infinity\n', active: true },
        },
      },
      numa: { placements: { 'opdbus-placed.service': { cpus: 1, node: topology.nodes[0]!.id } } },
    });
    const planned = await engine.plan(desired);
    expect(planned.notes.map((n) => n.resource)).toEqual(['unit/opdbus-placed.service']);
    const cpu = (
      planned.desired.systemd as { units: Record<string, { properties: { CPUAffinity: number[] } }> }
    ).units['opdbus-placed.service']!.properties.CPUAffinity;
    expect(cpu).toHaveLength(1);
    expect((await engine.apply(desired)).status).toBe('committed');
    expect(await show('opdbus-placed.service', 'CPUAffinity')).toBe(String(cpu[0]));
    expect(await show('opdbus-placed.service', 'NUMAPolicy')).toBe('bind');
    const pid = await show('opdbus-placed.service', 'MainPID');
    expect((await ct.exec('cat', [`/proc/${pid}/status`], { check: true })).stdout).toMatch(
      new RegExp(`Cpus_allowed_list:\\s+${cpu[0]}\\n`),
    );
    expect((await engine.plan(desired)).plan.changes).toEqual([]);
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await show('opdbus-placed.service', 'LoadState')).toBe('not-found');
  });

  it('refuses a document that pins the same unit elsewhere by hand', async () => {
    const err = (await engine
      .plan(
        doc({
          systemd: {
            units: {
              'x.service': { content: '[Service]\nExecStart=/bin/true\n', properties: { CPUAffinity: [99] } },
            },
          },
          numa: { placements: { 'x.service': { cpus: 1 } } },
        }),
      )
      .catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_PLAN_CONFLICT');
    expect(err.message).toContain('plugins.systemd.units["x.service"].properties.CPUAffinity');
  });
});
