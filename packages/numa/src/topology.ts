/**
 * The machine's topology as Linux describes it in sysfs: NUMA nodes, packages, dies, clusters,
 * cores and their hardware threads, caches, and where PCI devices are attached.
 */
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { parseCpuList, parseCpuMask } from './cpuList.js';
import { SysfsTree } from './sysfs.js';

/** A pool of huge pages of one size on one NUMA node. */
export interface HugepagePool {
  /** Page size in bytes (2 MiB, 1 GiB ...). */
  sizeBytes: number;
  /** Pages reserved in the pool (nr_hugepages). */
  total: number;
  /** Pages not in use (free_hugepages). */
  free: number;
  /** Surplus pages allocated beyond the pool (surplus_hugepages). */
  surplus: number;
}

/** A NUMA node: memory, and the online CPUs closest to it. */
export interface NumaNode {
  id: number;
  /** Online CPUs of the node (empty for a memory-only node, e.g. CXL memory or HBM without cores). */
  cpus: number[];
  /** MemTotal of the node's meminfo, in bytes. */
  memoryBytes: number;
  /** MemFree of the node's meminfo, in bytes (a moment's value; it changes all the time). */
  freeBytes: number;
  /**
   * The ACPI SLIT distances from this node: `distances[i]` is the distance to `nodes[i]` of the
   * topology (nodes sorted by id, as the kernel prints them). 10 means local.
   */
  distances: number[];
  /** Huge page pools of the node, by page size. */
  hugepages: HugepagePool[];
}

/** A physical package (socket). */
export interface CpuPackage {
  /** physical_package_id (or an index when the kernel does not give one). */
  id: number;
  cpus: number[];
  /** The NUMA nodes whose CPUs are in this package. */
  nodes: number[];
}

/** A die of a multi-die package (listed only when some package has more than one die). */
export interface CpuDie {
  package: number;
  /** die_id. */
  id: number;
  cpus: number[];
}

/**
 * A cluster of cores (arm64 clusters, x86 modules sharing an L2), listed only when some cluster
 * has more than one core.
 */
export interface CpuCluster {
  package: number;
  /** cluster_id (or an index when the kernel does not give one). */
  id: number;
  cpus: number[];
}

/** A core and its online hardware threads (SMT siblings). */
export interface CpuCore {
  /** Index in {@link Topology.cores} (cores are numbered by their first CPU, as lscpu does). */
  id: number;
  package: number;
  /** The core's online hardware threads. */
  cpus: number[];
  /** The NUMA node of its first thread, or null when the machine reports none. */
  node: number | null;
}

/** What a cache holds. */
export type CacheType = 'data' | 'instruction' | 'unified';

/** One cache instance and the CPUs that share it. */
export interface Cache {
  level: number;
  type: CacheType;
  sizeBytes: number;
  /** coherency_line_size in bytes (0 when unknown). */
  lineSizeBytes: number;
  /** ways_of_associativity (0 when unknown or fully associative). */
  ways: number;
  /** Online CPUs sharing it (shared_cpu_list). */
  cpus: number[];
}

/** What kind of PCI device, from its class code. */
export type PciDeviceKind =
  'gpu' | 'nic' | 'infiniband' | 'nvme' | 'storage' | 'accelerator' | 'bridge' | 'other';

/** A PCI function and where it is attached. */
export interface PciDevice {
  /** Domain:bus:device.function, e.g. `0000:3b:00.0`. */
  address: string;
  /** The class code as sysfs prints it, e.g. `0x030200`. */
  class: string;
  kind: PciDeviceKind;
  /** Vendor id, e.g. `0x10de`. */
  vendor: string;
  /** Device id, e.g. `0x2330`. */
  device: string;
  /** The bound driver, when known. */
  driver: string | null;
  /** The NUMA node it is attached to, or null when the firmware does not say (numa_node -1). */
  node: number | null;
  /** The CPUs local to it (local_cpulist). */
  localCpus: number[];
  /** Network interfaces of the device (/sys/class/net). */
  netInterfaces: string[];
  /** DRM devices (card0, renderD128). */
  drmDevices: string[];
  /** NVMe controllers (nvme0). */
  nvmeControllers: string[];
  /** RDMA devices (/sys/class/infiniband, e.g. mlx5_0). */
  infinibandDevices: string[];
}

