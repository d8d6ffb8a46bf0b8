import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { createOvsPlugin } from '@opdbus/plugins-ovs';
import { probeSandbox, startOvs, type OvsSandbox, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createContainersPlugin } from '../src/plugin.js';
import type { MachineEntry } from '../src/schema.js';
import { makeTinyTree, must, sleeper, startHost } from './helpers.js';

const run = promisify(execFile);
const probe = probeSandbox();
const registry = new PluginRegistry([createOvsPlugin(), createContainersPlugin({ jobTimeoutMs: 60_000 })]);
const doc = (plugins: object) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'ovs.yaml', registry });

const machine: MachineEntry = {
  name: 'sw1',
  source: { directory: '/srv/tiny' },
  boot: false,
  command: sleeper('10.2.0.2/24'),
  bind: { readOnly: ['/usr'] },
  network: { ovsBridge: 'br-int' },
};
const bridge = { name: 'br-int', datapath_type: 'netdev' };

// A machine whose veth host end is a port of an Open vSwitch bridge: ovsdb-server and
// ovs-vswitchd (userspace datapath) run in the network namespace of the sandbox's systemd
// container, where nspawn creates the machines' veths; the ovs plugin makes the bridge and the
// containers plugin the machine and its port, in one plan.
describeIf([probe.container, probe.vswitchd], 'containers + ovs: a machine on an Open vSwitch bridge', () => {
  let ct: SystemdContainer;
  let ovs: OvsSandbox;
  let stateDir: string;
  let engine: Engine;
  const vsctl = async (...args: string[]): Promise<string> =>
    (await run('ovs-vsctl', [`--db=${ovs.address}`, '--timeout=60', ...args])).stdout.trim();
  const leader = async (): Promise<string> =>
    (await must(ct, 'machinectl', ['show', 'sw1', '-p', 'Leader', '--value'])).trim();

  beforeAll(async () => {
    ct = await startHost();
    ovs = await startOvs({ vswitchd: true, netns: openNetns(`/proc/${ct.leaderPid}/ns/net`) });
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-containers-ovs-'));
    await makeTinyTree(ct, '/srv/tiny');
    engine = new Engine({
      registry,
      stateDir,
      target: { busAddress: ct.busAddress, root: ct.rootDir, ovsdbAddress: ovs.address },
      verify: { attempts: 10, initialDelayMs: 50 },
    });
  }, 900_000);
  afterAll(async () => {
    await ovs?.stop();
    await ct?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('makes the bridge, then the machine with its veth as a port; the machine end has link', async () => {
    const desired = doc({ ovs: { bridges: [bridge] }, containers: { machines: [machine] } });
    const { plan } = await engine.plan(desired);
    expect(plan.changes.map((c) => `${c.plugin}:${c.resource}`)).toEqual([
      'ovs:bridge/br-int',
      'containers:machine/sw1',
    ]);
    expect((await engine.apply(desired)).status).toBe('committed');
    expect((await vsctl('list-ports', 'br-int')).split('\n')).toContain('ve-sw1');
    expect(await vsctl('get', 'Interface', 've-sw1', 'external_ids:opdbus-machine')).toBe('sw1');
    // ovs-vswitchd opened the device and sees its link up: both ends are up.
    await vsctl('wait-until', 'Interface', 've-sw1', 'link_state=up');
    expect(await vsctl('get', 'Interface', 've-sw1', 'error')).toBe('[]');
    expect(Number(await vsctl('get', 'Interface', 've-sw1', 'ofport'))).toBeGreaterThan(0);
    const link = await must(ct, 'nsenter', ['-t', await leader(), '-n', 'ip', '-o', 'link', 'show', 'host0']);
    expect(link).toMatch(/[<,]LOWER_UP[,>]/);
    expect(link).toMatch(/state UP/);
    const containers = engine.registry.require('containers');
    if (containers.query === undefined) throw new Error('the containers plugin has no query');
    const observed = await containers.query(engine.context('containers'), {
      scope: { machines: [machine] },
    });
    expect(observed.machines[0]).toMatchObject({
      name: 'sw1',
      state: 'running',
      network: { ovsBridge: 'br-int', hostInterface: 've-sw1' },
    });
    expect((await engine.plan(desired)).plan.changes).toEqual([]);
  });

  it('puts the port back when it was removed underneath, without restarting the machine', async () => {
    const pid = await leader();
    await vsctl('del-port', 'br-int', 've-sw1');
    const desired = doc({ ovs: { bridges: [bridge] }, containers: { machines: [machine] } });
    const { plan } = await engine.plan(desired);
    expect(plan.changes.map((c) => c.summary)).toEqual(['set machine sw1: network']);
    expect((await engine.apply(desired)).status).toBe('committed');
    expect((await vsctl('list-ports', 'br-int')).split('\n')).toContain('ve-sw1');
    await vsctl('wait-until', 'Interface', 've-sw1', 'link_state=up');
    expect(await leader()).toBe(pid);
  });

  it('removes the machine and its port; a rollback brings both back', async () => {
    expect(
      (await engine.apply(doc({ containers: { machines: [{ name: 'sw1', state: 'absent' }] } }))).status,
    ).toBe('committed');
    expect(await vsctl('list-ports', 'br-int')).not.toContain('ve-sw1');
    expect(await must(ct, 'ls', ['/etc/systemd/system'])).not.toContain('systemd-nspawn@sw1.service.d');
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect((await vsctl('list-ports', 'br-int')).split('\n')).toContain('ve-sw1');
    await vsctl('wait-until', 'Interface', 've-sw1', 'link_state=up');
  });
});
