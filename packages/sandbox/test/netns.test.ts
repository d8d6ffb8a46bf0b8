import { existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOpdbusError, type NetnsRunner } from '@opdbus/core';
import { runCommand } from '../src/tools.js';
import { afterAll, expect, it } from 'vitest';
import { createNetns, listSandboxRecords, probeSandbox, type SandboxNetns } from '../src/index.js';
import { describeIf, hostLinks, netnsExists, netnsLinks, pidsInNetns, running } from './helpers.js';

const probe = probeSandbox();
const created: SandboxNetns[] = [];
afterAll(async () => {
  for (const ns of created) await ns.destroy().catch(() => undefined);
});

describeIf(probe.netns, 'createNetns', () => {
  it('creates a real, isolated namespace with loopback up, then removes it and everything inside', async () => {
    const ns = await createNetns();
    created.push(ns);
    expect(ns.name).toMatch(/^opdbus-sbx-\d+-[0-9a-f]{8}$/);
    expect(ns.path).toBe(`/run/netns/${ns.name}`);
    expect(netnsExists(ns.name)).toBe(true);
    expect(
      listSandboxRecords().some((r) => r.record.id === ns.name && r.record.kind === 'netns' && !r.stale),
    ).toBe(true);

    // A different namespace from ours, holding only loopback, and loopback is up.
    const inode = statSync(ns.path).ino;
    expect(readlinkSync('/proc/self/ns/net')).not.toBe(`net:[${inode}]`);
    expect(ns.run(() => readlinkSync('/proc/thread-self/ns/net'))).toBe(`net:[${inode}]`);
    const links = netnsLinks(ns.name);
    expect(links.map((l) => l.ifname)).toEqual(['lo']);
    expect(links[0]?.flags).toContain('UP');

    // A process started inside lives in the namespace.
    const sleeper = ns.spawn('sleep', ['600'], { stdio: 'ignore' });
    const pid = sleeper.pid ?? 0;
    const exited = new Promise((resolve) => sleeper.once('exit', resolve));
    expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(`net:[${inode}]`);
    expect(pidsInNetns(ns.name)).toContain(pid);
    expect(ns.pids()).toContain(pid);

    // exec runs a command inside: a link made there is not on the host.
    const veth = `sbxv${process.pid % 100000}`;
    const add = await ns.exec('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`]);
    expect(add.code, add.stderr).toBe(0);
    expect(netnsLinks(ns.name).map((l) => l.ifname)).toContain(veth);
    expect(hostLinks()).not.toContain(veth);

    await ns.destroy();
    await exited;
    expect(running(pid)).toBe(false);
    expect(netnsExists(ns.name)).toBe(false);
    expect(listSandboxRecords().some((r) => r.record.id === ns.name)).toBe(false);
    expect(ns.destroyed).toBe(true);
  });

  it('destroy is idempotent and a destroyed namespace refuses to be used', async () => {
    const ns = await createNetns();
    created.push(ns);
    await Promise.all([ns.destroy(), ns.destroy()]);
    await ns.destroy();
    let error: unknown;
    try {
      ns.run(() => 1);
    } catch (err) {
      error = err;
    }
    expect(isOpdbusError(error, 'OPDBUS_ERR_SANDBOX_DESTROYED')).toBe(true);
  });

  it('keeps the host sysctls unchanged while writing one inside', async () => {
    await using ns = await createNetns();
    const file = '/proc/sys/net/ipv4/ip_default_ttl';
    const host = readFileSync(file, 'utf8').trim();
    const value = host === '99' ? '98' : '99';
    // Opened inside run(): the file is the namespace's.
    ns.run(() => writeFileSync(file, value));
    expect(ns.run(() => readFileSync(file, 'utf8').trim())).toBe(value);
    expect(readFileSync(file, 'utf8').trim()).toBe(host);
  });

  it('never starts a process on the host when entering the namespace did not take effect', async () => {
    const ns = await createNetns();
    const marker = join(tmpdir(), `opdbus-netns-guard-${process.pid}`);
    try {
      // A runner that claims the namespace but runs the function where it is (a broken setns).
      const broken: NetnsRunner = { name: ns.name, path: ns.path, run: (fn) => fn() };
      const err = await runCommand('touch', [marker], { netns: broken }).catch((e: unknown) => e);
      expect(isOpdbusError(err, 'OPDBUS_ERR_SANDBOX_EXEC')).toBe(true);
      expect(existsSync(marker)).toBe(false);
      // The real runner enters, and the command sees the namespace's own interfaces only.
      const inside = await ns.exec('ip', ['-o', 'link']);
      expect(inside.code).toBe(0);
      expect(inside.stdout.trim().split('\n')).toHaveLength(1);
    } finally {
      await ns.destroy();
    }
  });

  it('loopbackUp: false leaves loopback down', async () => {
    await using ns = await createNetns({ loopbackUp: false });
    expect(netnsLinks(ns.name)[0]?.flags).not.toContain('UP');
  });
});
