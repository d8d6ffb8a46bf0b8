import { accessSync, constants as fsc, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ProbeResult } from '@opdbus/core';
import { Netns } from '@opdbus/netlink';
import { defaultCacheDir } from './container.js';
import { VSWITCH_SCHEMA } from './ovs.js';
import { findTool, missingToolMessage, type ToolName } from './tools.js';

/**
 * A probe result that names the component it is about (`netns`, `ovsdb`, …), so a test that
 * needs it can tell whether `OPDBUS_REQUIRE` makes its absence a failure (see
 * `@opdbus/sandbox/testing`).
 */
export type Requirement = ProbeResult & { readonly component: string };

/** Name a probe result's component, or build one from a condition and the reason it fails. */
export function requirement(component: string, probe: ProbeResult | boolean, reason?: string): Requirement {
  if (typeof probe === 'boolean') {
    return probe
      ? { component, available: true }
      : { component, available: false, reason: reason ?? `${component} is not available here` };
  }
  return { ...probe, component };
}

/** Which sandboxes can run on this machine, and why not where they cannot. */
export interface SandboxProbe {
  /** Whether this process runs as root (effective uid 0). */
  root: boolean;
  /** The same as a requirement: tests that need root (component `root`). */
  asRoot: Requirement;
  /** {@link createNetns}: root, the @opdbus/netlink addon, setns(2). */
  netns: Requirement;
  /** {@link startDbusDaemon}: the dbus-daemon program (root is not needed). */
  dbus: Requirement;
  /** {@link startOvs} without vswitchd: ovsdb-server, ovsdb-tool, ovs-vsctl, ovs-appctl and the schema. */
  ovsdb: Requirement;
  /** {@link startOvs} with `vswitchd: true`: all of `ovsdb`, ovs-vswitchd, a network namespace and /dev/net/tun. */
  vswitchd: Requirement;
  /** {@link createBtrfsLoop}: root, mkfs.btrfs, mount, btrfs in the kernel, loop devices. */
  btrfs: Requirement;
  /**
   * {@link startSystemdContainer}: root, systemd-nspawn, nsenter, dbus-send, overlayfs, a cgroup
   * hierarchy, and debootstrap unless the image is cached already.
   */
  container: Requirement;
}

const available: ProbeResult = { available: true };

/** Whether some container image is cached already (then debootstrap is not needed). */
function cachedImageExists(): boolean {
  try {
    const dir = defaultCacheDir();
    return readdirSync(dir).some(
      (name) =>
        /^debian-.*-minbase-[0-9a-f]{12}$/.test(name) && existsSync(join(dir, name, 'usr/lib/os-release')),
    );
  } catch {
    return false;
  }
}

function missing(tools: readonly ToolName[]): ProbeResult | undefined {
  const absent = tools.filter((t) => findTool(t) === undefined);
  if (absent.length === 0) return undefined;
  return { available: false, reason: absent.map(missingToolMessage).join(' ') };
}

function kernelHasBtrfs(): boolean {
  try {
    if (/\tbtrfs$/m.test(readFileSync('/proc/filesystems', 'utf8'))) return true;
  } catch {
    // No /proc: fall through to the module check.
  }
  // Not built in and not loaded yet: mount(8) can still load it when the module exists.
  try {
    const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    return existsSync(`/lib/modules/${release}/kernel/fs/btrfs`);
  } catch {
    return false;
  }
}

function probeNetns(root: boolean): ProbeResult {
  if (!root)
    return {
      available: false,
      reason: 'network namespaces need root (CAP_SYS_ADMIN); run the tests as root.',
    };
  try {
    // Enter our own namespace: loads the native addon and proves setns(2) is allowed, changes nothing.
    const self = Netns.open('/proc/self/ns/net');
    try {
      self.run(() => undefined);
    } finally {
      self.close();
    }
  } catch (err) {
    return { available: false, reason: `cannot enter network namespaces: ${(err as Error).message}` };
  }
  return available;
}

