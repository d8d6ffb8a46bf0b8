// A hermetic apt archive for the tests: small .deb packages built here with dpkg-deb, indexed with
// dpkg-scanpackages, served from a file: repository inside a systemd-nspawn container that runs
// PackageKit and polkit. Nothing comes from a network.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus } from '@opdbus/dbus';
import { silentLogger } from '@opdbus/core';
import { startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { PackageKit } from '../src/index.js';

/** The container image's extra packages: one cached image shared with the other issue-21 plugins' tests. */
export const containerPackages = [
  'accountsservice',
  'openssh-server',
  'systemd-resolved',
  'packagekit',
  'polkitd',
];

export interface DebSpec {
  name: string;
  version: string;
  /** A preinst that fails: dpkg refuses the install and leaves the package not installed. */
  failingPreinst?: boolean;
}

/** Build .debs into `dir` and write its Packages index. */
export function buildArchive(dir: string, debs: readonly DebSpec[]): void {
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'opdbus-debs-'));
  try {
    for (const deb of debs) {
      const root = join(work, `${deb.name}-${deb.version}`);
      mkdirSync(join(root, 'DEBIAN'), { recursive: true });
      mkdirSync(join(root, 'usr/share', deb.name), { recursive: true });
      writeFileSync(join(root, 'usr/share', deb.name, 'version'), `${deb.version}\n`);
      writeFileSync(
        join(root, 'DEBIAN/control'),
        `Package: ${deb.name}\nVersion: ${deb.version}\nArchitecture: all\nMaintainer: op-dbus tests <tests@opdbus.invalid>\nDescription: op-dbus test package\n Built by the packages plugin's tests.\n`,
      );
      if (deb.failingPreinst === true)
        writeFileSync(join(root, 'DEBIAN/preinst'), '#!/bin/sh\necho "preinst refuses" >&2\nexit 1\n', {
          mode: 0o755,
        });
      execFileSync(
        'dpkg-deb',
        ['--build', '--root-owner-group', root, join(dir, `${deb.name}_${deb.version}_all.deb`)],
        {
          stdio: 'ignore',
        },
      );
    }
    const index = execFileSync('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    writeFileSync(join(dir, 'Packages'), index);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Boot a container whose only apt source is the archive in /srv/repo, online as far as PackageKit
 * can tell (a default route over a veth pair inside the container: PackageKit refuses to refresh
 * while offline), with the package index refreshed through PackageKit.
 */
export async function startPackagesContainer(debs: readonly DebSpec[]): Promise<SystemdContainer> {
  const ct = await startSystemdContainer({ packages: containerPackages });
  try {
    buildArchive(join(ct.rootDir, 'srv/repo'), debs);
    writeFileSync(join(ct.rootDir, 'etc/apt/sources.list'), 'deb [trusted=yes] file:/srv/repo ./\n');
    for (const args of [
      ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1'],
      ['addr', 'add', '10.9.9.1/24', 'dev', 'up0'],
      ['link', 'set', 'up0', 'up'],
      ['link', 'set', 'up1', 'up'],
      ['route', 'add', 'default', 'via', '10.9.9.2'],
    ]) {
      const r = await ct.exec('ip', args);
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    }
    await using bus = await connectBus({ address: ct.busAddress });
    await new PackageKit(bus, silentLogger).run('RefreshCache', 'b', [false]);
    return ct;
  } catch (err) {
    await ct.stop();
    throw err;
  }
}

/** What dpkg itself says is installed (`dpkg-query` inside the container). */
export async function dpkgVersion(ct: SystemdContainer, name: string): Promise<string | null> {
  const r = await ct.exec('dpkg-query', ['-W', '-f', '${Status}|${Version}', name]);
  if (r.code !== 0) return null;
  const [status, version] = r.stdout.trim().split('|');
  return status === 'install ok installed' ? (version ?? null) : null;
}
