/**
 * The machine's topology as Linux describes it in sysfs: NUMA nodes, packages, dies, clusters,
 * cores and their hardware threads, caches, and where PCI devices are attached, seen as hwloc's
 * Linux backend sees it (hwloc/topology-linux.c), by default restricted to what this process may
 * use.
 */
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { readAllowed, type AllowedResources } from './allowed.js';
import { readNodes, type NumaNode } from './nodes.js';
import { readPciDevices, type PciDevice } from './pci.js';
import { SysfsTree } from './sysfs.js';

export type { HugepagePool, MemoryAccess, MemoryKind, MemorySideCache, NumaNode } from './nodes.js';
export { pciKind, type PciDevice, type PciDeviceKind } from './pci.js';
export type { AllowedResources } from './allowed.js';

/** A physical package (socket). */
export interface CpuPackage {
  /** Position in {@link Topology.packages}: what `package` of a core, die, cluster or processor refers to. */
  index: number;
  /** physical_package_id, or null when the kernel gives none or -1 (e.g. POWER LPARs). */
  id: number | null;
  /** Its CPUs (empty when none is allowed but one of its NUMA nodes is). */
  cpus: number[];
  /** The NUMA nodes whose CPUs are in this package. */
  nodes: number[];
}

/** A die of a multi-die package (listed only when some package has more than one die). */
export interface CpuDie {
  /** Index of its package in {@link Topology.packages}, or null. */
  package: number | null;
  /** die_id. */
  id: number;
  cpus: number[];
}

/**
 * A cluster of cores (arm64 clusters, x86 modules sharing an L2), listed only when some cluster
 * has more than one core.
 */
export interface CpuCluster {
  /** Index of its package in {@link Topology.packages}, or null. */
  package: number | null;
  /** cluster_id (or an index when the kernel does not give one). */
  id: number;
  cpus: number[];
}

/** A core and its online hardware threads (SMT siblings). */
export interface CpuCore {
  /** Index in {@link Topology.cores} (cores are numbered by their first CPU, as lscpu does). */
  id: number;
  /** Index of its package in {@link Topology.packages}, or null when the kernel says of none. */
  package: number | null;
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
  /** CPUs sharing it (shared_cpu_map). */
  cpus: number[];
}

/** One CPU (hardware thread) and where it sits. */
export interface Processor {
  id: number;
  /** Index of its package in {@link Topology.packages}, or null when the kernel says of none. */
  package: number | null;
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
  /**
   * Whether this is the whole machine (`wholeSystem: true`), or only what this process may use
   * (the default): see {@link Topology.allowed}.
   */
  wholeSystem: boolean;
  /** The online CPUs shown: those with topology information, and (by default) allowed. */
  cpus: number[];
  /** CPUs present but offline. */
  offlineCpus: number[];
  /** CPUs isolated from the scheduler (isolcpus=). */
  isolatedCpus: number[];
  /** What this process may use (its cgroup cpuset) and what said so, whichever view is shown. */
  allowed: AllowedResources;
  processors: Processor[];
  /**
   * NUMA nodes, sorted by id: memory-only and GPU-memory nodes included, labelled. On a kernel
   * without NUMA, one node 0 holding everything.
   */
  nodes: NumaNode[];
  packages: CpuPackage[];
  dies: CpuDie[];
  clusters: CpuCluster[];
  cores: CpuCore[];
  /** Cache instances, one per distinct set of CPUs sharing it; sorted by level, type, then first CPU. */
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
  /**
   * The whole machine, rather than only the CPUs and NUMA nodes this process may use (its cgroup
   * cpuset, as hwloc finds it; else its Cpus_allowed_list and Mems_allowed_list). Default false,
   * as hwloc (lstopo --disallowed shows the whole machine).
   */
  wholeSystem?: boolean;
  /** Logger for what the tree leaves out (default: silent). */
  logger?: Logger;
  /** Longest stretch of synchronous reads between yields to the event loop, in ms (default 2). */
  sliceMs?: number;
}

const CPU = 'sys/devices/system/cpu';

function byFirst(a: readonly number[], b: readonly number[]): number {
  return (a[0] ?? Infinity) - (b[0] ?? Infinity);
}

function parseSize(text: string | undefined): number {
  if (text === undefined) return 0;
  const match = /^(\d+)\s*([KMG]?)/i.exec(text);
  if (match === null) return 0;
  const unit = match[2]!.toUpperCase();
  const factor = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
  return Number(match[1]) * factor;
}