/**
 * Report which sandboxes can run here, and for those that cannot, why (a missing program with
 * the Debian package to install, not root, no kernel support). Synchronous and side-effect free,
 * so test files can use it at the top level:
 *
 * @example
 * ```ts
 * const probe = probeSandbox();
 * describeIf(probe.ovsdb, 'ovs', () => { ... }); // from '@opdbus/sandbox/testing'
 * ```
 */
export function probeSandbox(): SandboxProbe {
  const root = process.geteuid?.() === 0;
  const netns = probeNetns(root);
  const dbus = missing(['dbus-daemon']) ?? available;
  let ovsdb = missing(['ovsdb-server', 'ovsdb-tool', 'ovs-vsctl', 'ovs-appctl']) ?? available;
  if (ovsdb.available && !existsSync(VSWITCH_SCHEMA)) {
    ovsdb = {
      available: false,
      reason: `the Open_vSwitch schema ${VSWITCH_SCHEMA} is missing; install it with \`apt-get install openvswitch-switch\`.`,
    };
  }
  let vswitchd: ProbeResult = ovsdb;
  if (vswitchd.available) vswitchd = missing(['ovs-vswitchd']) ?? available;
  if (vswitchd.available && !netns.available)
    vswitchd = { available: false, reason: `ovs-vswitchd runs in a network namespace, and ${netns.reason}` };
  if (vswitchd.available) {
    try {
      accessSync('/dev/net/tun', fsc.R_OK | fsc.W_OK);
    } catch {
      vswitchd = {
        available: false,
        reason:
          '/dev/net/tun is missing or not accessible: the kernel needs TUN/TAP support for the userspace datapath.',
      };
    }
  }
  let btrfs: ProbeResult = root
    ? available
    : {
        available: false,
        reason: 'mounting a btrfs image on a loop device needs root; run the tests as root.',
      };
  if (btrfs.available) btrfs = missing(['mkfs.btrfs', 'mount', 'umount']) ?? available;
  if (btrfs.available && !kernelHasBtrfs())
    btrfs = {
      available: false,
      reason: 'the kernel has no btrfs support (not in /proc/filesystems, no module to load).',
    };
  if (btrfs.available && !existsSync('/dev/loop-control')) {
    btrfs = {
      available: false,
      reason:
        'no loop device support: /dev/loop-control is missing (in a container, pass the loop devices through).',
    };
  }
  let container: ProbeResult = root
    ? available
    : { available: false, reason: 'a systemd-nspawn container needs root; run the tests as root.' };
  if (container.available)
    container = missing(['systemd-nspawn', 'nsenter', 'dbus-send', 'mount']) ?? available;
  if (container.available) {
    let overlay = false;
    try {
      overlay = /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'));
    } catch {
      overlay = false;
    }
    if (!overlay)
      container = {
        available: false,
        reason: 'the kernel has no overlayfs (containers boot on an overlay of a cached image).',
      };
  }
  if (
    container.available &&
    !existsSync('/sys/fs/cgroup/cgroup.controllers') &&
    !existsSync('/sys/fs/cgroup/systemd/cgroup.procs') &&
    !existsSync('/sys/fs/cgroup/unified/cgroup.procs')
  ) {
    container = {
      available: false,
      reason: 'no cgroup hierarchy under /sys/fs/cgroup to give the container its own cgroup.',
    };
  }
  if (container.available && findTool('debootstrap') === undefined && !cachedImageExists()) {
    container = missing(['debootstrap']) ?? available;
  }
  return {
    root,
    asRoot: requirement(
      'root',
      root,
      'this test needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); run the tests as root.',
    ),
    netns: requirement('netns', netns),
    dbus: requirement('dbus', dbus),
    ovsdb: requirement('ovsdb', ovsdb),
    vswitchd: requirement('vswitchd', vswitchd),
    btrfs: requirement('btrfs', btrfs),
    container: requirement('container', container),
  };
}
