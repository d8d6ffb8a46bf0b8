/**
 * @opdbus/plugins-containers: systemd-nspawn machines as declared state for op-dbus — the image
 * (from a directory or another image, through systemd-machined), the nspawn settings (boot or a
 * command, bind mounts, network: private, host, or a veth into a Linux or Open vSwitch bridge), resource limits
 * (CPUQuota, MemoryMax, TasksMax as unit properties), enabled at boot, running or stopped — over
 * D-Bus (org.freedesktop.machine1 and org.freedesktop.systemd1); and, as a second backend where it
 * runs, Podman containers through Podman's REST API.
 *
 * @packageDocumentation
 */
export { containersErrors, type ContainersErrorCode } from './errors.js';
export {
  containersSchema,
  limitsSchema,
  machineSchema,
  networkSchema,
  sourceSchema,
  type ContainersSection,
  type MachineEntry,
  type MachineLimits,
  type MachineNetwork,
  podmanContainerSchema,
  type PodmanContainer,
} from './schema.js';
export { PODMAN_LABEL, PodmanClient } from './podman.js';
export { DEFAULT_OVSDB_ADDRESS, MACHINE_EXTERNAL_ID, OvsPorts } from './ovs.js';
export {
  SETTINGS_MARKER,
  hostInterfaceOf,
  parseSettings,
  quoteArg,
  renderSettings,
  splitArgs,
} from './settings.js';
export { MachineSession, machineUnit, type ImageInfo, type UnitFacts } from './machines.js';
export {
  containersPlugin,
  createContainersPlugin,
  diffContainers,
  sizeBytes,
  type ContainersChange,
  type ContainersCheckpoint,
  type ContainersPlugin,
  type ContainersPluginOptions,
  type ContainersValue,
} from './plugin.js';