/** The attributes of a cache other than its CPUs. */
type CacheKind = Omit<Cache, 'cpus' | 'sizeBytes'>;

/** A topology file by its current name, else its old name, else their list-format twins. */
function pick(names: Set<string>, ...candidates: string[]): { mask: string; list?: string } | undefined {
  for (const name of candidates) if (names.has(name)) return { mask: name, list: `${name}_list` };
  for (const name of candidates) if (names.has(`${name}_list`)) return { mask: `${name}_list` };
  return undefined;
}

/**
 * Read the topology of the machine (or of a sysfs tree under `root`).
 *
 * It counts and groups what hwloc's Linux backend does: CPUs that are online and have topology
 * information; cores, dies, clusters and packages from the sibling masks (a package without a
 * physical_package_id, or with -1, keeps its CPUs with a null id; CPUs without package masks are in
 * no package); one cache per distinct set of CPUs sharing it (shared_cpu_map); AMD compute units
 * as one core per thread; NUMA nodes from their cpumap, memory-only and GPU-memory nodes labelled
 * with their kind, tier and locality. Values that end in "\n\0" (older kernels) are read as
 * values. By default only what this process may use is shown (its cgroup cpuset; see
 * {@link ReadTopologyOptions.wholeSystem}). What the tree leaves out is noted in `warnings`.
 *
 * To read fast it reads one sibling mask per core, package, die and cache instead of one per CPU,
 * and the level, type, line size and associativity of a cache once per cache index and size
 * (caches of the same index and size on other CPUs are of the same kind: the kernel fills them
 * from the same CPUID leaf or firmware table entry).
 *
 * @throws OpdbusError `OPDBUS_ERR_NUMA_READ` when the root has no readable sys/devices/system/cpu.
 */
