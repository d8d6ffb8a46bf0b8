import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { requirement, type Requirement } from '@opdbus/sandbox/testing';
import { findUserspaceImplementation } from '../src/backend.js';

/** What the integration tests need: root, network namespaces, wireguard-go, and wg to cross-check. */
export function wireguardRequirements(): Requirement[] {
  const root = process.getuid?.() === 0;
  const wg = ['/usr/bin/wg', '/usr/local/bin/wg', '/usr/sbin/wg'].some((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return [
    requirement('root', root, 'this test needs root (network namespaces); run the tests as root.'),
    requirement(
      'wireguard-go',
      findUserspaceImplementation() !== undefined,
      'wireguard-go is not installed; install it with `apt-get install --no-install-recommends wireguard-go` (Debian package wireguard-go).',
    ),
    requirement(
      'wg',
      wg,
      'wg is not installed (used to cross-check); install it with `apt-get install --no-install-recommends wireguard-tools`.',
    ),
  ];
}

/** A unique interface name (the UAPI socket directory is shared by every namespace). */
export function uniqueIfname(prefix = 'wgt'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`.slice(0, 15);
}

/** Run a command in a namespace and fail with its output unless it exits 0. */
export async function must(ns: SandboxNetns, command: string, args: string[]): Promise<string> {
  const r = await ns.exec(command, args);
  if (r.code !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Whether `target` answers one ping from `ns` within a second. */
export async function pings(ns: SandboxNetns, target: string): Promise<boolean> {
  const r = await ns.exec('ping', ['-c', '1', '-W', '1', '-n', '-q', target]);
  return r.code === 0;
}

/**
 * Two namespaces joined by a veth pair (10.77.0.1/24 and 10.77.0.2/24): two hosts with an
 * underlay between them.
 */
export async function twoHosts(): Promise<{
  a: SandboxNetns;
  b: SandboxNetns;
  destroy: () => Promise<void>;
}> {
  const a = await createNetns();
  const b = await createNetns();
  const ends = `v${randomBytes(3).toString('hex')}`;
  await must(a, 'ip', [
    'link',
    'add',
    `${ends}a`,
    'type',
    'veth',
    'peer',
    'name',
    `${ends}b`,
    'netns',
    b.name,
  ]);
  await must(a, 'ip', ['addr', 'add', '10.77.0.1/24', 'dev', `${ends}a`]);
  await must(a, 'ip', ['link', 'set', `${ends}a`, 'up']);
  await must(b, 'ip', ['addr', 'add', '10.77.0.2/24', 'dev', `${ends}b`]);
  await must(b, 'ip', ['link', 'set', `${ends}b`, 'up']);
  return {
    a,
    b,
    destroy: async () => {
      await a.destroy();
      await b.destroy();
    },
  };
}
