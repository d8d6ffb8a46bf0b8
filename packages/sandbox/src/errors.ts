import { defineErrorCodes } from '@opdbus/core';

/**
 * The error codes of @opdbus/sandbox, thrown as `OpdbusError`. Creating a network namespace
 * can also throw `OPDBUS_ERR_NETNS` from @opdbus/netlink.
 */
export const sandboxErrors = defineErrorCodes({
  OPDBUS_ERR_SANDBOX_MISSING_TOOL: {
    summary: 'A program a sandbox needs (dbus-daemon, ovsdb-server, mkfs.btrfs ...) is not installed.',
    remedy:
      'Install the Debian package the message names (e.g. `apt-get install openvswitch-switch`), or skip the test with `probeSandbox()`.',
  },
  OPDBUS_ERR_SANDBOX_PERMISSION: {
    summary: 'The sandbox needs root (CAP_SYS_ADMIN) for network namespaces, mounts and loop devices.',
    remedy:
      'Run the tests as root (or in a container where you are root), or skip them with `probeSandbox()`.',
  },
  OPDBUS_ERR_SANDBOX_UNSUPPORTED: {
    summary: 'The kernel lacks a feature the sandbox needs (btrfs, loop devices, /dev/net/tun).',
    remedy: 'Use a kernel with the feature (or load its module), or skip the test with `probeSandbox()`.',
  },
  OPDBUS_ERR_SANDBOX_INVALID_OPTION: {
    summary: 'An option passed to a sandbox function is not valid (a size, a path, a name).',
    remedy: 'Correct the option named in the message.',
  },
  OPDBUS_ERR_SANDBOX_START: {
    summary:
      'A sandbox daemon (dbus-daemon, ovsdb-server, ovs-vswitchd) did not start or did not become ready in time.',
    remedy: 'Read the log tail in the message (and the log file it names); nothing was left behind.',
  },
  OPDBUS_ERR_SANDBOX_COMMAND: {
    summary: 'A command that sets up a sandbox (ovsdb-tool, ovs-vsctl, mkfs.btrfs, mount) failed.',
    remedy: 'Read the command and its output in the message; nothing was left behind.',
  },
  OPDBUS_ERR_SANDBOX_CLEANUP: {
    summary: 'Destroying a sandbox left something behind (a process, a mount, a namespace, a directory).',
    remedy: 'Inspect what the message lists; `reapStaleSandboxes()` retries once this process has exited.',
  },
  OPDBUS_ERR_SANDBOX_EXEC: {
    summary:
      'A command meant to run inside a sandbox (a container, a network namespace) could not be proven to run there, so it was not run.',
    remedy:
      'The message says what was found instead (another machine id, a recycled leader pid, another namespace); restart the sandbox. Nothing ran on the host.',
  },
  OPDBUS_ERR_SANDBOX_DESTROYED: {
    summary: 'A sandbox was used after it was destroyed.',
    remedy: 'Create a new sandbox; a destroyed one cannot be reused.',
  },
});

/** An error code of @opdbus/sandbox. */
export type SandboxErrorCode = keyof typeof sandboxErrors;
