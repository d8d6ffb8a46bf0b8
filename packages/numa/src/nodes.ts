/**
 * NUMA nodes from /sys/devices/system/node: memory, distances, huge pages, and what kind of
 * memory each node holds. Memory-only nodes (CXL, HBM, persistent memory onlined by the kmem
 * driver, NVIDIA coherent GPU memory) get a locality and a label the way hwloc gives them
 * (hwloc/topology-linux.c: look_sysfsnode; hwloc/memattrs.c: memory tiers).
 */
import type { SysfsTree } from './sysfs.js';

const NODE = 'sys/devices/system/node';

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

/**
 * What memory a NUMA node holds, named as hwloc names memory tiers: `DRAM`, `HBM`, `GPUMemory`
 * (a GPU's memory onlined as a node), `NVM` (persistent memory), `SPM` (specific-purpose memory,
 * EFI_MEMORY_SP, often HBM), each also as CXL-attached (`CXL-DRAM` ...).
 */
export type MemoryKind =
  | 'DRAM'
  | 'HBM'
  | 'GPUMemory'
  | 'SPM'
  | 'NVM'
  | 'CXL-DRAM'
  | 'CXL-HBM'
  | 'CXL-GPUMemory'
  | 'CXL-SPM'
  | 'CXL-NVM';

/** Access performance of a node's memory from its best initiator (ACPI HMAT, via sysfs). */
export interface MemoryAccess {
  /** MB/s, 0 when unknown. */
  readBandwidth: number;
  writeBandwidth: number;
  /** Nanoseconds, 0 when unknown. */
  readLatency: number;
  writeLatency: number;
}

/** A memory-side cache: memory in front of a node's memory (e.g. DRAM caching persistent memory). */
export interface MemorySideCache {
  /** Level (index) of the cache, 1 nearest to the CPUs. */
  level: number;
  sizeBytes: number;
  lineSizeBytes: number;
  /** Direct-mapped (indexing 0); false when indexed in another way. */
  directMapped: boolean;
}

/** A NUMA node: memory, and the online CPUs closest to it. */
export interface NumaNode {
  id: number;
  /** Online CPUs of the node (empty for a memory-only node, e.g. CXL memory or HBM without cores). */
  cpus: number[];
  /**
   * The CPUs this node's memory is local to: its own CPUs and those of its HMAT initiators; for a
   * CPU-less node, the CPUs of its initiators, else those of the nodes nearest to it by distance
   * (when it is nearer to some than to others), else, for GPU memory, the GPU's local CPUs. Empty
   * when nothing says. This is where hwloc attaches the node in its tree.
   */
  localCpus: number[];
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
  /**
   * What memory the node holds, when something says: the GPU it belongs to, the DAX device it came
   * from (persistent or specific-purpose memory, CXL), or HMAT bandwidth telling HBM from DRAM.
   * Null when nothing does (ordinary memory on a machine with one kind of memory).
   */
  memoryKind: MemoryKind | null;
  /**
   * The node's memory tier as hwloc numbers them: nodes grouped by kind, and by bandwidth and
   * latency within 10%, fastest first (0). Null when the machine has a single tier about which
   * nothing is known.
   */
  memoryTier: number | null;
  /** The kernel's memory tier (`memory_tiering/memory_tierN`, Linux ≥ 6.1; lower is faster), or null. */
  kernelMemoryTier: number | null;
  /**
   * Nodes whose CPUs have the best access to this node's memory (HMAT `access1/initiators`, else
   * `access0/initiators`); empty when the firmware does not say.
   */
  initiators: number[];
  /** Access performance from those initiators (HMAT), or null when the firmware does not say. */
  access: MemoryAccess | null;
  /** The GPU (PCI address) whose memory this node is (NVIDIA coherent GPU memory), or null. */
  gpu: string | null;
  /** The DAX device whose memory the kernel onlined as this node (kmem driver), e.g. `dax0.0`, or null. */
  daxDevice: string | null;
  /** Memory-side caches in front of the node's memory (HMAT), nearest first. */
  memorySideCaches: MemorySideCache[];
}

/** The nodes as read, before the allowed-resources view is applied. */
export interface NodesRead {
  nodes: NumaNode[];
  /** Whether the tree has a node directory at all (a kernel built with NUMA). */
  numa: boolean;
}