/** One online CPU (hardware thread) and where it sits. */
export interface Processor {
  id: number;
  package: number;
  /** die_id, or null when dies are not a level of their own (see {@link Topology.dies}). */
  die: number | null;
  /** cluster_id, or null when clusters are not a level of their own (see {@link Topology.clusters}). */
  cluster: number | null;
  /** Index in {@link Topology.cores}. */
  core: number;
  node: number | null;
}

/**
 * The topology of a machine, read from sysfs. Plain JSON data: sorted, deterministic for the same
 * tree (except `freeBytes` and huge page counts on a live machine).
 */
export interface Topology {
  /** The root it was read from. */
  root: string;
  /** Online CPU numbers. */
  cpus: number[];
  /** CPUs present but offline. */
  offlineCpus: number[];
  /** CPUs isolated from the scheduler (isolcpus=). */
  isolatedCpus: number[];
  processors: Processor[];
  /** NUMA nodes, sorted by id. On a kernel without NUMA, one node 0 holding everything. */
  nodes: NumaNode[];
  packages: CpuPackage[];
  dies: CpuDie[];
  clusters: CpuCluster[];
  cores: CpuCore[];
  /** Cache instances, sorted by level, type, then first CPU. */
  caches: Cache[];
  /** PCI functions, sorted by address. */
  pciDevices: PciDevice[];
  /** What the tree left out or got wrong, and what was assumed instead. */
  warnings: string[];
}

/** Options of {@link readTopology}. */
export interface ReadTopologyOptions {
  /** The filesystem root: `/` (default), or a directory holding `sys/` and `proc/` (as HWLOC_FSROOT). */
  root?: string;
  /** Logger for what the tree leaves out (default: silent). */
  logger?: Logger;
  /** Longest stretch of synchronous reads between yields to the event loop, in ms (default 2). */
  sliceMs?: number;
}

const CPU = 'sys/devices/system/cpu';
const NODE = 'sys/devices/system/node';
const pciAddressPattern = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const pciInPathPattern = /[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7](?=\/|$)/g;

/**
 * A CPU set from a `*_list` file, else from its mask twin (old kernels have masks only). A list
 * file found missing once is not tried again on that tree: a failed open costs an exception.
 */
function listOrMask(fs: SysfsTree, base: string, list: string, mask: string): number[] | undefined {
  if (!fs.missing.has(list)) {
    const text = fs.read(`${base}/${list}`);
    if (text !== undefined) return parseCpuList(text, fs.path(`${base}/${list}`));
    fs.missing.add(list);
  }
  const maskText = fs.read(`${base}/${mask}`);
  if (maskText !== undefined) return parseCpuMask(maskText, fs.path(`${base}/${mask}`));
  return undefined;
}

function meminfoValue(text: string, key: string): number | undefined {
  const match = new RegExp(`(?:^|\\n)(?:Node \\d+ )?${key}:\\s+(\\d+)\\s*kB`).exec(text);
  return match === null ? undefined : Number(match[1]) * 1024;
}

function byFirst(a: readonly number[], b: readonly number[]): number {
  return (a[0] ?? Infinity) - (b[0] ?? Infinity);
}

