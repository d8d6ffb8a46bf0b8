import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
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
    expect((await ct.exec('cat', ['/etc/opdbus-test'])).stdout).toBe('hello\n');
    expect((await ct.exec('cat', ['/etc/machine-id'])).stdout.trim()).toBe(ct.machineId);
    expect(readFileSync(ct.path('/etc/opdbus-test'), 'utf8')).toBe('hello\n');
    // Paths resolve as the container sees them: `..` stops at its root, its links stay inside.
    expect(ct.path('/../../../etc/hostname')).toBe(join(ct.rootDir, 'etc', 'hostname'));
    symlinkSync('/etc/hostname', join(ct.rootDir, 'opdbus-link'));
    expect(ct.path('/opdbus-link')).toBe(join(ct.rootDir, 'etc', 'hostname'));
    const links = (await ct.exec('ip', ['-o', 'link'])).stdout;
    expect(links).toContain('lo:');
    expect(links).not.toMatch(/eth0|ens|enp/);
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