function meminfoValue(text: string, key: string): number | undefined {
  const match = new RegExp(`(?:^|\\n)(?:Node \\d+ )?${key}:\\s+(\\d+)\\s*kB`).exec(text);
  return match === null ? undefined : Number(match[1]) * 1024;
}

export function readHugepages(fs: SysfsTree, dir: string): HugepagePool[] {
  const pools: HugepagePool[] = [];
  for (const entry of fs.dir(dir) ?? []) {
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

function union(...sets: number[][]): number[] {
  const out = new Set<number>();
  for (const set of sets) for (const x of set) out.add(x);
  return [...out].sort((a, b) => a - b);
}

function emptyNode(id: number): NumaNode {
  return {
    id,
    cpus: [],
    localCpus: [],
    memoryBytes: 0,
    freeBytes: 0,
    distances: [],
    hugepages: [],
    memoryKind: null,
    memoryTier: null,
    kernelMemoryTier: null,
    initiators: [],
    access: null,
    gpu: null,
    daxDevice: null,
    memorySideCaches: [],
  };
}

/**
 * Read the NUMA nodes. `online` are the CPUs that are PUs of the topology (node CPU sets are cut
 * to them). Without a node directory (a kernel built without NUMA), one node 0 holds every CPU and
 * the memory of /proc/meminfo.
 */
export function readNodes(fs: SysfsTree, online: number[], warnings: string[]): NodesRead {
  const onlineSet = new Set(online);
  const onlineOnly = (cpus: number[]): number[] => cpus.filter((c) => onlineSet.has(c));
  const ids =
    fs.list(`${NODE}/online`) ??
    fs
      .dir(NODE)
      ?.filter((e) => /^node\d+$/.test(e))
      .map((e) => Number(e.slice(4)))
      .sort((a, b) => a - b);
  if (ids === undefined) {
    const meminfo = fs.read('proc/meminfo') ?? '';
    const node = emptyNode(0);
    node.cpus = [...online];
    node.localCpus = [...online];
    node.memoryBytes = meminfoValue(meminfo, 'MemTotal') ?? 0;
    node.freeBytes = meminfoValue(meminfo, 'MemFree') ?? 0;
    node.distances = [10];
    node.hugepages = readHugepages(fs, 'sys/kernel/mm/hugepages');
    warnings.push(
      `${fs.path(NODE)} does not exist (a kernel without NUMA): one node 0 assumed, with every CPU and the memory of /proc/meminfo`,
    );
    return { nodes: [node], numa: false };
  }

  // Each node's CPUs (cpumap, as hwloc reads them). A node whose CPU set cannot be read, or
  // overlaps an earlier node's, is left out as hwloc leaves it out.
  const nodes: NumaNode[] = [];
  const claimed = new Set<number>();
  for (const id of ids) {
    const base = `${NODE}/node${id}`;
    const cpuset = fs.mask(`${base}/cpumap`, `${base}/cpulist`);
    if (cpuset === undefined) {
      warnings.push(`node ${id}: ${fs.path(`${base}/cpumap`)} cannot be read: the node is left out`);
      continue;
    }
    const cpus = onlineOnly(cpuset);
    if (cpus.some((c) => claimed.has(c))) {
      warnings.push(`node ${id}: its CPUs overlap an earlier node's (firmware error): the node is left out`);
      continue;
    }
    for (const c of cpus) claimed.add(c);
    const node = emptyNode(id);
    node.cpus = cpus;
    const meminfo = fs.read(`${base}/meminfo`);
    if (meminfo === undefined)
      warnings.push(`${fs.path(`${base}/meminfo`)} is missing: node ${id} memory unknown (0)`);
    else {
      node.memoryBytes = meminfoValue(meminfo, 'MemTotal') ?? 0;
      node.freeBytes = meminfoValue(meminfo, 'MemFree') ?? 0;
    }
    const distanceText = fs.text(`${base}/distance`);
    node.distances =
      distanceText === undefined || distanceText === '' ? [] : distanceText.split(/\s+/).map(Number);
    node.hugepages = readHugepages(fs, `${base}/hugepages`);
    readInitiators(fs, base, node);
    readMemorySideCaches(fs, base, node);
    nodes.push(node);
  }
  const readIds = nodes.map((n) => n.id);
  for (const node of nodes) {
    if (node.distances.length !== ids.length) {
      warnings.push(
        `node ${node.id}: distance lists ${node.distances.length} value(s) for ${ids.length} node(s)${node.distances.length === 0 ? '' : `: "${node.distances.join(' ')}"`}`,
      );
    } else if (readIds.length !== ids.length) {
      // Keep the matrix square over the nodes listed.
      node.distances = node.distances.filter((_, i) => readIds.includes(ids[i]!));
    }
  }

  readGpuMemory(fs, nodes, onlineOnly);
  const daxKinds = readDax(fs, nodes);
  readKernelTiers(fs, nodes);
  locateCpulessNodes(nodes);
  guessMemoryTiers(nodes, daxKinds);
  const orphans = online.filter((c) => !claimed.has(c));
  if (orphans.length > 0) warnings.push(`CPU(s) ${orphans.join(',')} are online but in no node's cpumap`);
  return { nodes, numa: true };
}

/** HMAT initiators and access performance: access1 (CPU initiators), else access0 (Linux ≥ 5.10). */
function readInitiators(fs: SysfsTree, base: string, node: NumaNode): void {
  let dir = `${base}/access1/initiators`;
  let entries = fs.exists(`${base}/access1`) ? fs.dir(dir) : undefined;
  if (entries === undefined && fs.exists(`${base}/access0`)) {
    dir = `${base}/access0/initiators`;
    entries = fs.dir(dir);
  }
  if (entries === undefined) return;
  node.initiators = entries
    .filter((e) => /^node\d+$/.test(e))
    .map((e) => Number(e.slice(4)))
    .filter((n) => n !== node.id)
    .sort((a, b) => a - b);
  const value = (name: string): number =>
    entries.includes(name) ? Math.max(0, fs.int(`${dir}/${name}`) ?? 0) : 0;
  const access: MemoryAccess = {
    readBandwidth: value('read_bandwidth'),
    writeBandwidth: value('write_bandwidth'),
    readLatency: value('read_latency'),
    writeLatency: value('write_latency'),
  };
  if (Object.values(access).some((v) => v > 0)) node.access = access;
}

function readMemorySideCaches(fs: SysfsTree, base: string, node: NumaNode): void {
  const dir = `${base}/memory_side_cache`;
  if (!fs.exists(dir)) return;
  for (const entry of fs.dir(dir) ?? []) {
    const match = /^index(\d+)$/.exec(entry);
    if (match === null) continue;
    const size = fs.text(`${dir}/${entry}/size`);
    const line = fs.int(`${dir}/${entry}/line_size`);
    const indexing = fs.int(`${dir}/${entry}/indexing`);
    if (size === undefined || line === undefined || indexing === undefined) continue;
    node.memorySideCaches.push({
      level: Number(match[1]),
      sizeBytes: Number(size),
      lineSizeBytes: line,
      directMapped: indexing === 0,
    });
  }
  node.memorySideCaches.sort((a, b) => a.level - b.level);
}

/** NVIDIA coherent GPU memory: /proc/driver/nvidia/gpus/BUSID/numa_status names its node. */
function readGpuMemory(fs: SysfsTree, nodes: NumaNode[], onlineOnly: (c: number[]) => number[]): void {
  const dir = 'proc/driver/nvidia/gpus';
  for (const busId of fs.optionalDir(dir) ?? []) {
    const status = fs.read(`${dir}/${busId}/numa_status`);
    const match = status === undefined ? null : /Node:\s*(-?\d+)/.exec(status);
    if (match === null) continue;
    const node = nodes.find((n) => n.id === Number(match[1]));
    if (node === undefined) continue;
    node.gpu = busId;
    node.memoryKind = 'GPUMemory';
    node.localCpus = onlineOnly(fs.mask(`sys/bus/pci/devices/${busId}/local_cpus`) ?? []);
  }
}

/**
 * Persistent and specific-purpose memory onlined as nodes by the kmem DAX driver: the device of
 * each such node, and what its memory is (by node id) as the tier grouping starts from it.
 */
function readDax(fs: SysfsTree, nodes: NumaNode[]): Map<number, number> {
  const kinds = new Map<number, number>();
  const dir = 'sys/bus/dax/devices';
  const kmem = fs.optionalDir('sys/bus/dax/drivers/kmem');
  if (kmem === undefined) return kinds;
  for (const name of fs.dir(dir) ?? []) {
    if (!kmem.includes(name)) continue;
    const target = fs.int(`${dir}/${name}/target_node`);
    const node = target === undefined ? undefined : nodes.find((n) => n.id === target);
    if (node === undefined) continue;
    node.daxDevice = name;
    const link = fs.link(`${dir}/${name}`);
    if (link === undefined) continue;
    // ../../../devices/LNXSYSTM:00/.../ndbus0/region2/dax2.0/dax2.0 (NVDIMM), .../platform/hmem.0/dax0.0
    // (specific-purpose memory), .../ACPI0017:00/root0/decoder0.0/region0/dax_region0/dax0.0 (CXL RAM).
    let kind: number = link.includes('ndbus') ? kindBits.NVM : kindBits.SPM;
    const region = /\/region(\d+)/.exec(link);
    // CXL memory: persistent or not, nothing more is known (hwloc: kinds &= NVM, |= CXL).
    if (region !== null && fs.exists(`sys/bus/cxl/devices/region${region[1]}/target0`))
      kind = (kind & kindBits.NVM) | kindBits.CXL;
    kinds.set(node.id, kind);
  }
  return kinds;
}

/** The kernel's memory tiers (Linux ≥ 6.1): memory_tiering/memory_tierN/nodelist. */
function readKernelTiers(fs: SysfsTree, nodes: NumaNode[]): void {
  const dir = 'sys/devices/virtual/memory_tiering';
  for (const entry of fs.optionalDir(dir) ?? []) {
    const match = /^memory_tier(\d+)$/.exec(entry);
    if (match === null) continue;
    for (const id of fs.list(`${dir}/${entry}/nodelist`) ?? []) {
      const node = nodes.find((n) => n.id === id);
      if (node !== undefined) node.kernelMemoryTier = Number(match[1]);
    }
  }
}

/**
 * Where each node's memory is local (hwloc's rules): a node's own CPUs and those of its HMAT
 * initiators; for a CPU-less node without initiators, the CPUs of the nodes strictly nearest to it
 * by distance (unless every other node is as near).
 */
function locateCpulessNodes(nodes: NumaNode[]): void {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const initiatorCpus = (node: NumaNode): number[] =>
    union(...node.initiators.map((id) => byId.get(id)?.cpus ?? []));
  for (const node of nodes) {
    if (node.cpus.length === 0 && node.gpu === null) continue;
    node.localCpus = union(node.cpus, node.localCpus, initiatorCpus(node));
  }
  nodes.forEach((node, i) => {
    if (node.cpus.length > 0 || node.gpu !== null) return;
    node.localCpus = initiatorCpus(node);
    if (node.localCpus.length > 0) return;
    const own = node.distances[i];
    if (own === undefined || node.distances.length !== nodes.length) return;
    let min = Infinity;
    let count = 0;
    nodes.forEach((_, j) => {
      if (j === i) return;
      const d = node.distances[j]!;
      if (d < min) {
        min = d;
        count = 1;
      } else if (d === min) count++;
    });
    if (min <= own || min === Infinity || count === nodes.length - 1) return;
    node.localCpus = union(
      ...nodes.filter((_, j) => j !== i && node.distances[j] === min).map((n) => n.localCpus),
    );
  });
}

/** hwloc's memory-tier kinds as bits, in its order (higher bandwidth kinds first). */
const kindBits = { HBM: 1, DRAM: 2, GPUMemory: 4, SPM: 8, NVM: 16, CXL: 32 } as const;

function kindToBits(kind: MemoryKind | null): number {
  if (kind === null) return 0;
  if (kind.startsWith('CXL-')) return kindBits.CXL | kindBits[kind.slice(4) as keyof typeof kindBits];
  return kindBits[kind as keyof typeof kindBits];
}

function bitsToKind(bits: number): MemoryKind | null {
  const base = (Object.keys(kindBits) as (keyof typeof kindBits)[]).find(
    (k) => k !== 'CXL' && (bits & ~kindBits.CXL) === kindBits[k],
  );
  // CXL alone (CXL memory that is not persistent) is named CXL-DRAM, as hwloc names it.
  if (bits & kindBits.CXL) return base === undefined ? 'CXL-DRAM' : (`CXL-${base}` as MemoryKind);
  return (base as MemoryKind | undefined) ?? null;
}

interface Tier {
  nodes: NumaNode[];
  kinds: number;
  bwMin: number;
  bwMax: number;
}

/**
 * Group nodes into memory tiers and name what is not named yet, as hwloc does (memattrs.c:
 * hwloc__group_memory_tiers, hwloc__guess_memory_tiers_kinds): nodes sorted by kind, then by local
 * bandwidth; a new tier where the kind changes or bandwidth or latency differ by more than 10%.
 * With two unnamed tiers (or one unnamed and one SPM), the one with more than twice the other's
 * bandwidth is HBM and the other DRAM. Tiers are numbered by bandwidth, then kind.
 */
function guessMemoryTiers(nodes: NumaNode[], daxKinds: Map<number, number>): void {
  if (nodes.length === 0) return;
  const info = nodes.map((node) => {
    const a = node.access;
    const local = node.localCpus.length > 0 && a !== null;
    return {
      node,
      kinds: node.memoryKind !== null ? kindToBits(node.memoryKind) : (daxKinds.get(node.id) ?? 0),
      bw: local && a.readBandwidth > 0 && a.writeBandwidth > 0 ? (a.readBandwidth + a.writeBandwidth) / 2 : 0,
      lat: local && a.readLatency > 0 && a.writeLatency > 0 ? (a.readLatency + a.writeLatency) / 2 : 0,
      rank: 0,
    };
  });
  info.sort((a, b) => a.kinds - b.kinds || b.bw - a.bw || a.node.id - b.node.id);
  for (let i = 1; i < info.length; i++) {
    const cur = info[i]!;
    const prev = info[i - 1]!;
    cur.rank = prev.rank;
    const ratio = (x: number, y: number): number => (x > y ? x / y : y / x);
    if (
      cur.kinds !== prev.kinds ||
      (cur.bw > 0 && prev.bw > 0 && ratio(cur.bw, prev.bw) > 1.1) ||
      (cur.lat > 0 && prev.lat > 0 && ratio(cur.lat, prev.lat) > 1.1)
    )
      cur.rank++;
  }
  const tiers: Tier[] = [];
  for (const entry of info) {
    const tier = (tiers[entry.rank] ??= { nodes: [], kinds: entry.kinds, bwMin: 0, bwMax: 0 });
    tier.nodes.push(entry.node);
    if (tier.bwMin === 0) tier.bwMin = entry.bw;
    tier.bwMax = entry.bw;
  }
  if (tiers.length > 1) {
    const unknown = tiers.filter((t) => t.kinds === 0);
    const spm = tiers.filter((t) => t.kinds === kindBits.SPM);
    const named = tiers.some((t) => t.kinds === kindBits.DRAM || t.kinds === kindBits.HBM);
    const guess = (a: Tier, b: Tier): void => {
      if (a.bwMin === 0 || b.bwMin === 0) return;
      const [slow, fast] = a.bwMin > b.bwMin ? [b, a] : [a, b];
      if (fast.bwMin <= slow.bwMax * 2) return;
      slow.kinds = kindBits.DRAM;
      fast.kinds = kindBits.HBM;
    };
    if (!named && unknown.length === 2 && spm.length === 0) guess(unknown[0]!, unknown[1]!);
    else if (!named && unknown.length === 1 && spm.length === 1) guess(unknown[0]!, spm[0]!);
  }
  if (tiers.length === 1 && tiers[0]!.kinds === 0) return;
  tiers.sort((a, b) => {
    if (a.bwMin > 0 && b.bwMin > 0) {
      const diff = b.bwMin + b.bwMax - (a.bwMin + a.bwMax);
      if (diff !== 0) return diff;
    }
    return a.kinds - b.kinds;
  });
  tiers.forEach((tier, index) => {
    for (const node of tier.nodes) {
      node.memoryTier = index;
      node.memoryKind ??= bitsToKind(tier.kinds);
    }
  });
}
