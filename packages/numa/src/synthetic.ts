/**
 * Synthetic machines: write the sysfs and procfs files Linux would show for a described machine
 * into a directory, so that topology readers (this package, hwloc with HWLOC_FSROOT, your own
 * tools) can be tested against machines you do not have: many sockets, sub-NUMA clustering,
 * memory-only (CXL) nodes, offline CPUs, arm64 clusters, old kernels, no NUMA at all.
 *
 * The layout follows what current kernels write (attribute names, list and mask formats, relative
 * symbolic links between /sys/bus, /sys/class and /sys/devices), and enough of /proc (cpuinfo,
 * meminfo) for hwloc.
 *
 * @packageDocumentation
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { formatCpuList, formatCpuMask } from './cpuList.js';

/** Which CPUs share a synthetic cache. */
export type SyntheticCacheScope = 'core' | 'cluster' | 'die' | 'package' | 'node' | { cores: number };

/** A cache level of a synthetic machine (every core has the same caches). */
export interface SyntheticCache {
  level: 1 | 2 | 3 | 4;
  type: 'Data' | 'Instruction' | 'Unified';
  sizeKiB: number;
  ways: number;
  /** Default 64. */
  lineSize?: number;
  /** The CPUs that share one instance. `{ cores: n }`: groups of n consecutive cores of a package. */
  sharedBy: SyntheticCacheScope;
}

/** A PCI function of a synthetic machine. */
export interface SyntheticPciDevice {
  /** `0000:3b:00.0`. */
  address: string;
  /** 24-bit class code, e.g. 0x030200 (3D controller), 0x020000 (Ethernet), 0x010802 (NVMe). */
  class: number;
  vendor: number;
  device: number;
  /** numa_node; -1 (the default) when the firmware does not say. */
  node?: number;
  driver?: string;
  /** Network interfaces (/sys/class/net). */
  net?: string[];
  /** DRM devices (card0, renderD128). */
  drm?: string[];
  /** NVMe controllers (nvme0). */
  nvme?: string[];
  /** RDMA devices (mlx5_0). */
  infiniband?: string[];
}

/** A memory-only NUMA node (CXL memory, HBM without cores). */
export interface SyntheticMemoryNode {
  memoryBytes: number;
  /** The package it hangs off: its nodes are at distance `nearDistance` (default 14). */
  nearPackage: number;
  nearDistance?: number;
  /** Distance from the other packages' nodes (default 26). */
  farDistance?: number;
}

/** Huge page pools written on every node. */
export interface SyntheticHugepages {
  sizeKiB: number;
  perNode: number;
  freePerNode?: number;
}

/** A machine to write as a sysfs/procfs tree. */
export interface SyntheticMachine {
  /** Default x86_64. arm64 has no die level and prints /proc/cpuinfo its own way. */
  arch?: 'x86_64' | 'aarch64';
  packages: number;
  coresPerPackage: number;
  /** Hardware threads per core (default 1). */
  threadsPerCore?: number;
  /**
   * How CPUs are numbered: `spread` (x86: first threads of every core, then the second threads,
   * so SMT siblings are N apart) or `adjacent` (siblings next to each other). Default spread.
   */
  threadNumbering?: 'spread' | 'adjacent';
  /** Dies per package (default 1; x86 only). */
  diesPerPackage?: number;
  /** Cores per cluster (default 1: clusters are single cores, as on most x86). */
  coresPerCluster?: number;
  /** NUMA nodes per package (sub-NUMA clustering; default 1). */
  nodesPerPackage?: number;
  /** Memory of each CPU node in bytes (default 64 GiB). */
  memoryPerNodeBytes?: number;
  /** Memory-only nodes, numbered after the CPU nodes. */
  memoryOnlyNodes?: SyntheticMemoryNode[];
  /** The full distance matrix, in node order; default: 10 local, 12 same package, 21 remote. */
  distances?: number[][];
  /** Default: 2 MiB and 1 GiB pools with no pages. */
  hugepages?: SyntheticHugepages[];
  /** CPUs present but offline. */
  offlineCpus?: number[];
  /** CPUs isolated from the scheduler (isolcpus=). */
  isolatedCpus?: number[];
  /** Cache levels; `[]` for a machine whose kernel shows no cache information. Default per arch. */
  caches?: SyntheticCache[];
  /** No /sys/devices/system/node: a kernel built without NUMA. */
  noNuma?: boolean;
  /**
   * An old kernel: topology as masks only (no `*_list`, `core_cpus`, `package_cpus`, die or
   * cluster files), caches without shared_cpu_list.
   */
  legacyKernel?: boolean;
  pci?: SyntheticPciDevice[];
  /** model name in /proc/cpuinfo. */
  cpuModel?: string;
}

