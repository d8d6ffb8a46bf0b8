/**
 * @opdbus/numa: the machine's CPU, cache, NUMA and PCI topology from sysfs, and NUMA-aware
 * placement of systemd units.
 *
 * @packageDocumentation
 */
export { formatCpuList, formatCpuMask, parseCpuList, parseCpuMask } from './cpuList.js';
export { numaErrors } from './errors.js';
export {
  pciKind,
  readTopology,
  type AllowedResources,
  type Cache,
  type CacheType,
  type CpuCluster,
  type CpuCore,
  type CpuDie,
  type CpuPackage,
  type HugepagePool,
  type MemoryAccess,
  type MemoryKind,
  type MemorySideCache,
  type NumaNode,
  type PciDevice,
  type PciDeviceKind,
  type Processor,
  type ReadTopologyOptions,
  type Topology,
} from './topology.js';
export {
  bytesToCpuSet,
  cpuSetToBytes,
  formatBytes,
  numaPlacementsSchema,
  numaPolicies,
  numaPolicyCodes,
  numaSectionSchema,
  parseSize,
  placementRequestSchema,
  resolvePlacements,
  type NumaPolicy,
  type NumaSection,
  type PlacementRequest,
  type PlacementResult,
  type ResolveOptions,
  type ResolvedPlacement,
  type SystemdNumaProperties,
} from './placement.js';
export { formatPciDevice, formatTopology, type FormatTopologyOptions } from './format.js';
export { SysfsTree } from './sysfs.js';
