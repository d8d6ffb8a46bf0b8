// The machines the tests generate: each is written as a sysfs/procfs tree into a temporary
// directory by writeSyntheticMachine, then read by readTopology and by hwloc.
import type { SyntheticMachine } from '../src/synthetic.js';

const GiB = 1024 ** 3;

/** PCI devices of a typical 2-socket GPU server (node numbers of `twoSocketSnc`). */
const serverPci: SyntheticMachine['pci'] = [
  { address: '0000:00:00.0', class: 0x060000, vendor: 0x8086, device: 0x09a2, node: 0 },
  { address: '0000:00:17.0', class: 0x010601, vendor: 0x8086, device: 0xa182, node: 0, driver: 'ahci' },
  // A root bus the firmware gave no proximity domain (numa_node -1).
  {
    address: '0000:c0:00.0',
    class: 0x010802,
    vendor: 0x1c5c,
    device: 0x174a,
    driver: 'nvme',
    nvme: ['nvme1'],
  },
  {
    address: '0000:17:00.0',
    class: 0x010802,
    vendor: 0x144d,
    device: 0xa824,
    node: 0,
    driver: 'nvme',
    nvme: ['nvme0'],
  },
  {
    address: '0000:3b:00.0',
    class: 0x030200,
    vendor: 0x10de,
    device: 0x2330,
    node: 1,
    driver: 'nvidia',
    drm: ['card0', 'renderD128'],
  },
  {
    address: '0000:5e:00.0',
    class: 0x020000,
    vendor: 0x15b3,
    device: 0x1017,
    node: 2,
    driver: 'mlx5_core',
    net: ['ens1f0np0'],
    infiniband: ['mlx5_0'],
  },
  {
    address: '0000:86:00.0',
    class: 0x020000,
    vendor: 0x8086,
    device: 0x1593,
    node: 3,
    driver: 'ice',
    net: ['ens2f0'],
  },
];

/** 2 sockets × 8 cores × 2 threads, 2 nodes per socket (sub-NUMA clustering), GPU, NICs, NVMe. */
export const twoSocketSnc: SyntheticMachine = {
  packages: 2,
  coresPerPackage: 8,
  threadsPerCore: 2,
  nodesPerPackage: 2,
  memoryPerNodeBytes: 64 * GiB,
  hugepages: [
    { sizeKiB: 2048, perNode: 512, freePerNode: 500 },
    { sizeKiB: 1048576, perNode: 4 },
  ],
  pci: serverPci,
};

/**
 * 4 sockets × 2 dies-as-nodes × 4 cores (an AMD Opteron 6100-like 8-node machine), L3 per node,
 * distances that depend on the number of HyperTransport hops, and one asymmetric pair (7→0 is
 * shorter than 0→7, as some SLITs say). NVMe on node 7.
 */
export const eightNodes: SyntheticMachine = {
  packages: 4,
  coresPerPackage: 8,
  nodesPerPackage: 2,
  memoryPerNodeBytes: 16 * GiB,
  caches: [
    { level: 1, type: 'Data', sizeKiB: 64, ways: 2, sharedBy: 'core' },
    { level: 1, type: 'Instruction', sizeKiB: 64, ways: 2, sharedBy: 'core' },
    { level: 2, type: 'Unified', sizeKiB: 512, ways: 16, sharedBy: 'core' },
    { level: 3, type: 'Unified', sizeKiB: 5118, ways: 48, sharedBy: 'node' },
  ],
  distances: [
    [10, 16, 16, 22, 16, 22, 16, 22],
    [16, 10, 22, 16, 22, 16, 22, 16],
    [16, 22, 10, 16, 16, 22, 16, 22],
    [22, 16, 16, 10, 22, 16, 22, 16],
    [16, 22, 16, 22, 10, 16, 16, 22],
    [22, 16, 22, 16, 16, 10, 22, 16],
    [16, 22, 16, 22, 16, 22, 10, 16],
    [12, 16, 22, 16, 22, 16, 16, 10],
  ],
  pci: [
    {
      address: '0000:40:00.0',
      class: 0x030000,
      vendor: 0x1002,
      device: 0x740f,
      node: 5,
      driver: 'amdgpu',
      drm: ['card1'],
    },
    {
      address: '0000:80:00.0',
      class: 0x020000,
      vendor: 0x14e4,
      device: 0x16d7,
      node: 6,
      driver: 'bnxt_en',
      net: ['eno1'],
    },
    {
      address: '0000:e0:00.0',
      class: 0x010802,
      vendor: 0x144d,
      device: 0xa80a,
      node: 7,
      driver: 'nvme',
      nvme: ['nvme0'],
    },
  ],
};