export async function readTopology(options: ReadTopologyOptions = {}): Promise<Topology> {
  const root = options.root ?? '/';
  const wholeSystem = options.wholeSystem === true;
  const logger = options.logger ?? silentLogger;
  const fs = new SysfsTree(root, options.sliceMs);
  const warnings: string[] = [];

  // CPUs: present (a cpuN directory), online, isolated.
  const cpuEntries = fs.dir(CPU);
  if (cpuEntries === undefined) {
    throw new OpdbusError(
      'OPDBUS_ERR_NUMA_READ',
      `Cannot read the CPU topology: ${fs.path(CPU)} does not exist or is not readable; pass a root that holds sys/ and proc/ as the kernel lays them out (default /).`,
      { data: { root, path: fs.path(CPU), problems: fs.problems } },
    );
  }
  const present = cpuEntries
    .filter((e) => /^cpu\d+$/.test(e))
    .map((e) => Number(e.slice(3)))
    .sort((a, b) => a - b);
  const onlineList = fs.list(`${CPU}/online`);
  let online: number[];
  if (onlineList !== undefined) {
    const set = new Set(onlineList);
    online = present.filter((c) => set.has(c));
  } else {
    // As hwloc: a CPU is offline when its cpuN/online says 0 (cpu0 often has no such file).
    online = present.filter((cpu) => fs.text(`${CPU}/cpu${cpu}/online`) !== '0');
    warnings.push(`${fs.path(`${CPU}/online`)} is missing: online CPUs taken from each cpuN/online`);
  }
  const onlineSet = new Set(online);
  const offlineCpus = present.filter((c) => !onlineSet.has(c));
  const isolatedCpus = fs.list(`${CPU}/isolated`) ?? [];

  // Which topology files this kernel writes, from the first online CPU that has them.
  const noTopology = new Set<number>();
  let topologyNames: Set<string> | undefined;
  for (const cpu of online) {
    const names = fs.dir(`${CPU}/cpu${cpu}/topology`);
    if (names !== undefined) {
      topologyNames = new Set(names);
      break;
    }
    noTopology.add(cpu);
  }
  if (topologyNames === undefined && online.length > 0) {
    // No CPU has topology information (hwloc falls back to bare PUs): each CPU is a core.
    noTopology.clear();
    warnings.push(
      `no online CPU has a topology directory (${fs.path(`${CPU}/cpuN/topology`)}): each CPU is taken as a core of its own, in no package`,
    );
  }
  const names = topologyNames ?? new Set<string>();
  const coreFile = pick(names, 'core_cpus', 'thread_siblings');
  const packageFile = pick(names, 'package_cpus', 'core_siblings');
  const dieFile = pick(names, 'die_cpus');
  const clusterFile = pick(names, 'cluster_cpus');
  const readSet = (cpu: number, file: { mask: string; list?: string }): number[] | undefined => {
    const base = `${CPU}/cpu${cpu}/topology`;
    return fs.mask(`${base}/${file.mask}`, file.list === undefined ? undefined : `${base}/${file.list}`);
  };

  // Cores, clusters, dies, packages: one read of a sibling mask covers every CPU in it.
  const coreOf = new Map<number, number>();
  const coreLists: number[][] = [];
  const clusterOf = new Map<number, number>();
  const clusterEntries: { first: number; cpus: number[] }[] = [];
  const dieOf = new Map<number, number>();
  const dieEntries: { first: number; cpus: number[] }[] = [];
  const packageOf = new Map<number, number | null>();
  const packageEntries: { id: number | null; cpus: number[] }[] = [];
  let threadsAreCores: boolean | undefined;
  const isPu = (c: number): boolean => onlineSet.has(c) && !noTopology.has(c);
  const claim = (set: number[], cpu: number, taken: Map<number, unknown>): number[] => {
    const members = set.filter((m) => isPu(m) && !taken.has(m));
    if (!members.includes(cpu)) {
      members.push(cpu);
      members.sort((a, b) => a - b);
    }
    return members;
  };

  // Caches: known indexes (from the first CPU that lists its cache directory), which CPUs each
  // index is known for, and the kind of cache of each index and size.
  let cacheIndexes: number[] | undefined;
  const covered = new Map<number, Set<number>>();
  const kinds = new Map<string, CacheKind | null>();
  const caches: Cache[] = [];
  /** Caches by level, type and first CPU, to find the same cache listed twice. */
  const cacheKeys = new Map<string, Cache[]>();
  let cpusWithoutCaches = 0;
  /**
   * Cache indexes private to a core (its shared_cpu_map is the core's threads) on the first core,
   * with their kind and size: on a machine of one kind of core, every core with as many threads
   * has the same (L1 and usually L2), so their files are not read again for each core. A machine
   * with cores of several kinds (an Intel hybrid's cpu_atom PMU, arm64's cpu_capacity) reads them
   * all, as do cores with another number of threads.
   */
  const perCore = new Map<number, { kind: CacheKind; sizeBytes: number }>();
  let oneKindOfCore: boolean | undefined;
  const firstCoreThreads = (): number => coreLists[0]?.length ?? 0;
  const sameKindOfCores = (): boolean =>
    (oneKindOfCore ??=
      !fs.exists('sys/devices/cpu_atom') && !fs.exists(`${CPU}/cpu${coreLists[0]![0]}/cpu_capacity`));
  let clustersAreCores = false;

  for (const cpu of online) {
    if (noTopology.has(cpu)) continue;
    const base = `${CPU}/cpu${cpu}/topology`;
    let firstOfCore = false;
    if (!coreOf.has(cpu)) {
      let set = coreFile === undefined ? undefined : readSet(cpu, coreFile);
      if (set === undefined && coreFile !== undefined && !fs.exists(base)) {
        noTopology.add(cpu);
        continue;
      }
      set ??= [cpu];
      let members = claim(set, cpu, coreOf);
      if (members.length > 1) {
        // AMD compute units (family 15h/16h): two "threads" with their own core_id are two cores.
        threadsAreCores ??= isAmdWithComputeUnits(fs) && otherCoreId(fs, cpu, members);
        if (threadsAreCores) members = [cpu];
      }
      for (const m of members) coreOf.set(m, coreLists.length);
      coreLists.push(members);
      firstOfCore = true;
    }
    if (firstOfCore && clusterFile !== undefined && !clusterOf.has(cpu)) {
      // A cluster of one core on the first core: on a machine of one kind of core, so on every
      // core with as many threads (see perCore below).
      const coreMembers: number[] = coreLists[coreOf.get(cpu)!]!;
      const set: number[] | undefined =
        clustersAreCores &&
        coreOf.get(cpu) !== 0 &&
        coreMembers.length === firstCoreThreads() &&
        sameKindOfCores()
          ? coreMembers
          : readSet(cpu, clusterFile);
      if (coreOf.get(cpu) === 0)
        clustersAreCores =
          set !== undefined &&
          set.filter((m) => isPu(m)).length === coreMembers.length &&
          coreMembers.every((m) => set.includes(m));
      if (set !== undefined) {
        const members = claim(set, cpu, clusterOf);
        for (const m of members) clusterOf.set(m, clusterEntries.length);
        clusterEntries.push({ first: cpu, cpus: members });
      }
    }
    if (dieFile !== undefined && !dieOf.has(cpu)) {
      const set = readSet(cpu, dieFile);
      if (set !== undefined) {
        const members = claim(set, cpu, dieOf);
        for (const m of members) dieOf.set(m, dieEntries.length);
        dieEntries.push({ first: cpu, cpus: members });
      }
    }
    if (!packageOf.has(cpu)) {
      const set = packageFile === undefined ? undefined : readSet(cpu, packageFile);
      if (set === undefined) {
        packageOf.set(cpu, null);
      } else {
        const id = fs.int(`${base}/physical_package_id`);
        const members = claim(set, cpu, packageOf);
        for (const m of members) packageOf.set(m, packageEntries.length);
        packageEntries.push({ id: id === undefined || id < 0 ? null : id, cpus: members });
      }
    }

    // Caches of this CPU not known from a CPU that shares them.
    const cacheBase = `${CPU}/cpu${cpu}/cache`;
    if (cacheIndexes === undefined) {
      const entries = fs.dir(cacheBase);
      if (entries !== undefined) cacheIndexes = indexesOf(entries);
    }
    let newKind = false;
    const core = coreOf.get(cpu)!;
    for (const index of cacheIndexes ?? []) {
      const done = covered.get(index) ?? new Set<number>();
      covered.set(index, done);
      if (done.has(cpu)) continue;
      if (core !== 0 && samePerCore(cpu, index, done)) continue;
      if (readCache(cpu, index, done)) newKind = true;
    }
    if (cacheIndexes === undefined) cpusWithoutCaches++;
    else if (newKind) {
      // A CPU with caches of a kind not seen before (another kind of core) may have more cache
      // indexes than the first one.
      const next = (cacheIndexes[cacheIndexes.length - 1] ?? -1) + 1;
      if (fs.exists(`${cacheBase}/index${next}`)) {
        const more = indexesOf(fs.dir(cacheBase) ?? []).filter((i) => !cacheIndexes!.includes(i));
        cacheIndexes = [...cacheIndexes, ...more].sort((a, b) => a - b);
        for (const index of more) {
          const done = covered.get(index) ?? new Set<number>();
          covered.set(index, done);
          readCache(cpu, index, done);
        }
      }
    }
    const turn = fs.pace();
    if (turn !== undefined) await turn;
  }

  /** A core-private cache of `cpu` known from the first core: added, and true. */
  function samePerCore(cpu: number, index: number, done: Set<number>): boolean {
    const known = perCore.get(index);
    if (known === undefined) return false;
    const members = coreLists[coreOf.get(cpu)!]!;
    if (members.length !== firstCoreThreads()) return false;
    if (!sameKindOfCores()) return false;
    for (const m of members) done.add(m);
    const cache = { ...known.kind, sizeBytes: known.sizeBytes, cpus: [...members] };
    const id = `${cache.level}:${cache.type}:${members[0]}`;
    cacheKeys.set(id, [...(cacheKeys.get(id) ?? []), cache]);
    caches.push(cache);
    return true;
  }

  /** Read one cache of `cpu`; true when it is of a kind (index and size) not seen before. */
  function readCache(cpu: number, index: number, done: Set<number>): boolean {
    const dir = `${CPU}/cpu${cpu}/cache/index${index}`;
    let shared = fs.mask(`${dir}/shared_cpu_map`, `${dir}/shared_cpu_list`);
    if (shared === undefined) return true;
    // An empty map (seen on ia64): the core's threads, as hwloc does.
    if (shared.length === 0) shared = coreLists[coreOf.get(cpu) ?? -1] ?? [cpu];
    const cpus = shared.filter((m) => isPu(m));
    if (!cpus.includes(cpu)) {
      cpus.push(cpu);
      cpus.sort((a, b) => a - b);
    }
    for (const m of cpus) done.add(m);
    const sizeText = fs.text(`${dir}/size`);
    const key = `${index}:${sizeText ?? ''}`;
    let kind = kinds.get(key);
    const isNew = kind === undefined;
    if (kind === undefined) {
      const level = fs.int(`${dir}/level`);
      const type = fs.text(`${dir}/type`);
      kind =
        level === undefined
          ? null
          : {
              level,
              type: type === 'Data' ? 'data' : type === 'Instruction' ? 'instruction' : 'unified',
              lineSizeBytes: fs.int(`${dir}/coherency_line_size`) ?? 0,
              ways: Math.max(0, fs.int(`${dir}/ways_of_associativity`) ?? 0),
            };
      kinds.set(key, kind);
    }
    if (kind === null) return isNew;
    const core = coreOf.get(cpu);
    if (core === 0) {
      const members = coreLists[0]!;
      if (members.length === cpus.length && members.every((m, i) => m === cpus[i]))
        perCore.set(index, { kind, sizeBytes: parseSize(sizeText) });
    }
    const id = `${kind.level}:${kind.type}:${cpus[0]}`;
    const same = cacheKeys.get(id) ?? [];
    if (!same.some((c) => c.cpus.length === cpus.length && c.cpus.every((x, i) => x === cpus[i]))) {
      const cache = { ...kind, sizeBytes: parseSize(sizeText), cpus };
      same.push(cache);
      cacheKeys.set(id, same);
      caches.push(cache);
    }
    return isNew;
  }

  // The CPUs hwloc would show: online with topology information.
  const pus = online.filter((c) => !noTopology.has(c));
  if (noTopology.size > 0) {
    warnings.push(
      `CPU(s) ${[...noTopology].join(',')} are online but have no topology directory: left out, as hwloc does`,
    );
  }
  if (cpusWithoutCaches > 0) {
    warnings.push(
      cpusWithoutCaches === pus.length
        ? 'no cache information (cpuN/cache is missing): caches are not known'
        : `${cpusWithoutCaches} online CPU(s) have no cache information`,
    );
  }

  // NUMA nodes, then what this process may use.
  const { nodes: allNodes } = readNodes(fs, pus, warnings);
  await fs.pace();
  const allowed = readAllowed(
    fs,
    pus,
    allNodes.map((n) => n.id),
  );
  const pciDevices = readPciDevices(fs, allNodes, pus, warnings);
  await fs.pace();

  // The view: everything, or what is allowed.
  const shownCpus = wholeSystem ? pus : allowed.cpus;
  const shown = new Set(shownCpus);
  const everything = shownCpus.length === pus.length;
  const keep = (cpus: number[]): number[] => (everything ? cpus : cpus.filter((c) => shown.has(c)));
  const shownNodeIds = new Set(wholeSystem ? allNodes.map((n) => n.id) : allowed.nodes);
  const nodes = allNodes
    .filter((n) => shownNodeIds.has(n.id))
    .map((n) => (everything ? n : { ...n, cpus: keep(n.cpus), localCpus: keep(n.localCpus) }));
  if (nodes.length < allNodes.length) {
    // Distances between the nodes shown only.
    const kept = nodes.map((n) => allNodes.findIndex((m) => m.id === n.id));
    for (const node of nodes)
      if (node.distances.length === allNodes.length) node.distances = kept.map((i) => node.distances[i]!);
  }
  const nodeOf = new Map<number, number>();
  for (const node of nodes) for (const cpu of node.cpus) nodeOf.set(cpu, node.id);

  // Packages: those with a CPU shown, or (as hwloc keeps them) a node shown that is local to it.
  const packageOrder = packageEntries
    .map((p, entry) => ({ ...p, entry }))
    .sort((a, b) => byFirst(a.cpus, b.cpus));
  const packages: CpuPackage[] = [];
  const packageIndex = new Map<number, number>();
  for (const p of packageOrder) {
    const cpus = keep(p.cpus);
    const inside = new Set(p.cpus);
    const nodeIds = nodes
      .filter((n) => allNodes.find((m) => m.id === n.id)!.cpus.some((c) => inside.has(c)))
      .map((n) => n.id);
    const hasLocalNode = nodes.some((n) => {
      const full = allNodes.find((m) => m.id === n.id)!.localCpus;
      return full.length > 0 && full.every((c) => inside.has(c));
    });
    if (cpus.length === 0 && !hasLocalNode) continue;
    packageIndex.set(p.entry, packages.length);
    packages.push({ index: packages.length, id: p.id, cpus, nodes: nodeIds });
  }
  const packageOfCpu = (cpu: number): number | null => {
    const entry = packageOf.get(cpu);
    return entry === undefined || entry === null ? null : (packageIndex.get(entry) ?? null);
  };

  // Cores, caches, dies and clusters cut to the CPUs shown.
  const coreSets = coreLists
    .map(keep)
    .filter((cpus) => cpus.length > 0)
    .sort(byFirst);
  const cores: CpuCore[] = coreSets.map((cpus, id) => ({
    id,
    package: packageOfCpu(cpus[0]!),
    cpus,
    node: nodeOf.get(cpus[0]!) ?? null,
  }));
  const coreIndex = new Map<number, number>();
  for (const core of cores) for (const cpu of core.cpus) coreIndex.set(cpu, core.id);
  const shownCaches = (everything ? caches : caches.map((c) => ({ ...c, cpus: keep(c.cpus) })))
    .filter((c) => c.cpus.length > 0)
    .sort((a, b) => a.level - b.level || a.type.localeCompare(b.type) || byFirst(a.cpus, b.cpus));

  const dieSets = dieEntries.map((d) => ({ ...d, cpus: keep(d.cpus) })).filter((d) => d.cpus.length > 0);
  const diesPerPackage = new Map<number | null, number>();
  for (const die of dieSets) {
    const p = packageOfCpu(die.first);
    diesPerPackage.set(p, (diesPerPackage.get(p) ?? 0) + 1);
  }
  const diesAreLevel = [...diesPerPackage.values()].some((n) => n > 1);
  const dies: CpuDie[] = diesAreLevel
    ? dieSets
        .map((d, index) => ({
          package: packageOfCpu(d.first),
          id: fs.int(`${CPU}/cpu${d.first}/topology/die_id`) ?? index,
          cpus: d.cpus,
        }))
        .sort((a, b) => byFirst(a.cpus, b.cpus))
    : [];
  const dieIdOf = new Map<number, number>();
  for (const die of dies) for (const cpu of die.cpus) dieIdOf.set(cpu, die.id);

  const clusterSets = clusterEntries
    .map((c) => ({ ...c, cpus: keep(c.cpus) }))
    .filter((c) => c.cpus.length > 0);
  const clusterIsLevel = clusterSets.some((c) => new Set(c.cpus.map((cpu) => coreIndex.get(cpu))).size > 1);
  const clusters: CpuCluster[] = clusterIsLevel
    ? clusterSets
        .map((c, index) => ({
          package: packageOfCpu(c.first),
          id: fs.int(`${CPU}/cpu${c.first}/topology/cluster_id`) ?? index,
          cpus: c.cpus,
        }))
        .sort((a, b) => byFirst(a.cpus, b.cpus))
    : [];
  const clusterIdOf = new Map<number, number>();
  for (const cluster of clusters) for (const cpu of cluster.cpus) clusterIdOf.set(cpu, cluster.id);

  const processors: Processor[] = shownCpus.map((id) => ({
    id,
    package: packageOfCpu(id),
    die: dieIdOf.get(id) ?? null,
    cluster: clusterIdOf.get(id) ?? null,
    core: coreIndex.get(id)!,
    node: nodeOf.get(id) ?? null,
  }));
  if (!everything) for (const device of pciDevices) device.localCpus = keep(device.localCpus);

  warnings.push(...fs.problems);
  for (const warning of warnings) logger.debug({ root }, warning);
  return {
    root,
    wholeSystem,
    cpus: shownCpus,
    offlineCpus,
    isolatedCpus,
    allowed,
    processors,
    nodes,
    packages,
    dies,
    clusters,
    cores,
    caches: shownCaches,
    pciDevices,
    warnings,
  };
}

function indexesOf(entries: string[]): number[] {
  return entries
    .filter((e) => /^index\d+$/.test(e))
    .map((e) => Number(e.slice(5)))
    .sort((a, b) => a - b);
}

/** Whether /proc/cpuinfo names an AMD family 15h or 16h CPU (Bulldozer compute units), as hwloc checks. */
function isAmdWithComputeUnits(fs: SysfsTree): boolean {
  const head = fs.head('proc/cpuinfo', 4096);
  if (head === undefined) return false;
  const vendor = /(?:^|\n)vendor_id\s*:\s*(\S+)/.exec(head)?.[1];
  const family = /(?:^|\n)cpu family\s*:\s*(\d+)/.exec(head)?.[1];
  return vendor === 'AuthenticAMD' && (family === '21' || family === '22');
}

/** Whether another thread of `cpu`'s core has a core_id of its own (threads are cores then). */
function otherCoreId(fs: SysfsTree, cpu: number, members: number[]): boolean {
  const sibling = members.find((m) => m !== cpu)!;
  const mine = fs.int(`${CPU}/cpu${cpu}/topology/core_id`);
  const theirs = fs.int(`${CPU}/cpu${sibling}/topology/core_id`);
  return mine !== theirs;
}
