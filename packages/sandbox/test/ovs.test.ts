import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { createNetns, listSandboxRecords, probeSandbox, startOvs } from '../src/index.js';
import { describeIf, hostLinks, netnsExists, netnsLinks, running } from './helpers.js';

const run = promisify(execFile);
const probe = probeSandbox();

function vsctl(address: string, ...args: string[]): Promise<{ stdout: string }> {
  return run('ovs-vsctl', [`--db=${address}`, '--timeout=20', ...args]);
}

describeIf(probe.ovsdb, 'startOvs', () => {
  it('ovsdb-server alone: a fresh, initialised Open_vSwitch database; nothing left after stop', async () => {
    const ovs = await startOvs();
    expect(ovs.vswitchd).toBe(false);
    expect(ovs.netns).toBeUndefined();
    expect(ovs.address).toBe(`unix:${ovs.dir}/db.sock`);
    expect(running(ovs.ovsdbServerPid)).toBe(true);
    // Fresh: no bridges, and `init` ran (the Open_vSwitch row exists).
    expect((await vsctl(ovs.address, 'list-br')).stdout).toBe('');
    expect((await vsctl(ovs.address, 'get', 'Open_vSwitch', '.', 'ovs_version')).stdout.trim()).not.toBe('');
    await vsctl(ovs.address, '--no-wait', 'add-br', 'sbx0');
    expect((await vsctl(ovs.address, 'list-br')).stdout.trim()).toBe('sbx0');

    await ovs.stop();
    expect(running(ovs.ovsdbServerPid)).toBe(false);
    expect(existsSync(ovs.dir)).toBe(false);
    expect(listSandboxRecords().some((r) => r.record.id === ovs.id)).toBe(false);
    await ovs.destroy(); // idempotent
  });

  it('a missing or broken schema fails with a clear error and leaves nothing behind', async () => {
    const mine = (): string[] =>
      readdirSync(tmpdir()).filter((n) => n.startsWith(`opdbus-sbx-${process.pid}-`));
    const before = mine();
    await expect(startOvs({ schema: '/nonexistent/vswitch.ovsschema' })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_SANDBOX_MISSING_TOOL',
      message: expect.stringContaining('apt-get install openvswitch-switch') as unknown,
    });
    const schema = join(mkdtempSync(join(tmpdir(), 'opdbus-schema-')), 'broken.ovsschema');
    writeFileSync(schema, '{ "name": 42 }');
    try {
      await expect(startOvs({ schema })).rejects.toMatchObject({
        code: 'OPDBUS_ERR_SANDBOX_COMMAND',
        message: expect.stringMatching(
          /Creating the OVSDB database: `.*ovsdb-tool create .*` exited with 1/,
        ) as unknown,
      });
    } finally {
      rmSync(dirname(schema), { recursive: true });
    }
    expect(mine()).toEqual(before);
  });

  it('clustered: a one-server Raft database that ovs-vsctl uses like a standalone one', async () => {
    await using ovs = await startOvs({ clustered: true });
    expect(ovs.clustered).toBe(true);
    await vsctl(ovs.address, '--no-wait', 'add-br', 'sbxraft');
    expect((await vsctl(ovs.address, 'list-br')).stdout.trim()).toBe('sbxraft');
    const { stdout } = await run(
      'ovs-appctl',
      ['-t', join(ovs.dir, 'ovsdb-server.ctl'), 'cluster/status', 'Open_vSwitch'],
      {
        env: { ...process.env, ...ovs.env },
      },
    );
    expect(stdout).toMatch(/Role: leader/);
  });

  describeIf(probe.vswitchd, 'with ovs-vswitchd (userspace datapath)', () => {
    it('runs inside its own namespace: netdev bridges appear there and never on the host', async () => {
      const ovs = await startOvs({ vswitchd: true });
      const netns = ovs.netns?.name ?? '';
      expect(netns).toMatch(/^opdbus-sbx-/);
      const vswitchdPid = ovs.vswitchdPid ?? 0;
      expect(running(vswitchdPid)).toBe(true);
      const inode = statSync(`/run/netns/${netns}`).ino;
      expect(readlinkSync(`/proc/${vswitchdPid}/ns/net`)).toBe(`net:[${inode}]`);
      expect(readlinkSync(`/proc/${ovs.ovsdbServerPid}/ns/net`)).toBe(`net:[${inode}]`);

      const bridge = `sbxbr${process.pid % 100000}`;
      // Without --no-wait, ovs-vsctl returns once ovs-vswitchd has applied the change.
      await vsctl(ovs.address, 'add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=netdev');
      expect(netnsLinks(netns).map((l) => l.ifname)).toContain(bridge);
      expect(hostLinks()).not.toContain(bridge);
      expect((await vsctl(ovs.address, 'get', 'Interface', bridge, 'ofport')).stdout.trim()).toBe('65534');

      await ovs.stop();
      expect(running(vswitchdPid)).toBe(false);
      expect(running(ovs.ovsdbServerPid)).toBe(false);
      expect(netnsExists(netns)).toBe(false);
      expect(existsSync(ovs.dir)).toBe(false);
      expect(hostLinks()).not.toContain(bridge);
    });

    it('uses a namespace it is given, and leaves that namespace alone', async () => {
      await using ns = await createNetns();
      const ovs = await startOvs({ vswitchd: true, netns: ns });
      expect(ovs.netns).toBe(ns);
      await vsctl(
        ovs.address,
        'add-br',
        'sbxgiven',
        '--',
        'set',
        'bridge',
        'sbxgiven',
        'datapath_type=netdev',
      );
      expect(netnsLinks(ns.name).map((l) => l.ifname)).toContain('sbxgiven');
      await ovs.stop();
      // exit --cleanup removed the bridge's tap device; the namespace itself is still there.
      expect(netnsExists(ns.name)).toBe(true);
      expect(netnsLinks(ns.name).map((l) => l.ifname)).not.toContain('sbxgiven');
    });
  });
});