/** What the generator wrote, to compare a reader's result with. */
export interface SyntheticLayout {
  root: string;
  onlineCpus: number[];
  offlineCpus: number[];
  /** Node id → online CPUs (empty for memory-only nodes). */
  nodes: { id: number; cpus: number[]; memoryBytes: number; distances: number[] }[];
  packages: { id: number; cpus: number[] }[];
  dies: { package: number; id: number; cpus: number[] }[];
  clusters: { package: number; id: number; cpus: number[] }[];
  /** Online threads of each core with at least one online thread, by first CPU. */
  cores: number[][];
  caches: {
    level: number;
    type: string;
    sizeBytes: number;
    lineSizeBytes: number;
    ways: number;
    cpus: number[];
  }[];
}

const defaultCaches: Record<'x86_64' | 'aarch64', SyntheticCache[]> = {
  x86_64: [
    { level: 1, type: 'Data', sizeKiB: 48, ways: 12, sharedBy: 'core' },
    { level: 1, type: 'Instruction', sizeKiB: 32, ways: 8, sharedBy: 'core' },
    { level: 2, type: 'Unified', sizeKiB: 2048, ways: 16, sharedBy: 'core' },
    { level: 3, type: 'Unified', sizeKiB: 107520, ways: 15, sharedBy: 'package' },
  ],
  aarch64: [
    { level: 1, type: 'Data', sizeKiB: 64, ways: 4, sharedBy: 'core' },
    { level: 1, type: 'Instruction', sizeKiB: 64, ways: 4, sharedBy: 'core' },
    { level: 2, type: 'Unified', sizeKiB: 1024, ways: 8, sharedBy: 'cluster' },
    { level: 3, type: 'Unified', sizeKiB: 32768, ways: 16, sharedBy: 'package' },
  ],
};

interface CoreInfo {
  package: number;
  die: number;
  cluster: number;
  node: number;
  coreId: number;
  /** Index of the core within its package. */
  inPackage: number;
  threads: number[];
}

function write(root: string, rel: string, content: string | Buffer): void {
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, typeof content === 'string' && !content.endsWith('\n') ? `${content}\n` : content);
}

function link(root: string, rel: string, target: string): void {
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(relative(dirname(path), join(root, target)), path);
}

/** The kernel prints cache sizes in KiB: `48K`, `107520K`. */
function sizeText(kib: number): string {
  return `${kib}K`;
}

/**
 * Write the sysfs/procfs tree of `machine` under `root` (which should be empty) and return the
 * layout it describes.
 *
 * @example
 * ```ts
 * const layout = writeSyntheticMachine('/tmp/two-socket', { packages: 2, coresPerPackage: 8, threadsPerCore: 2 });
 * // HWLOC_FSROOT=/tmp/two-socket lstopo   or   readTopology({ root: '/tmp/two-socket' })
 * ```
 */
