import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';

/** The container image: the sandbox's base plus systemd-container (machined, nspawn, its unit). */
export const CONTAINER_PACKAGES = ['systemd-container'];

/** Boot the sandbox container the machines run in. */
export function startHost(): Promise<SystemdContainer> {
  return startSystemdContainer({ packages: CONTAINER_PACKAGES });
}

/**
 * A minimal machine tree at PATH inside the container: the usual directories and the /usr-merge
 * symlinks; its /usr comes from the host read-only (`bind: { readOnly: ['/usr'] }`), so the
 * machine has the host's shell and iproute2 without a second OS image.
 */
export async function makeTinyTree(ct: SystemdContainer, path: string): Promise<void> {
  const dir = ct.path(path);
  for (const d of ['usr', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'var', 'root'])
    await mkdir(join(dir, d), { recursive: true });
  for (const [link, target] of [
    ['bin', 'usr/bin'],
    ['sbin', 'usr/sbin'],
    ['lib', 'usr/lib'],
    ['lib64', 'usr/lib64'],
  ] as const)
    await symlink(target, join(dir, link));
  await writeFile(join(dir, 'etc/os-release'), 'ID=opdbus-test\nNAME="op-dbus test machine"\n');
}

/** Run a command in the container and fail with its output unless it exits 0. */
export async function must(ct: SystemdContainer, command: string, args: string[]): Promise<string> {
  const r = await ct.exec(command, args);
  if (r.code !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A machine that configures its veth (host0) and then sleeps. */
export function sleeper(address: string): string[] {
  return ['/bin/sh', '-c', `ip addr add ${address} dev host0 && ip link set host0 up && exec sleep infinity`];
}