/** 2 sockets × 8 cores × 2 threads, plus two memory-only (CXL) nodes, one near each socket. */
export const cxlMemoryNodes: SyntheticMachine = {
  packages: 2,
  coresPerPackage: 8,
  threadsPerCore: 2,
  memoryPerNodeBytes: 128 * GiB,
  memoryOnlyNodes: [
    { memoryBytes: 256 * GiB, nearPackage: 0 },
    { memoryBytes: 256 * GiB, nearPackage: 1 },
  ],
  pci: [
    { address: '0000:c1:00.0', class: 0x050210, vendor: 0x8086, device: 0x0d93, node: 2, driver: 'cxl_pci' },
  ],
};

/** 1 socket × 8 cores × 2 threads with CPUs 3, 11 (all of core 3) and 13 (half of core 5) offline. */
export const offlineCpus: SyntheticMachine = {
  packages: 1,
  coresPerPackage: 8,
  threadsPerCore: 2,
  offlineCpus: [3, 11, 13],
  isolatedCpus: [6, 14],
};

/** A VM whose kernel shows no cache information at all. */
export const missingCaches: SyntheticMachine = {
  packages: 1,
  coresPerPackage: 4,
  threadsPerCore: 2,
  caches: [],
};

/** A kernel built without NUMA: no /sys/devices/system/node. */
export const noNuma: SyntheticMachine = {
  packages: 1,
  coresPerPackage: 4,
  threadsPerCore: 2,
  noNuma: true,
  memoryPerNodeBytes: 32 * GiB,
  pci: [
    {
      address: '0000:00:03.0',
      class: 0x020000,
      vendor: 0x1af4,
      device: 0x1041,
      driver: 'virtio-pci',
      net: ['eth0'],
    },
  ],
};

/** arm64: 2 sockets × 16 cores in clusters of 4 sharing an L2, 2 nodes per socket, no die level. */
export const arm64Clusters: SyntheticMachine = {
  arch: 'aarch64',
  packages: 2,
  coresPerPackage: 16,
  coresPerCluster: 4,
  nodesPerPackage: 2,
  memoryPerNodeBytes: 32 * GiB,
  pci: [
    {
      address: '0002:01:00.0',
      class: 0x020000,
      vendor: 0x15b3,
      device: 0x101d,
      node: 3,
      driver: 'mlx5_core',
      net: ['enP2p1s0'],
    },
  ],
};

/** An old kernel: masks only, no *_list, die or cluster files. */
export const legacyKernel: SyntheticMachine = {
  packages: 2,
  coresPerPackage: 4,
  threadsPerCore: 2,
  legacyKernel: true,
};

/** 1 socket × 16 cores × 2 threads on 2 dies, L3 per die, CPU siblings numbered adjacently. */
export const multiDie: SyntheticMachine = {
  packages: 1,
  coresPerPackage: 16,
  threadsPerCore: 2,
  diesPerPackage: 2,
  threadNumbering: 'adjacent',
  caches: [
    { level: 1, type: 'Data', sizeKiB: 32, ways: 8, sharedBy: 'core' },
    { level: 1, type: 'Instruction', sizeKiB: 32, ways: 8, sharedBy: 'core' },
    { level: 2, type: 'Unified', sizeKiB: 1024, ways: 8, sharedBy: 'core' },
    { level: 3, type: 'Unified', sizeKiB: 32768, ways: 16, sharedBy: 'die' },
  ],
};

/** Every machine the topology tests run on, by name. */
export const machines: Record<string, SyntheticMachine> = {
  twoSocketSnc,
  eightNodes,
  cxlMemoryNodes,
  offlineCpus,
  missingCaches,
  noNuma,
  arm64Clusters,
  legacyKernel,
  multiDie,
};