export function writeSyntheticMachine(root: string, machine: SyntheticMachine): SyntheticLayout {
  const arch = machine.arch ?? 'x86_64';
  const threadsPerCore = machine.threadsPerCore ?? 1;
  const dies = arch === 'aarch64' ? 1 : (machine.diesPerPackage ?? 1);
  const coresPerCluster = machine.coresPerCluster ?? 1;
  const nodesPerPackage = machine.noNuma ? 1 : (machine.nodesPerPackage ?? 1);
  const perPackage = machine.coresPerPackage;
  for (const [what, divisor] of [
    ['diesPerPackage', dies],
    ['coresPerCluster', coresPerCluster],
    ['nodesPerPackage', nodesPerPackage],
  ] as const) {
    if (perPackage % divisor !== 0)
      throw new Error(`coresPerPackage (${perPackage}) is not a multiple of ${what} (${divisor})`);
  }
  const totalCores = machine.packages * perPackage;
  const totalCpus = totalCores * threadsPerCore;
  const words = Math.max(1, Math.ceil(totalCpus / 32));
  const mask = (cpus: Iterable<number>): string => formatCpuMask(cpus, words);
  const offline = new Set(machine.offlineCpus ?? []);
  const isOnline = (cpu: number): boolean => !offline.has(cpu);
  const onlineOf = (cpus: number[]): number[] => cpus.filter(isOnline);
  const legacy = machine.legacyKernel === true;
  const clustersPerPackage = perPackage / coresPerCluster;

  // The layout.
  const cores: CoreInfo[] = [];
  for (let pkg = 0; pkg < machine.packages; pkg++) {
    for (let c = 0; c < perPackage; c++) {
      const global = pkg * perPackage + c;
      const threads = Array.from({ length: threadsPerCore }, (_, t) =>
        (machine.threadNumbering ?? 'spread') === 'spread'
          ? t * totalCores + global
          : global * threadsPerCore + t,
      );
      cores.push({
        package: pkg,
        die: Math.floor(c / (perPackage / dies)),
        cluster: pkg * clustersPerPackage + Math.floor(c / coresPerCluster),
        node: pkg * nodesPerPackage + Math.floor(c / (perPackage / nodesPerPackage)),
        // x86 core_id is unique within a package; arm64 (ACPI) numbers cores machine-wide.
        coreId: arch === 'aarch64' ? global : c,
        inPackage: c,
        threads,
      });
    }
  }
  const coreOfCpu = new Map<number, CoreInfo>();
  for (const core of cores) for (const t of core.threads) coreOfCpu.set(t, core);
  const allCpus = [...coreOfCpu.keys()].sort((a, b) => a - b);
  const online = allCpus.filter(isOnline);
  const cpusWhere = (pred: (c: CoreInfo) => boolean): number[] =>
    cores
      .filter(pred)
      .flatMap((c) => c.threads)
      .sort((a, b) => a - b);

  const cpuNodes = machine.packages * nodesPerPackage;
  const memNodes = machine.noNuma ? [] : (machine.memoryOnlyNodes ?? []);
  const nodeCount = cpuNodes + memNodes.length;
  const packageOfNode = (n: number): number =>
    n < cpuNodes ? Math.floor(n / nodesPerPackage) : memNodes[n - cpuNodes]!.nearPackage;
  const distance = (a: number, b: number): number => {
    const explicit = machine.distances?.[a]?.[b];
    if (explicit !== undefined) return explicit;
    if (a === b) return 10;
    const memA = a >= cpuNodes ? memNodes[a - cpuNodes] : undefined;
    const memB = b >= cpuNodes ? memNodes[b - cpuNodes] : undefined;
    if (memA !== undefined && memB !== undefined) return 30;
    const mem = memA ?? memB;
    if (mem !== undefined) {
      const other = memA !== undefined ? b : a;
      return packageOfNode(other) === mem.nearPackage ? (mem.nearDistance ?? 14) : (mem.farDistance ?? 26);
    }
    return packageOfNode(a) === packageOfNode(b) ? 12 : 21;
  };
  const memoryPerNode = machine.memoryPerNodeBytes ?? 64 * 1024 ** 3;
  const nodeMemory = (n: number): number =>
    n < cpuNodes ? memoryPerNode : memNodes[n - cpuNodes]!.memoryBytes;
  const nodeIds = Array.from({ length: nodeCount }, (_, i) => i);
  const nodeCpus = (n: number): number[] => (n < cpuNodes ? cpusWhere((c) => c.node === n) : []);

  // /sys/devices/system/cpu
  const CPU = 'sys/devices/system/cpu';
  write(root, `${CPU}/possible`, formatCpuList(allCpus));
  write(root, `${CPU}/present`, formatCpuList(allCpus));
  write(root, `${CPU}/online`, formatCpuList(online));
  write(root, `${CPU}/offline`, formatCpuList(offline));
  write(root, `${CPU}/kernel_max`, '8191');
  write(root, `${CPU}/isolated`, formatCpuList(machine.isolatedCpus ?? []));
  if (!legacy) {
    write(root, `${CPU}/smt/active`, threadsPerCore > 1 ? '1' : '0');
    write(root, `${CPU}/smt/control`, threadsPerCore > 1 ? 'on' : 'notsupported');
  }
  const caches = machine.caches ?? defaultCaches[arch];
  const cacheGroupKey = (core: CoreInfo, scope: SyntheticCacheScope): string => {
    if (typeof scope === 'object') return `p${core.package}g${Math.floor(core.inPackage / scope.cores)}`;
    switch (scope) {
      case 'core':
        return `c${core.package}:${core.inPackage}`;
      case 'cluster':
        return `k${core.cluster}`;
      case 'die':
        return `d${core.package}:${core.die}`;
      case 'package':
        return `p${core.package}`;
      case 'node':
        return `n${core.node}`;
    }
  };
  const cacheIds = caches.map(() => new Map<string, number>());
  const layoutCaches: SyntheticLayout['caches'] = [];
  for (const [index, cache] of caches.entries()) {
    const groups = new Map<string, number[]>();
    for (const core of cores) {
      const key = cacheGroupKey(core, cache.sharedBy);
      groups.set(key, [...(groups.get(key) ?? []), ...core.threads]);
    }
    for (const [key, cpus] of groups) {
      cacheIds[index]!.set(key, cacheIds[index]!.size);
      const live = onlineOf(cpus).sort((a, b) => a - b);
      if (live.length > 0) {
        layoutCaches.push({
          level: cache.level,
          type: cache.type.toLowerCase(),
          sizeBytes: cache.sizeKiB * 1024,
          lineSizeBytes: cache.lineSize ?? 64,
          ways: cache.ways,
          cpus: live,
        });
      }
    }
  }

  for (const cpu of allCpus) {
    const core = coreOfCpu.get(cpu)!;
    const dir = `${CPU}/cpu${cpu}`;
    if (cpu !== 0) write(root, `${dir}/online`, isOnline(cpu) ? '1' : '0');
    write(root, `${dir}/uevent`, `DRIVER=processor\nMODALIAS=cpu:type:${arch}:feature:`);
    link(root, `sys/bus/cpu/devices/cpu${cpu}`, dir);
    if (!machine.noNuma) link(root, `${dir}/node${core.node}`, `sys/devices/system/node/node${core.node}`);
    if (!isOnline(cpu)) continue; // offline CPUs have no topology or cache directories
    const t = `${dir}/topology`;
    const siblings = onlineOf(core.threads);
    const pkgCpus = onlineOf(cpusWhere((c) => c.package === core.package));
    write(root, `${t}/physical_package_id`, String(core.package));
    write(root, `${t}/core_id`, String(core.coreId));
    write(root, `${t}/thread_siblings`, mask(siblings));
    write(root, `${t}/core_siblings`, mask(pkgCpus));
    if (!legacy) {
      write(root, `${t}/thread_siblings_list`, formatCpuList(siblings));
      write(root, `${t}/core_siblings_list`, formatCpuList(pkgCpus));
      write(root, `${t}/core_cpus`, mask(siblings));
      write(root, `${t}/core_cpus_list`, formatCpuList(siblings));
      write(root, `${t}/package_cpus`, mask(pkgCpus));
      write(root, `${t}/package_cpus_list`, formatCpuList(pkgCpus));
      if (arch === 'x86_64') {
        const dieCpus = onlineOf(cpusWhere((c) => c.package === core.package && c.die === core.die));
        write(root, `${t}/die_id`, String(core.die));
        write(root, `${t}/die_cpus`, mask(dieCpus));
        write(root, `${t}/die_cpus_list`, formatCpuList(dieCpus));
      }
      const clusterCpus = onlineOf(cpusWhere((c) => c.cluster === core.cluster));
      write(root, `${t}/cluster_id`, String(core.cluster));
      write(root, `${t}/cluster_cpus`, mask(clusterCpus));
      write(root, `${t}/cluster_cpus_list`, formatCpuList(clusterCpus));
    }
    for (const [index, cache] of caches.entries()) {
      const c = `${dir}/cache/index${index}`;
      const key = cacheGroupKey(core, cache.sharedBy);
      const shared = onlineOf(
        cores.filter((o) => cacheGroupKey(o, cache.sharedBy) === key).flatMap((o) => o.threads),
      );
      const line = cache.lineSize ?? 64;
      write(root, `${c}/level`, String(cache.level));
      write(root, `${c}/type`, cache.type);
      write(root, `${c}/size`, sizeText(cache.sizeKiB));
      write(root, `${c}/coherency_line_size`, String(line));
      write(root, `${c}/ways_of_associativity`, String(cache.ways));
      write(
        root,
        `${c}/number_of_sets`,
        String(Math.max(1, Math.floor((cache.sizeKiB * 1024) / (line * cache.ways)))),
      );
      write(root, `${c}/physical_line_partition`, '1');
      write(root, `${c}/shared_cpu_map`, mask(shared));
      if (!legacy) {
        write(root, `${c}/shared_cpu_list`, formatCpuList(shared));
        write(root, `${c}/id`, String(cacheIds[index]!.get(key)));
      }
      write(root, `${c}/uevent`, '');
    }
  }

  // /sys/devices/system/node
  const NODE = 'sys/devices/system/node';
  const hugepages = machine.hugepages ?? [
    { sizeKiB: 2048, perNode: 0 },
    { sizeKiB: 1048576, perNode: 0 },
  ];
  if (!machine.noNuma) {
    const all = formatCpuList(nodeIds);
    write(root, `${NODE}/possible`, all);
    write(root, `${NODE}/online`, all);
    write(root, `${NODE}/has_cpu`, formatCpuList(nodeIds.filter((n) => onlineOf(nodeCpus(n)).length > 0)));
    write(root, `${NODE}/has_memory`, formatCpuList(nodeIds.filter((n) => nodeMemory(n) > 0)));
    write(root, `${NODE}/has_normal_memory`, formatCpuList(nodeIds.filter((n) => n < cpuNodes)));
    for (const n of nodeIds) {
      const dir = `${NODE}/node${n}`;
      const cpus = onlineOf(nodeCpus(n));
      const kb = Math.floor(nodeMemory(n) / 1024);
      const free = Math.floor(kb * 0.9);
      write(root, `${dir}/cpulist`, formatCpuList(cpus));
      write(root, `${dir}/cpumap`, mask(cpus));
      write(root, `${dir}/distance`, nodeIds.map((m) => String(distance(n, m))).join(' '));
      const pad = (k: string): string => `Node ${n} ${k}:`.padEnd(24);
      write(
        root,
        `${dir}/meminfo`,
        [
          `${pad('MemTotal')}${String(kb).padStart(8)} kB`,
          `${pad('MemFree')}${String(free).padStart(8)} kB`,
          `${pad('MemUsed')}${String(kb - free).padStart(8)} kB`,
          `${pad('HugePages_Total')}${String(hugepages[0]?.perNode ?? 0).padStart(6)}`,
          `${pad('HugePages_Free')}${String(hugepages[0]?.freePerNode ?? hugepages[0]?.perNode ?? 0).padStart(6)}`,
          `${pad('HugePages_Surp')}${'0'.padStart(6)}`,
        ].join('\n'),
      );
      for (const pool of hugepages) {
        const h = `${dir}/hugepages/hugepages-${pool.sizeKiB}kB`;
        write(root, `${h}/nr_hugepages`, String(pool.perNode));
        write(root, `${h}/free_hugepages`, String(pool.freePerNode ?? pool.perNode));
        write(root, `${h}/surplus_hugepages`, '0');
      }
      for (const cpu of nodeCpus(n)) link(root, `${dir}/cpu${cpu}`, `${CPU}/cpu${cpu}`);
      link(root, `sys/bus/node/devices/node${n}`, dir);
    }
  }
  for (const pool of hugepages) {
    const h = `sys/kernel/mm/hugepages/hugepages-${pool.sizeKiB}kB`;
    const total = pool.perNode * Math.max(1, nodeCount);
    write(root, `${h}/nr_hugepages`, String(total));
    write(root, `${h}/free_hugepages`, String((pool.freePerNode ?? pool.perNode) * Math.max(1, nodeCount)));
    write(root, `${h}/surplus_hugepages`, '0');
    write(root, `${h}/resv_hugepages`, '0');
  }

  // PCI devices and their class devices.
  for (const dev of machine.pci ?? []) {
    const [domain, bus] = dev.address.split(':');
    const dir = `sys/devices/pci${domain}:${bus}/${dev.address}`;
    const node = machine.noNuma ? -1 : (dev.node ?? -1);
    const local = node >= 0 ? onlineOf(nodeCpus(node)) : online;
    const hex = (v: number, d: number): string => `0x${v.toString(16).padStart(d, '0')}`;
    write(root, `${dir}/class`, hex(dev.class, 6));
    write(root, `${dir}/vendor`, hex(dev.vendor, 4));
    write(root, `${dir}/device`, hex(dev.device, 4));
    write(root, `${dir}/subsystem_vendor`, hex(dev.vendor, 4));
    write(root, `${dir}/subsystem_device`, '0x0000');
    write(root, `${dir}/revision`, '0x01');
    write(root, `${dir}/numa_node`, String(node));
    write(root, `${dir}/local_cpus`, mask(local));
    write(root, `${dir}/local_cpulist`, formatCpuList(local));
    const id = `${dev.vendor.toString(16).toUpperCase().padStart(4, '0')}:${dev.device.toString(16).toUpperCase().padStart(4, '0')}`;
    write(
      root,
      `${dir}/uevent`,
      [
        ...(dev.driver === undefined ? [] : [`DRIVER=${dev.driver}`]),
        `PCI_CLASS=${dev.class.toString(16).toUpperCase()}`,
        `PCI_ID=${id}`,
        `PCI_SUBSYS_ID=${id.slice(0, 4)}:0000`,
        `PCI_SLOT_NAME=${dev.address}`,
      ].join('\n'),
    );
    // The first 64 bytes of the configuration space (type 0 header, no capabilities).
    const config = Buffer.alloc(64);
    config.writeUInt16LE(dev.vendor, 0);
    config.writeUInt16LE(dev.device, 2);
    config.writeUInt8(0x01, 8);
    config.writeUInt8(dev.class & 0xff, 9);
    config.writeUInt8((dev.class >> 8) & 0xff, 10);
    config.writeUInt8((dev.class >> 16) & 0xff, 11);
    write(root, `${dir}/config`, config);
    link(root, `sys/bus/pci/devices/${dev.address}`, dir);
    for (const name of dev.net ?? []) {
      write(
        root,
        `${dir}/net/${name}/address`,
        `02:00:00:00:${dev.address.slice(5, 7)}:${dev.address.slice(8, 10)}`,
      );
      write(root, `${dir}/net/${name}/type`, '1');
      link(root, `sys/class/net/${name}`, `${dir}/net/${name}`);
    }
    for (const [i, name] of (dev.drm ?? []).entries()) {
      write(root, `${dir}/drm/${name}/dev`, `226:${name.startsWith('renderD') ? 128 + i : i}`);
      link(root, `sys/class/drm/${name}`, `${dir}/drm/${name}`);
    }
    for (const name of dev.nvme ?? []) {
      write(root, `${dir}/nvme/${name}/dev`, `259:${name.slice(4)}`);
      write(root, `${dir}/nvme/${name}/model`, 'Synthetic NVMe');
      link(root, `sys/class/nvme/${name}`, `${dir}/nvme/${name}`);
    }
    for (const name of dev.infiniband ?? []) {
      write(root, `${dir}/infiniband/${name}/node_guid`, '0000:0000:0000:0001');
      link(root, `sys/class/infiniband/${name}`, `${dir}/infiniband/${name}`);
    }
  }
  write(root, 'sys/devices/virtual/net/lo/address', '00:00:00:00:00:00');
  link(root, 'sys/class/net/lo', 'sys/devices/virtual/net/lo');

  // /proc
  const totalKb =
    nodeIds.reduce((sum, n) => sum + Math.floor(nodeMemory(n) / 1024), 0) || Math.floor(memoryPerNode / 1024);
  write(
    root,
    'proc/meminfo',
    [
      `MemTotal:       ${totalKb} kB`,
      `MemFree:        ${Math.floor(totalKb * 0.9)} kB`,
      `MemAvailable:   ${Math.floor(totalKb * 0.9)} kB`,
      `HugePages_Total:       0`,
      `Hugepagesize:       2048 kB`,
    ].join('\n'),
  );
  const model =
    machine.cpuModel ?? (arch === 'aarch64' ? 'Synthetic Neoverse' : 'Synthetic Xeon CPU @ 2.00GHz');
  const entries = online.map((cpu) => {
    const core = coreOfCpu.get(cpu)!;
    if (arch === 'aarch64') {
      return [
        `processor\t: ${cpu}`,
        'BogoMIPS\t: 50.00',
        'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics',
        'CPU implementer\t: 0x41',
        'CPU architecture: 8',
        'CPU variant\t: 0x1',
        'CPU part\t: 0xd0c',
        'CPU revision\t: 1',
      ].join('\n');
    }
    return [
      `processor\t: ${cpu}`,
      'vendor_id\t: GenuineIntel',
      'cpu family\t: 6',
      'model\t\t: 143',
      `model name\t: ${model}`,
      'stepping\t: 8',
      `physical id\t: ${core.package}`,
      `siblings\t: ${perPackage * threadsPerCore}`,
      `core id\t\t: ${core.coreId}`,
      `cpu cores\t: ${perPackage}`,
      `apicid\t\t: ${core.package * 256 + core.inPackage * 2 + core.threads.indexOf(cpu)}`,
      'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht',
    ].join('\n');
  });
  write(root, 'proc/cpuinfo', `${entries.join('\n\n')}\n`);

  const sortedCores = cores
    .map((c) => onlineOf(c.threads).sort((a, b) => a - b))
    .filter((t) => t.length > 0)
    .sort((a, b) => a[0]! - b[0]!);
  return {
    root,
    onlineCpus: online,
    offlineCpus: [...offline].sort((a, b) => a - b),
    nodes: machine.noNuma
      ? [{ id: 0, cpus: online, memoryBytes: totalKb * 1024, distances: [10] }]
      : nodeIds.map((n) => ({
          id: n,
          cpus: onlineOf(nodeCpus(n)),
          memoryBytes: Math.floor(nodeMemory(n) / 1024) * 1024,
          distances: nodeIds.map((m) => distance(n, m)),
        })),
    packages: Array.from({ length: machine.packages }, (_, p) => ({
      id: p,
      cpus: onlineOf(cpusWhere((c) => c.package === p)),
    })),
    dies:
      dies > 1 && !legacy
        ? cores
            .filter((c, i, all) => all.findIndex((o) => o.package === c.package && o.die === c.die) === i)
            .map((c) => ({
              package: c.package,
              id: c.die,
              cpus: onlineOf(cpusWhere((o) => o.package === c.package && o.die === c.die)),
            }))
        : [],
    clusters:
      coresPerCluster > 1 && !legacy
        ? cores
            .filter((c, i, all) => all.findIndex((o) => o.cluster === c.cluster) === i)
            .map((c) => ({
              package: c.package,
              id: c.cluster,
              cpus: onlineOf(cpusWhere((o) => o.cluster === c.cluster)),
            }))
            .filter((c) => c.cpus.length > 0)
        : [],
    cores: sortedCores,
    caches: layoutCaches,
  };
}