/** The kind of a PCI device from its 24-bit class code. */
export function pciKind(classCode: number): PciDeviceKind {
  const base = classCode >> 16;
  const sub = (classCode >> 8) & 0xff;
  if (base === 0x01) return sub === 0x08 ? 'nvme' : 'storage';
  if (base === 0x02) return sub === 0x07 ? 'infiniband' : 'nic';
  if (base === 0x03) return 'gpu';
  if (base === 0x12 || (base === 0x0b && sub === 0x40)) return 'accelerator';
  if (base === 0x06) return 'bridge';
  return 'other';
}

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, '0')}`;
}

/**
 * Read the topology of the machine (or of a sysfs tree under `root`).
 *
 * Robust to what kernels and firmware leave out: no node directory (a kernel without NUMA: one
 * node), memory-only nodes, offline CPUs (no topology or cache directories), missing caches,
 * kernels without the `*_list`, die or cluster files (masks are read instead), arm64 layouts.
 * What is missing is noted in `warnings`.
 *
 * @throws OpdbusError `OPDBUS_ERR_NUMA_READ` when the root has no readable sys/devices/system/cpu.
 */
export async function readTopology(options: ReadTopologyOptions = {}): Promise<Topology> {
  const root = options.root ?? '/';
  const logger = options.logger ?? silentLogger;
  const fs = new SysfsTree(root, options.sliceMs);
  const warnings: string[] = [];

  // CPUs: online, offline, isolated.
  const cpuEntries = fs.list(CPU);
  if (cpuEntries === undefined) {
    throw new OpdbusError(
      'OPDBUS_ERR_NUMA_READ',
      `Cannot read the CPU topology: ${fs.path(CPU)} does not exist or is not readable; pass a root that holds sys/ and proc/ as the kernel lays them out (default /).`,
      { data: { root, path: fs.path(CPU), problems: fs.problems } },
    );
  }
  const allCpus = cpuEntries
    .filter((e) => /^cpu\d+$/.test(e))
    .map((e) => Number(e.slice(3)))
    .sort((a, b) => a - b);
  const onlineText = fs.read(`${CPU}/online`);
  let online: number[];
  if (onlineText !== undefined) {
    online = parseCpuList(onlineText, fs.path(`${CPU}/online`));
  } else {
    online = allCpus.filter((cpu) => fs.text(`${CPU}/cpu${cpu}/online`) !== '0');
    warnings.push(`${fs.path(`${CPU}/online`)} is missing: online CPUs taken from each cpuN/online`);
  }
  const onlineSet = new Set(online);
  const presentSet = new Set(allCpus);
  const offlineText = fs.read(`${CPU}/offline`);
  const offlineCpus =
    offlineText !== undefined
      ? parseCpuList(offlineText, fs.path(`${CPU}/offline`)).filter((c) => presentSet.has(c))
      : allCpus.filter((c) => !onlineSet.has(c));
  const isolatedText = fs.read(`${CPU}/isolated`);
  const isolatedCpus =
    isolatedText === undefined ? [] : parseCpuList(isolatedText, fs.path(`${CPU}/isolated`));
  const onlineOnly = (cpus: number[]): number[] => cpus.filter((c) => onlineSet.has(c));

  // NUMA nodes.
  const nodeOf = new Map<number, number>();
  const nodes: NumaNode[] = [];
  const nodeEntries = fs.list(NODE);
  if (nodeEntries === undefined) {
    const meminfo = fs.read('proc/meminfo') ?? '';
    nodes.push({
      id: 0,
      cpus: [...online],
      memoryBytes: meminfoValue(meminfo, 'MemTotal') ?? 0,
      freeBytes: meminfoValue(meminfo, 'MemFree') ?? 0,
      distances: [10],
      hugepages: readHugepages(fs, 'sys/kernel/mm/hugepages'),
    });
    for (const cpu of online) nodeOf.set(cpu, 0);
    warnings.push(
      `${fs.path(NODE)} does not exist (a kernel without NUMA): one node 0 assumed, with every CPU and the memory of /proc/meminfo`,
    );
  } else {
    const nodeOnline = fs.read(`${NODE}/online`);
    const ids =
      nodeOnline !== undefined
        ? parseCpuList(nodeOnline, fs.path(`${NODE}/online`))
        : nodeEntries
            .filter((e) => /^node\d+$/.test(e))
            .map((e) => Number(e.slice(4)))
            .sort((a, b) => a - b);
    for (const id of ids) {
      const base = `${NODE}/node${id}`;
      const cpus = onlineOnly(listOrMask(fs, base, 'cpulist', 'cpumap') ?? []);
      for (const cpu of cpus) nodeOf.set(cpu, id);
      const meminfo = fs.read(`${base}/meminfo`);
      if (meminfo === undefined)
        warnings.push(`${fs.path(`${base}/meminfo`)} is missing: node ${id} memory unknown (0)`);
      const distanceText = fs.text(`${base}/distance`);
      const distances =
        distanceText === undefined || distanceText === '' ? [] : distanceText.split(/\s+/).map(Number);
      if (distances.length !== ids.length) {
        warnings.push(
          `node ${id}: distance lists ${distances.length} value(s) for ${ids.length} node(s)${distances.length === 0 ? '' : `: "${distanceText}"`}`,
        );
      }
      nodes.push({
        id,
        cpus,
        memoryBytes: meminfo === undefined ? 0 : (meminfoValue(meminfo, 'MemTotal') ?? 0),
        freeBytes: meminfo === undefined ? 0 : (meminfoValue(meminfo, 'MemFree') ?? 0),
        distances,
        hugepages: readHugepages(fs, `${base}/hugepages`),
      });
    }
    const orphans = online.filter((c) => !nodeOf.has(c));
    if (orphans.length > 0) {
      warnings.push(`CPU(s) ${orphans.join(',')} are online but in no node's cpulist`);
    }
  }
  await fs.pace();

  // Packages, dies, clusters, cores: one read of the sibling list covers every CPU in it.
  const packageOf = new Map<number, number>();
  const packageCpus = new Map<number, Set<number>>();
  const dieOf = new Map<number, number>();
  const dieCpus = new Map<string, { package: number; id: number; cpus: Set<number> }>();
  const clusterOf = new Map<number, number>();
  const clusterEntries: { package: number; first: number; cpus: number[] }[] = [];
  const coreLists: number[][] = [];
  const coreOf = new Map<number, number>();
  let hasDies = true;
  let hasClusters = true;
  let syntheticPackage = 0;
  const noTopology: number[] = [];
  for (const cpu of online) {
    const base = `${CPU}/cpu${cpu}/topology`;
    if (!packageOf.has(cpu)) {
      const members =
        listOrMask(fs, base, 'package_cpus_list', 'package_cpus') ??
        listOrMask(fs, base, 'core_siblings_list', 'core_siblings');
      if (members === undefined) noTopology.push(cpu);
      let id = fs.int(`${base}/physical_package_id`);
      if (id === undefined || id < 0) {
        while (packageCpus.has(syntheticPackage)) syntheticPackage++;
        id = syntheticPackage;
      }
      const set = packageCpus.get(id) ?? new Set<number>();
      packageCpus.set(id, set);
      for (const member of onlineOnly(members ?? [cpu])) {
        if (packageOf.has(member)) continue;
        packageOf.set(member, id);
        set.add(member);
      }
      if (!packageOf.has(cpu)) {
        packageOf.set(cpu, id);
        set.add(cpu);
      }
    }
    const pkg = packageOf.get(cpu)!;
    if (hasDies && !dieOf.has(cpu)) {
      const id = fs.int(`${base}/die_id`);
      if (id === undefined) {
        hasDies = false;
      } else {
        const members = listOrMask(fs, base, 'die_cpus_list', 'die_cpus') ?? [...packageCpus.get(pkg)!];
        const key = `${pkg}:${id}`;
        const entry = dieCpus.get(key) ?? { package: pkg, id, cpus: new Set<number>() };
        dieCpus.set(key, entry);
        for (const member of onlineOnly(members)) {
          if (dieOf.has(member)) continue;
          dieOf.set(member, id);
          entry.cpus.add(member);
        }
        if (!dieOf.has(cpu)) {
          dieOf.set(cpu, id);
          entry.cpus.add(cpu);
        }
      }
    }
    if (!coreOf.has(cpu)) {
      const members = listOrMask(fs, base, 'core_cpus_list', 'core_cpus') ??
        listOrMask(fs, base, 'thread_siblings_list', 'thread_siblings') ?? [cpu];
      const threads = onlineOnly(members).filter((m) => !coreOf.has(m));
      if (!threads.includes(cpu)) threads.push(cpu);
      threads.sort((a, b) => a - b);
      for (const member of threads) coreOf.set(member, coreLists.length);
      coreLists.push(threads);
    }
    if (hasClusters && !clusterOf.has(cpu)) {
      const members = listOrMask(fs, base, 'cluster_cpus_list', 'cluster_cpus');
      if (members === undefined) {
        hasClusters = false;
      } else {
        // cluster_id is read later, and only when clusters form a level of their own.
        const threads = onlineOnly(members).filter((m) => !clusterOf.has(m));
        if (!threads.includes(cpu)) threads.push(cpu);
        threads.sort((a, b) => a - b);
        for (const member of threads) clusterOf.set(member, clusterEntries.length);
        clusterEntries.push({ package: pkg, first: cpu, cpus: threads });
      }
    }
    await fs.pace();
  }
  if (noTopology.length > 0) {
    warnings.push(
      `CPU(s) ${noTopology.join(',')} have no topology directory: each is taken as a core of its own`,
    );
  }

  // Caches: one read of shared_cpu_list covers every CPU sharing the cache.
  const caches: Cache[] = [];
  const cacheKeys = new Set<string>();
  const covered: Set<number>[] = [];
  let cpusWithoutCaches = 0;
  // Index directories known to exist on some CPU: beyond them, probe with exists() first.
  let knownIndexes = 0;
  for (const cpu of online) {
    const base = `${CPU}/cpu${cpu}/cache`;
    let probed = false;
    for (let index = 0; ; index++) {
      const done = (covered[index] ??= new Set<number>());
      if (done.has(cpu)) continue;
      // Every cache of this CPU is known from a sibling that shares it: nothing more to probe.
      if (!probed && index > 0 && index === covered.length - 1) break;
      probed = true;
      const dir = `${base}/index${index}`;
      const levelText = index < knownIndexes || fs.exists(dir) ? fs.text(`${dir}/level`) : undefined;
      if (levelText === undefined) {
        if (index === 0) cpusWithoutCaches++;
        break;
      }
      knownIndexes = Math.max(knownIndexes, index + 1);
      let shared = onlineOnly(listOrMask(fs, dir, 'shared_cpu_list', 'shared_cpu_map') ?? [cpu]);
      if (!shared.includes(cpu)) shared = [...shared, cpu].sort((a, b) => a - b);
      for (const member of shared) done.add(member);
      const cache = readCache(fs, dir, Number(levelText), shared);
      const key = `${cache.level}:${cache.type}:${shared.join(',')}`;
      if (cacheKeys.has(key)) continue;
      cacheKeys.add(key);
      caches.push(cache);
    }
    await fs.pace();
  }
  if (cpusWithoutCaches > 0) {
    warnings.push(
      cpusWithoutCaches === online.length
        ? 'no cache information (cpuN/cache is missing): caches are not known'
        : `${cpusWithoutCaches} online CPU(s) have no cache information`,
    );
  }
  caches.sort((a, b) => a.level - b.level || a.type.localeCompare(b.type) || byFirst(a.cpus, b.cpus));

  // PCI devices and the class devices (net, drm, nvme, infiniband) under them.
  const pciDevices = readPciDevices(fs, nodes, online, warnings);
  await fs.pace();

  // Assemble, sorted.
  const cores: CpuCore[] = coreLists
    .sort(byFirst)
    .map((cpus, id) => ({ id, package: packageOf.get(cpus[0]!)!, cpus, node: nodeOf.get(cpus[0]!) ?? null }));
  const coreIndex = new Map<number, number>();
  for (const core of cores) for (const cpu of core.cpus) coreIndex.set(cpu, core.id);
  const packages: CpuPackage[] = [...packageCpus.entries()]
    .map(([id, set]) => {
      const cpus = [...set].sort((a, b) => a - b);
      const nodeIds = [...new Set(cpus.map((c) => nodeOf.get(c)).filter((n) => n !== undefined))].sort(
        (a, b) => a - b,
      );
      return { id, cpus, nodes: nodeIds };
    })
    .filter((p) => p.cpus.length > 0)
    .sort((a, b) => a.id - b.id);
  const diesPerPackage = new Map<number, number>();
  for (const die of dieCpus.values())
    diesPerPackage.set(die.package, (diesPerPackage.get(die.package) ?? 0) + 1);
  const dies: CpuDie[] = [...diesPerPackage.values()].some((n) => n > 1)
    ? [...dieCpus.values()]
        .map((d) => ({ package: d.package, id: d.id, cpus: [...d.cpus].sort((a, b) => a - b) }))
        .sort((a, b) => a.package - b.package || a.id - b.id)
    : [];
  const clusterIsLevel = clusterEntries.some(
    (c) => new Set(c.cpus.map((cpu) => coreIndex.get(cpu))).size > 1,
  );
  const clusterIds = clusterIsLevel
    ? clusterEntries.map((c, index) => fs.int(`${CPU}/cpu${c.first}/topology/cluster_id`) ?? index)
    : [];
  const clusters: CpuCluster[] = clusterIsLevel
    ? clusterEntries
        .map((c, index) => ({ package: c.package, id: clusterIds[index]!, cpus: c.cpus }))
        .sort((a, b) => byFirst(a.cpus, b.cpus))
    : [];
  const processors: Processor[] = online.map((id) => ({
    id,
    package: packageOf.get(id)!,
    die: dies.length > 0 ? (dieOf.get(id) ?? null) : null,
    cluster: clusterIsLevel ? (clusterIds[clusterOf.get(id) ?? -1] ?? null) : null,
    core: coreIndex.get(id)!,
    node: nodeOf.get(id) ?? null,
  }));

  warnings.push(...fs.problems);
  for (const warning of warnings) logger.debug({ root }, warning);
  return {
    root,
    cpus: online,
    offlineCpus,
    isolatedCpus,
    processors,
    nodes,
    packages,
    dies,
    clusters,
    cores,
    caches,
    pciDevices,
    warnings,
  };
}

