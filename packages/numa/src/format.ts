/**
 * The topology for people: an lstopo-like tree (objects nested by the CPUs they cover, identical
 * ones merged on one line with `+`), the PCI devices under their node, and the distance matrix.
 */
import { formatCpuList } from './cpuList.js';
import { formatBytes } from './placement.js';
import type { Cache, PciDevice, Topology } from './topology.js';

interface TreeObject {
  label: string;
  /** Printed after the CPU list (a core's private caches). */
  tail: string;
  cpus: number[];
  /** Order among objects with the same CPUs: outermost first. */
  rank: number;
  children: TreeObject[];
  /** Lines printed under the object (PCI devices). */
  extra: string[];
  key: string;
}

function contains(outer: number[], inner: number[]): boolean {
  const set = new Set(outer);
  return inner.every((c) => set.has(c));
}

function cacheName(cache: Cache): string {
  const suffix = cache.type === 'data' ? 'd' : cache.type === 'instruction' ? 'i' : '';
  return `L${cache.level}${suffix}`;
}

function cacheLabel(cache: Cache): string {
  const geometry = [
    cache.ways > 0 ? `${cache.ways}-way` : '',
    cache.lineSizeBytes > 0 ? `${cache.lineSizeBytes} B lines` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${cacheName(cache)} ${formatBytes(cache.sizeBytes)}${geometry === '' ? '' : ` (${geometry})`}`;
}

const kindNames: Record<PciDevice['kind'], string> = {
  gpu: 'GPU',
  nic: 'NIC',
  infiniband: 'InfiniBand',
  nvme: 'NVMe',
  storage: 'Storage',
  accelerator: 'Accelerator',
  bridge: 'Bridge',
  other: 'Device',
};

/** One line for a PCI device: `PCI 0000:3b:00.0 GPU [10de:2330] card0, renderD128 (nvidia)`. */
export function formatPciDevice(device: PciDevice): string {
  const names = [
    ...device.netInterfaces,
    ...device.drmDevices,
    ...device.nvmeControllers,
    ...device.infinibandDevices,
  ];
  return `PCI ${device.address} ${kindNames[device.kind]} [${device.vendor.slice(2)}:${device.device.slice(2)}]${
    names.length > 0 ? ` ${names.join(', ')}` : ''
  }${device.driver === null ? '' : ` (${device.driver})`}`;
}

/** Options of {@link formatTopology}. */
export interface FormatTopologyOptions {
  /** Also list bridges and devices of unknown kind (default false, as lstopo). */
  allDevices?: boolean;
}

/**
 * The topology as an lstopo-like tree for people.
 *
 * @example
 * ```
 * Machine: 32 CPUs online (0-31), 4 NUMA nodes, 256 GiB
 * ├─ Package 0 + L3 105 MiB (15-way, 64 B lines): CPUs 0-7,16-23
 * │  ├─ NUMANode 0: CPUs 0-3,16-19; 64 GiB, 57.6 GiB free
 * │  │  ├─ Core 0: CPUs 0,16 · L2 2 MiB · L1d 48 KiB · L1i 32 KiB
 * ```
 */
export function formatTopology(topology: Topology, options: FormatTopologyOptions = {}): string {
  const t = topology;
  const totalMemory = t.nodes.reduce((sum, n) => sum + n.memoryBytes, 0);
  const restricted = !t.wholeSystem && t.allowed.source !== null;
  const header = [
    restricted
      ? `Machine: ${t.cpus.length} CPUs allowed (${formatCpuList(t.cpus)}) by ${t.allowed.source}`
      : `Machine: ${t.cpus.length} CPUs online (${formatCpuList(t.cpus)})`,
    `${t.nodes.length} NUMA node${t.nodes.length === 1 ? '' : 's'}`,
    formatBytes(totalMemory),
  ];
  if (t.offlineCpus.length > 0) header.push(`offline CPUs ${formatCpuList(t.offlineCpus)}`);
  if (t.isolatedCpus.length > 0) header.push(`isolated CPUs ${formatCpuList(t.isolatedCpus)}`);

  // Caches private to one core are shown on the core's line; shared ones are objects of the tree.
  const coreOf = new Map<number, number>();
  for (const core of t.cores) for (const cpu of core.cpus) coreOf.set(cpu, core.id);
  const privateCaches = new Map<number, Cache[]>();
  const objects: TreeObject[] = [];
  const object = (label: string, cpus: number[], rank: number, key: string, tail = ''): TreeObject => ({
    label,
    tail,
    cpus,
    rank,
    children: [],
    extra: [],
    key,
  });
  for (const cache of t.caches) {
    const cores = new Set(cache.cpus.map((c) => coreOf.get(c)));
    if (cores.size === 1) {
      const id = [...cores][0];
      if (id !== undefined) privateCaches.set(id, [...(privateCaches.get(id) ?? []), cache]);
    } else {
      objects.push(
        object(
          cacheLabel(cache),
          cache.cpus,
          cache.level >= 3 ? 3 : 5,
          `cache:${cache.level}:${cache.cpus[0]}`,
        ),
      );
    }
  }
  for (const p of t.packages)
    objects.push(
      object(
        p.id === null ? `Package (no id) #${p.index}` : `Package ${p.id}`,
        p.cpus,
        0,
        `package:${p.index}`,
      ),
    );
  for (const d of t.dies) objects.push(object(`Die ${d.id}`, d.cpus, 1, `die:${d.package}:${d.id}`));
  for (const c of t.clusters) objects.push(object(`Cluster ${c.id}`, c.cpus, 4, `cluster:${c.id}`));
  const nodeObjects = new Map<number, TreeObject>();
  const memoryOnly: TreeObject[] = [];
  for (const n of t.nodes) {
    const huge = n.hugepages
      .filter((h) => h.total > 0)
      .map((h) => `${formatBytes(h.sizeBytes)} pages: ${h.total} (${h.free} free)`);
    const sideCaches = n.memorySideCaches
      .map((c) => `; memory-side cache ${formatBytes(c.sizeBytes)}`)
      .join('');
    const memory = `${formatBytes(n.memoryBytes)}, ${formatBytes(n.freeBytes)} free${huge.length > 0 ? `; hugepages ${huge.join(', ')}` : ''}${sideCaches}`;
    const kind = [
      n.memoryKind ?? '',
      n.memoryTier === null ? '' : `tier ${n.memoryTier}`,
      n.gpu === null ? '' : `of GPU ${n.gpu}`,
      n.daxDevice === null ? '' : `from ${n.daxDevice}`,
    ]
      .filter(Boolean)
      .join(' ');
    const kindPrefix = kind === '' ? '' : `${kind}, `;
    if (n.cpus.length > 0) {
      const o = object(`NUMANode ${n.id} (${kindPrefix}${memory})`, n.cpus, 2, `node:${n.id}`);
      objects.push(o);
      nodeObjects.set(n.id, o);
    } else {
      const index = t.nodes.indexOf(n);
      const nearest = t.nodes
        .filter((m) => m.cpus.length > 0)
        .sort(
          (a, b) =>
            (n.distances[t.nodes.indexOf(a)] ?? 255) - (n.distances[t.nodes.indexOf(b)] ?? 255) ||
            a.id - b.id,
        )[0];
      // Where the memory is local: HMAT initiators or the GPU's CPUs when known, else by distance.
      const local = n.localCpus.length === 0 ? '' : ` (CPUs ${formatCpuList(n.localCpus)})`;
      const near =
        n.initiators.length > 0
          ? `; HMAT initiators: node ${n.initiators.join(', ')}${local}`
          : n.gpu !== null
            ? `; local to the GPU's CPUs${local}`
            : nearest === undefined
              ? ''
              : `; nearest CPUs: node ${nearest.id}, distance ${n.distances[t.nodes.indexOf(nearest)] ?? '?'}`;
      const o = object(
        `NUMANode ${n.id} (${kindPrefix}memory only, ${memory}${near})`,
        [],
        2,
        `node:${n.id}:${index}`,
      );
      memoryOnly.push(o);
      nodeObjects.set(n.id, o);
    }
  }
  for (const core of t.cores) {
    const caches = (privateCaches.get(core.id) ?? [])
      .sort((a, b) => b.level - a.level || a.type.localeCompare(b.type))
      .map((c) => `${cacheName(c)} ${formatBytes(c.sizeBytes)}`);
    objects.push(
      object(
        `Core ${core.id}`,
        core.cpus,
        6,
        `core:${core.id}`,
        caches.length > 0 ? ` · ${caches.join(' · ')}` : '',
      ),
    );
  }

  // Nest by inclusion: larger sets first, then outer kinds first.
  objects.sort(
    (a, b) => b.cpus.length - a.cpus.length || a.rank - b.rank || (a.cpus[0] ?? 0) - (b.cpus[0] ?? 0),
  );
  const roots: TreeObject[] = [];
  const placed: TreeObject[] = [];
  for (const o of objects) {
    // An object without CPUs (a package none of whose CPUs is allowed) nests nowhere.
    if (o.cpus.length === 0) {
      roots.push(o);
      continue;
    }
    let parent: TreeObject | undefined;
    for (const candidate of placed) {
      if (
        contains(candidate.cpus, o.cpus) &&
        (parent === undefined ||
          parent.cpus.length > candidate.cpus.length ||
          (parent.cpus.length === candidate.cpus.length && candidate.rank > parent.rank))
      ) {
        parent = candidate;
      }
    }
    (parent?.children ?? roots).push(o);
    placed.push(o);
  }
  roots.push(...memoryOnly);

  // PCI devices under their node (or under the machine when the firmware does not say).
  const orphans: string[] = [];
  for (const device of t.pciDevices) {
    if (!options.allDevices && (device.kind === 'bridge' || device.kind === 'other')) continue;
    const line = formatPciDevice(device);
    const node = device.node === null ? undefined : nodeObjects.get(device.node);
    if (node !== undefined) node.extra.push(line);
    else if (device.node === null) orphans.push(`${line} (no NUMA locality)`);
    else orphans.push(`${line} (node ${device.node}, not allowed)`);
  }

  const lines = [header.join(', ')];
  const render = (o: TreeObject, prefix: string, last: boolean): void => {
    let label = o.label;
    let current = o;
    // Merge a chain of objects with the same CPUs: "Package 0 + L3 32 MiB".
    while (
      current.children.length === 1 &&
      current.extra.length === 0 &&
      current.children[0]!.cpus.length === current.cpus.length &&
      current.cpus.length > 0
    ) {
      current = current.children[0]!;
      label = `${label} + ${current.label}`;
    }
    const sortedChildren = [...current.children].sort(
      (a, b) => (a.cpus[0] ?? Infinity) - (b.cpus[0] ?? Infinity) || a.rank - b.rank,
    );
    const cpus =
      current.cpus.length === 0
        ? ''
        : `: CPU${current.cpus.length === 1 ? '' : 's'} ${formatCpuList(current.cpus)}`;
    lines.push(`${prefix}${last ? '└─ ' : '├─ '}${label}${cpus}${current.tail}`);
    const inner = `${prefix}${last ? '   ' : '│  '}`;
    const items: Array<TreeObject | string> = [...sortedChildren, ...current.extra];
    items.forEach((item, i) => {
      const isLast = i === items.length - 1;
      if (typeof item === 'string') lines.push(`${inner}${isLast ? '└─ ' : '├─ '}${item}`);
      else render(item, inner, isLast);
    });
  };
  const top: Array<TreeObject | string> = [
    ...roots.sort((a, b) => (a.cpus[0] ?? Infinity) - (b.cpus[0] ?? Infinity)),
    ...orphans,
  ];
  top.forEach((item, i) => {
    const isLast = i === top.length - 1;
    if (typeof item === 'string') lines.push(`${isLast ? '└─ ' : '├─ '}${item}`);
    else render(item, '', isLast);
  });

  if (t.nodes.length > 1) {
    lines.push('', 'NUMA distances (from row to column):');
    const width = Math.max(4, ...t.nodes.map((n) => String(n.id).length + 1));
    lines.push(`${'node'.padEnd(6)}${t.nodes.map((n) => String(n.id).padStart(width)).join('')}`);
    for (const n of t.nodes)
      lines.push(`${String(n.id).padEnd(6)}${n.distances.map((d) => String(d).padStart(width)).join('')}`);
  }
  if (t.warnings.length > 0) {
    lines.push('', 'Notes:');
    for (const w of t.warnings) lines.push(`  - ${w}`);
  }
  return lines.join('\n');
}
