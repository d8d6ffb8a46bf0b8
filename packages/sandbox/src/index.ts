/**
 * @opdbus/sandbox: disposable environments for integration tests and demos — network
 * namespaces, a private dbus-daemon, ovsdb-server (+ ovs-vswitchd with the userspace datapath)
 * and btrfs on a loop device — cleaned up fully, also when the test fails or the process dies.
 *
 * @packageDocumentation
 */
export { BTRFS_MIN_BYTES, BtrfsLoop, createBtrfsLoop, parseSize, type BtrfsOptions } from './btrfs.js';
export {
  CONTAINER_BASE_PACKAGES,
  SystemdContainer,
  defaultCacheDir,
  ensureDebianRootfs,
  startSystemdContainer,
  type DebianRootfsOptions,
  type SystemdContainerOptions,
} from './container.js';
export { DbusDaemon, dbusConfig, startDbusDaemon, type DbusDaemonOptions } from './dbus.js';
export { sandboxErrors, type SandboxErrorCode } from './errors.js';
export { SandboxNetns, createNetns, type NetnsOptions } from './netns.js';
export { OvsSandbox, VSWITCH_SCHEMA, startOvs, type OvsOptions } from './ovs.js';
export { probeSandbox, requirement, type Requirement, type SandboxProbe } from './probe.js';
export {
  listSandboxRecords,
  reapStaleSandboxes,
  type ReapOptions,
  type ReapReport,
  type ReapedSandbox,
  type RecordDirOptions,
  type SandboxRecordInfo,
} from './reap.js';
export {
  defaultRecordDir,
  isSandboxCgroup,
  isSandboxId,
  type SandboxKind,
  type SandboxRecord,
} from './records.js';
export { cleanupAllSync, liveSandboxIds } from './registry.js';
export { DisposableResource } from './resource.js';
export { Sandbox, type SandboxOptions, type SandboxResource } from './sandbox.js';
export { toolPackages, type CommandResult, type ExecOptions, type ToolName } from './tools.js';
