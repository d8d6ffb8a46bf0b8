import { execFile } from 'node:child_process';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { Sandbox, liveSandboxIds, probeSandbox, type Requirement } from '../src/index.js';
import { describeIf, mountPoints, netnsExists, netnsLinks, running } from './helpers.js';

const run = promisify(execFile);
const probe = probeSandbox();
const all: Requirement = [probe.netns, probe.dbus, probe.vswitchd, probe.btrfs].find((p) => !p.available) ?? {
  component: 'sandbox',
  available: true,
};

it('probeSandbox reports every kind, with a reason for each one that cannot run', () => {
  expect(probe.root).toBe(process.geteuid?.() === 0);
  for (const kind of ['netns', 'dbus', 'ovsdb', 'vswitchd', 'btrfs'] as const) {
    const result = probe[kind];
    if (!result.available) expect(result.reason).toMatch(/\w/);
  }
  // ovs-vswitchd needs everything ovsdb-server needs, and a namespace.
  if (probe.vswitchd.available) expect(probe.ovsdb.available && probe.netns.available).toBe(true);
  if (!probe.root) expect(probe.netns.available || probe.btrfs.available).toBe(false);
});

describeIf(all, 'Sandbox', () => {
  it('creates a namespace, a bus and Open vSwitch inside it, and a btrfs; destroys them newest first', async () => {
    const sb = new Sandbox();
    const ns = await sb.netns();
    const bus = await sb.dbus({ netns: ns });
    const ovs = await sb.ovs({ vswitchd: true, netns: ns });
    const fs = await sb.btrfs({ size: '128M' });
    expect(sb.resources).toEqual([ns, bus, ovs, fs]);
    expect(liveSandboxIds()).toEqual(expect.arrayContaining([ns.id, bus.id, ovs.id, fs.id]));
    const inode = `net:[${statSync(ns.path).ino}]`;
    expect(readlinkSync(`/proc/${bus.pid}/ns/net`)).toBe(inode);
    expect(readlinkSync(`/proc/${ovs.vswitchdPid ?? 0}/ns/net`)).toBe(inode);
    await run('ovs-vsctl', [
      `--db=${ovs.address}`,
      'add-br',
      'sbxagg',
      '--',
      'set',
      'bridge',
      'sbxagg',
      'datapath_type=netdev',
    ]);
    expect(netnsLinks(ns.name).map((l) => l.ifname)).toContain('sbxagg');

    await sb.destroy();
    expect(sb.destroyed).toBe(true);
    expect([ns, bus, ovs, fs].every((r) => r.destroyed)).toBe(true);
    expect(netnsExists(ns.name)).toBe(false);
    expect([bus.pid, ovs.ovsdbServerPid, ovs.vswitchdPid ?? 0].some(running)).toBe(false);
    expect([bus.dir, ovs.dir, fs.dir].some((d) => existsSync(d))).toBe(false);
    expect(mountPoints()).not.toContain(fs.mountPoint);
    expect(liveSandboxIds()).not.toEqual(expect.arrayContaining([ns.id]));
    await sb.destroy(); // idempotent
    await expect(sb.netns()).rejects.toMatchObject({ code: 'OPDBUS_ERR_SANDBOX_DESTROYED' });
  });

  it('await using destroys everything when the block throws', async () => {
    let nsName = '';
    let busDir = '';
    await expect(
      (async () => {
        await using sb = new Sandbox();
        const ns = await sb.netns();
        nsName = ns.name;
        busDir = (await sb.dbus({ netns: ns })).dir;
        throw new Error('the test failed');
      })(),
    ).rejects.toThrow('the test failed');
    expect(nsName).not.toBe('');
    expect(netnsExists(nsName)).toBe(false);
    expect(existsSync(busDir)).toBe(false);
  });
});
