import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import {
  probeSandbox,
  startSystemdContainer,
  listSandboxRecords,
  type SystemdContainer,
} from '../src/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIf, running } from './helpers.js';

const probe = probeSandbox();

describeIf(probe.container, 'systemd-nspawn container', () => {
  let ct: SystemdContainer;
  beforeAll(async () => {
    ct = await startSystemdContainer({ files: { '/etc/opdbus-test': 'hello\n' } });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
  });

  it('boots a real systemd whose system bus is reachable from the host', async () => {
    expect(existsSync(ct.busSocketPath)).toBe(true);
    expect(ct.busAddress).toBe(`unix:path=${ct.busSocketPath}`);
    const state = await ct.exec('systemctl', ['is-system-running']);
    expect(state.stdout.trim()).toMatch(/^(running|degraded)$/);
    expect(readFileSync(`/proc/${ct.leaderPid}/comm`, 'utf8').trim()).toBe('systemd');
  });

  it('runs in its own cgroups, never the host root cgroup', () => {
    expect(ct.cgroups.length).toBeGreaterThan(0);
    for (const cgroup of ct.cgroups) expect(cgroup).toContain(ct.id);
    const lines = readFileSync(`/proc/${ct.leaderPid}/cgroup`, 'utf8');
    for (const line of lines.trim().split('\n')) {
      const path = line.split(':')[2] ?? '';
      if (line.startsWith('0::') || line.includes('name=systemd')) expect(path).toContain(ct.id);
    }
    // PID 1 of the host did not move.
    const host = readFileSync('/proc/1/cgroup', 'utf8');
    expect(host).not.toContain(ct.id);
  });

  it('has the files written before boot, its own machine id, and a private network', async () => {
    expect((await ct.exec('cat', ['/etc/opdbus-test'], { check: true })).stdout).toBe('hello\n');
    expect((await ct.exec('cat', ['/etc/machine-id'])).stdout.trim()).toBe(ct.machineId);
    expect(readFileSync(ct.path('/etc/opdbus-test'), 'utf8')).toBe('hello\n');
    const links = (await ct.exec('ip', ['-o', 'link'], { check: true })).stdout;
    expect(links).toContain('lo:');
    expect(links).not.toMatch(/eth0|ens|enp/);
  });

  it('exec proves it runs inside: an nsenter that does not enter runs nothing on the host', async () => {
    // A stand-in for a misbehaving nsenter (as seen in a chroot): it ignores the namespace
    // options and runs the rest of its command line right here, on the host.
    const bin = mkdtempSync(join(tmpdir(), 'opdbus-fake-nsenter-'));
    const marker = join(bin, 'ran-on-host');
    writeFileSync(
      join(bin, 'nsenter'),
      '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done; shift; exec "$@"\n',
      {
        mode: 0o755,
      },
    );
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const err = await ct.exec('touch', [marker]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpdbusError);
      expect((err as OpdbusError).code).toBe('OPDBUS_ERR_SANDBOX_EXEC');
      expect((err as OpdbusError).message).toContain(ct.machineId);
      expect(existsSync(marker)).toBe(false);
    } finally {
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    }
    // With the real nsenter it runs, inside.
    const inside = await ct.exec('cat', ['/etc/machine-id']);
    expect(inside.code).toBe(0);
    expect(inside.stdout.trim()).toBe(ct.machineId);
  });

  it('exec refuses a leader pid that is not the container any more, before starting anything', async () => {
    const real = ct.leaderPid;
    const marker = join(tmpdir(), `opdbus-not-leader-${process.pid}`);
    Object.defineProperty(ct, 'leaderPid', { value: process.pid, configurable: true });
    try {
      const err = await ct.exec('touch', [marker]).catch((e: unknown) => e);
      expect((err as OpdbusError).code).toBe('OPDBUS_ERR_SANDBOX_EXEC');
      expect((err as OpdbusError).message).toMatch(/is not its leader any more/);
      expect(existsSync(marker)).toBe(false);
    } finally {
      Object.defineProperty(ct, 'leaderPid', { value: real, configurable: true });
    }
  });

  it('stops cleanly: processes, cgroups, mounts, directory and record are gone', async () => {
    const { id, pid, leaderPid, cgroups, dir } = ct;
    await ct.stop();
    expect(running(pid)).toBe(false);
    expect(running(leaderPid)).toBe(false);
    for (const cgroup of cgroups) expect(existsSync(cgroup)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
    expect(listSandboxRecords().some((r) => r.record.id === id)).toBe(false);
  });
});