function readHugepages(fs: SysfsTree, dir: string): HugepagePool[] {
  const pools: HugepagePool[] = [];
  for (const entry of fs.list(dir) ?? []) {
    const match = /^hugepages-(\d+)kB$/.exec(entry);
    if (match === null) continue;
    pools.push({
      sizeBytes: Number(match[1]) * 1024,
      total: fs.int(`${dir}/${entry}/nr_hugepages`) ?? 0,
      free: fs.int(`${dir}/${entry}/free_hugepages`) ?? 0,
      surplus: fs.int(`${dir}/${entry}/surplus_hugepages`) ?? 0,
    });
  }
  return pools.sort((a, b) => a.sizeBytes - b.sizeBytes);
}

function parseSize(text: string | undefined): number {
  if (text === undefined) return 0;
  const match = /^(\d+)\s*([KMG]?)/i.exec(text);
  if (match === null) return 0;
  const unit = match[2]!.toUpperCase();
  const factor = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
  return Number(match[1]) * factor;
}

function readCache(fs: SysfsTree, dir: string, level: number, cpus: number[]): Cache {
  const type = fs.text(`${dir}/type`);
  return {
    level,
    type: type === 'Data' ? 'data' : type === 'Instruction' ? 'instruction' : 'unified',
    sizeBytes: parseSize(fs.text(`${dir}/size`)),
    lineSizeBytes: fs.int(`${dir}/coherency_line_size`) ?? 0,
    ways: fs.int(`${dir}/ways_of_associativity`) ?? 0,
    cpus,
  };
}

function ueventField(uevent: string | undefined, key: string): string | undefined {
  if (uevent === undefined) return undefined;
  const match = new RegExp(`(?:^|\\n)${key}=([^\\n]*)`).exec(uevent);
  return match?.[1];
}

function readPciDevices(fs: SysfsTree, nodes: NumaNode[], online: number[], warnings: string[]): PciDevice[] {
  const dir = 'sys/bus/pci/devices';
  const addresses = (fs.list(dir) ?? []).filter((a) => pciAddressPattern.test(a));
  const nodeCpus = new Map(nodes.map((n) => [n.id, n.cpus]));
  const singleNode = nodes.length === 1 ? nodes[0]!.id : undefined;
  const devices = new Map<string, PciDevice>();
  for (const address of addresses) {
    const base = `${dir}/${address}`;
    const uevent = fs.read(`${base}/uevent`);
    const ueventClass = ueventField(uevent, 'PCI_CLASS');
    const ueventId = ueventField(uevent, 'PCI_ID')?.split(':');
    const classCode =
      ueventClass !== undefined ? parseInt(ueventClass, 16) : parseInt(fs.text(`${base}/class`) ?? '0', 16);
    const vendor =
      ueventId?.[0] !== undefined
        ? parseInt(ueventId[0], 16)
        : parseInt(fs.text(`${base}/vendor`) ?? '0', 16);
    const device =
      ueventId?.[1] !== undefined
        ? parseInt(ueventId[1], 16)
        : parseInt(fs.text(`${base}/device`) ?? '0', 16);
    const rawNode = fs.int(`${base}/numa_node`);
    let node: number | null = rawNode !== undefined && rawNode >= 0 && nodeCpus.has(rawNode) ? rawNode : null;
    if (rawNode !== undefined && rawNode >= 0 && !nodeCpus.has(rawNode)) {
      warnings.push(`PCI ${address}: numa_node ${rawNode} is not an online node`);
    }
    let localCpus: number[];
    if (node !== null) {
      localCpus = nodeCpus.get(node)!;
    } else {
      localCpus = listOrMask(fs, base, 'local_cpulist', 'local_cpus')?.filter((c) => online.includes(c)) ?? [
        ...online,
      ];
      // On a single-node machine the device is on that node, whatever the firmware says.
      if (singleNode !== undefined) node = singleNode;
    }
    devices.set(address, {
      address,
      class: hex(Number.isNaN(classCode) ? 0 : classCode, 6),
      kind: pciKind(Number.isNaN(classCode) ? 0 : classCode),
      vendor: hex(Number.isNaN(vendor) ? 0 : vendor, 4),
      device: hex(Number.isNaN(device) ? 0 : device, 4),
      driver: ueventField(uevent, 'DRIVER') ?? null,
      node,
      localCpus,
      netInterfaces: [],
      drmDevices: [],
      nvmeControllers: [],
      infinibandDevices: [],
    });
  }
  const classes = [
    ['net', 'netInterfaces', (_n: string) => true],
    ['drm', 'drmDevices', (n: string) => /^(card|renderD)\d+$/.test(n)],
    ['nvme', 'nvmeControllers', (n: string) => /^nvme\d+$/.test(n)],
    ['infiniband', 'infinibandDevices', (_n: string) => true],
  ] as const;
  for (const [cls, field, keep] of classes) {
    for (const name of fs.list(`sys/class/${cls}`) ?? []) {
      if (!keep(name)) continue;
      const target = fs.link(`sys/class/${cls}/${name}`);
      if (target === undefined) continue;
      const found = target.match(pciInPathPattern);
      const owner = found === null ? undefined : devices.get(found[found.length - 1]!);
      owner?.[field].push(name);
    }
  }
  return [...devices.values()].sort((a, b) => a.address.localeCompare(b.address));
}
