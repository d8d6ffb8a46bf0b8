// readTopology on generated sysfs trees, compared with what the generator wrote and with hwloc
// (lstopo --of xml with HWLOC_FSROOT) reading the same tree.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOpdbusError } from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopology, type Topology } from '../src/index.js';
import { writeSyntheticMachine, type SyntheticLayout } from '../src/synthetic.js';
import { hasLstopo, hwlocView } from './hwloc.js';
import { machines } from './machines.js';
import { itIf, requirement } from '@opdbus/sandbox/testing';

let base: string;
const generated = new Map<string, { layout: SyntheticLayout; topology: Topology }>();

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'opdbus-numa-topology-'));
  for (const [name, machine] of Object.entries(machines)) {
    const root = join(base, name);
    const layout = writeSyntheticMachine(root, machine);
    generated.set(name, { layout, topology: await readTopology({ root }) });
  }
});
afterAll(async () => {
  if (base !== undefined) await rm(base, { recursive: true, force: true });
});

const sets = (lists: number[][]): string[] => lists.map((l) => l.join(',')).sort();
const cacheKeys = (
  caches: {
    level: number;
    type: string;
    sizeBytes: number;
    lineSizeBytes: number;
    ways: number;
    cpus: number[];
  }[],
): string[] =>
  caches
    .map((c) => `L${c.level}${c.type} ${c.sizeBytes} ${c.lineSizeBytes} ${c.ways} [${c.cpus.join(',')}]`)
    .sort();

describe.each(Object.keys(machines))('machine %s', (name) => {
  const get = (): { layout: SyntheticLayout; topology: Topology } => generated.get(name)!;

  it('reads what the generator wrote', () => {
    const { layout, topology: t } = get();
    expect(t.cpus).toEqual(layout.onlineCpus);
    expect(t.offlineCpus).toEqual(layout.offlineCpus);
    expect(
      t.nodes.map((n) => ({ id: n.id, cpus: n.cpus, memoryBytes: n.memoryBytes, distances: n.distances })),
    ).toEqual(layout.nodes);
    expect(t.packages.map((p) => ({ id: p.id, cpus: p.cpus }))).toEqual(layout.packages);
    expect(sets(t.cores.map((c) => c.cpus))).toEqual(sets(layout.cores));
    expect(cacheKeys(t.caches)).toEqual(cacheKeys(layout.caches));
    expect(sets(t.dies.map((d) => d.cpus))).toEqual(sets(layout.dies.map((d) => d.cpus)));
    expect(sets(t.clusters.map((c) => c.cpus))).toEqual(sets(layout.clusters.map((c) => c.cpus)));
    // Every online CPU is in exactly one core, one package and one processor entry.
    expect(t.processors.map((p) => p.id)).toEqual(t.cpus);
    expect(t.cores.flatMap((c) => c.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    expect(t.packages.flatMap((p) => p.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    for (const p of t.processors) {
      expect(t.cores[p.core]!.cpus).toContain(p.id);
      if (p.node !== null) expect(t.nodes.find((n) => n.id === p.node)!.cpus).toContain(p.id);
    }
  });

  itIf(
    requirement('lstopo', hasLstopo, 'lstopo-no-graphics is missing; apt-get install hwloc'),
    'agrees with hwloc (lstopo --of xml, HWLOC_FSROOT)',
    async () => {
      const { layout, topology: t } = get();
      const hw = await hwlocView(layout.root);
      expect(hw.pus).toEqual(t.cpus);
      // hwloc gives a memory-only node the CPUs of the object it hangs it under: the package of
      // its nearest CPU node.
      const nearestCpus = (node: Topology['nodes'][number]): number[] => {
        if (node.cpus.length > 0) return node.cpus;
        const withCpus = t.nodes.filter((n) => n.cpus.length > 0);
        const nearest = withCpus.reduce((best, n) =>
          node.distances[t.nodes.indexOf(n)]! < node.distances[t.nodes.indexOf(best)]! ? n : best,
        );
        return t.packages.find((p) => p.nodes.includes(nearest.id))!.cpus;
      };
      expect(
        hw.nodes
          .map((n) => ({ id: n.id, cpus: n.cpus, memoryBytes: n.memoryBytes }))
          .sort((a, b) => a.id - b.id),
      ).toEqual(t.nodes.map((n) => ({ id: n.id, cpus: nearestCpus(n), memoryBytes: n.memoryBytes })));
      expect(hw.packages.sort((a, b) => a.id - b.id)).toEqual(
        t.packages.map((p) => ({ id: p.id, cpus: p.cpus })),
      );
      expect(sets(hw.cores)).toEqual(sets(t.cores.map((c) => c.cpus)));
      expect(cacheKeys(hw.caches)).toEqual(cacheKeys(t.caches));
      expect(sets(hw.dies)).toEqual(sets(t.dies.map((d) => d.cpus)));
      // hwloc merges a cluster into the L2 that covers the same CPUs; those it keeps must be ours.
      for (const cluster of hw.clusters)
        expect(sets(t.clusters.map((c) => c.cpus))).toContain(cluster.join(','));
      if (t.nodes.length > 1) {
        expect(hw.distances?.indexes).toEqual(t.nodes.map((n) => n.id));
        expect(hw.distances?.values).toEqual(t.nodes.flatMap((n) => n.distances));
      }
      // hwloc keeps the "important" devices (GPUs, NICs, storage); where it attaches each one
      // (the CPUs of its nearest CPU-side ancestor) must be the device's local CPUs.
      const important = t.pciDevices.filter((d) =>
        ['gpu', 'nic', 'infiniband', 'nvme', 'storage'].includes(d.kind),
      );
      expect(hw.pci.map((d) => d.address).sort()).toEqual(
        expect.arrayContaining(important.map((d) => d.address)),
      );
      for (const dev of hw.pci) {
        const ours = t.pciDevices.find((d) => d.address === dev.address);
        expect(ours, dev.address).toBeDefined();
        expect(ours!.class.slice(2, 6)).toBe(dev.classId);
        expect(`${ours!.vendor.slice(2)}:${ours!.device.slice(2)}`).toBe(`${dev.vendor}:${dev.device}`);
        if (ours!.localCpus.length > 0) expect(dev.cpus, dev.address).toEqual(ours!.localCpus);
        const names = [
          ...ours!.netInterfaces,
          ...ours!.infinibandDevices,
          ...ours!.nvmeControllers,
          ...ours!.drmDevices,
        ];
        for (const osdev of dev.osdevs) expect(names, dev.address).toContain(osdev);
      }
    },
  );
});

describe('what real machines and old kernels leave out', () => {
  it('a 2-socket SNC server: nodes, distances, huge pages, PCI locality and names', () => {
    const t = generated.get('twoSocketSnc')!.topology;
    expect(t.nodes.map((n) => n.id)).toEqual([0, 1, 2, 3]);
    expect(t.nodes[0]!.distances).toEqual([10, 12, 21, 21]);
    expect(t.nodes[1]!.hugepages).toEqual([
      { sizeBytes: 2 * 1024 ** 2, total: 512, free: 500, surplus: 0 },
      { sizeBytes: 1024 ** 3, total: 4, free: 4, surplus: 0 },
    ]);
    expect(t.cores).toHaveLength(16);
    expect(t.cores[0]).toEqual({ id: 0, package: 0, cpus: [0, 16], node: 0 });
    const gpu = t.pciDevices.find((d) => d.address === '0000:3b:00.0')!;
    expect(gpu).toMatchObject({
      kind: 'gpu',
      class: '0x030200',
      vendor: '0x10de',
      device: '0x2330',
      driver: 'nvidia',
      node: 1,
    });
    expect(gpu.drmDevices).toEqual(['card0', 'renderD128']);
    expect(gpu.localCpus).toEqual(t.nodes[1]!.cpus);
    const nic = t.pciDevices.find((d) => d.address === '0000:5e:00.0')!;
    expect(nic).toMatchObject({
      kind: 'nic',
      node: 2,
      netInterfaces: ['ens1f0np0'],
      infinibandDevices: ['mlx5_0'],
    });
    expect(t.pciDevices.find((d) => d.nvmeControllers.includes('nvme0'))).toMatchObject({
      kind: 'nvme',
      node: 0,
    });
    // numa_node -1 on a multi-node machine: no node, local CPUs from local_cpulist (all of them).
    expect(t.pciDevices.find((d) => d.address === '0000:00:17.0')).toMatchObject({
      kind: 'storage',
      node: 0,
    });
    expect(t.pciDevices.find((d) => d.address === '0000:c0:00.0')).toMatchObject({
      kind: 'nvme',
      node: null,
      localCpus: t.cpus,
      nvmeControllers: ['nvme1'],
    });
    expect(t.pciDevices.find((d) => d.address === '0000:00:00.0')!.kind).toBe('bridge');
    expect(t.warnings).toEqual([]);
  });

  it('memory-only (CXL) nodes: no CPUs, memory, distances to both sockets', () => {
    const t = generated.get('cxlMemoryNodes')!.topology;
    expect(t.nodes.map((n) => [n.id, n.cpus.length, n.memoryBytes / 1024 ** 3])).toEqual([
      [0, 16, 128],
      [1, 16, 128],
      [2, 0, 256],
      [3, 0, 256],
    ]);
    expect(t.nodes[2]!.distances).toEqual([14, 26, 10, 30]);
    expect(t.packages.map((p) => p.nodes)).toEqual([[0], [1]]);
    expect(t.pciDevices[0]).toMatchObject({ kind: 'other', node: 2, localCpus: [] });
  });

  it('offline CPUs: listed apart, absent from cores, nodes and caches; isolated CPUs listed', () => {
    const t = generated.get('offlineCpus')!.topology;
    expect(t.offlineCpus).toEqual([3, 11, 13]);
    expect(t.isolatedCpus).toEqual([6, 14]);
    expect(t.cpus).not.toContain(3);
    expect(t.cores.find((c) => c.cpus.includes(5))!.cpus).toEqual([5]);
    expect(t.cores.some((c) => c.cpus.includes(11))).toBe(false);
    expect(t.nodes[0]!.cpus).toEqual(t.cpus);
    expect(t.caches.flatMap((c) => c.cpus)).not.toContain(13);
    expect(t.warnings).toEqual([]);
  });

  it('no cache information: no caches, and a warning that says so', () => {
    const t = generated.get('missingCaches')!.topology;
    expect(t.caches).toEqual([]);
    expect(t.cores).toHaveLength(4);
    expect(t.warnings).toEqual(['no cache information (cpuN/cache is missing): caches are not known']);
  });

  it('no NUMA directory: one node 0 with every CPU and /proc/meminfo', () => {
    const t = generated.get('noNuma')!.topology;
    expect(t.nodes).toHaveLength(1);
    expect(t.nodes[0]).toMatchObject({ id: 0, cpus: t.cpus, memoryBytes: 32 * 1024 ** 3, distances: [10] });
    expect(t.processors.every((p) => p.node === 0)).toBe(true);
    // numa_node is -1 without NUMA, but on one node every device is on node 0.
    expect(t.pciDevices[0]).toMatchObject({ node: 0, netInterfaces: ['eth0'] });
    expect(t.warnings[0]).toMatch(/does not exist \(a kernel without NUMA\): one node 0 assumed/);
  });

  it('arm64: clusters of 4 cores sharing an L2, no die level', () => {
    const t = generated.get('arm64Clusters')!.topology;
    expect(t.dies).toEqual([]);
    expect(t.clusters).toHaveLength(8);
    expect(t.clusters[0]).toEqual({ package: 0, id: 0, cpus: [0, 1, 2, 3] });
    expect(t.processors[5]).toMatchObject({ cluster: 1, die: null, node: 0 });
    expect(t.caches.filter((c) => c.level === 2).map((c) => c.cpus)).toEqual(t.clusters.map((c) => c.cpus));
  });

  it('an old kernel with masks only: the same cores, packages and caches', () => {
    const t = generated.get('legacyKernel')!.topology;
    expect(t.cores.map((c) => c.cpus)).toEqual([
      [0, 8],
      [1, 9],
      [2, 10],
      [3, 11],
      [4, 12],
      [5, 13],
      [6, 14],
      [7, 15],
    ]);
    expect(t.caches.filter((c) => c.level === 3).map((c) => c.cpus)).toEqual([
      [0, 1, 2, 3, 8, 9, 10, 11],
      [4, 5, 6, 7, 12, 13, 14, 15],
    ]);
  });

  it('two dies per package with adjacent SMT numbering', () => {
    const t = generated.get('multiDie')!.topology;
    expect(t.dies.map((d) => [d.package, d.id, d.cpus.length])).toEqual([
      [0, 0, 16],
      [0, 1, 16],
    ]);
    expect(t.cores[0]!.cpus).toEqual([0, 1]);
    expect(t.processors[17]).toMatchObject({ die: 1, core: 8 });
  });

  it('no topology directories at all: every online CPU a core of its own, in no package', async () => {
    const root = join(base, 'no-topology');
    writeSyntheticMachine(root, { packages: 1, coresPerPackage: 2, threadsPerCore: 2 });
    const cpuDir = join(root, 'sys/devices/system/cpu');
    for (const entry of readdirSync(cpuDir).filter((e) => /^cpu\d+$/.test(e)))
      rmSync(join(cpuDir, entry, 'topology'), { recursive: true });
    const t = await readTopology({ root });
    expect(t.cpus).toEqual([0, 1, 2, 3]);
    expect(t.cores.map((c) => c.cpus)).toEqual([[0], [1], [2], [3]]);
    expect(t.packages).toEqual([]);
    expect(t.processors.every((p) => p.package === null)).toBe(true);
    expect(t.warnings[0]).toMatch(/no online CPU has a topology directory/);
  });

  it('fails with OPDBUS_ERR_NUMA_READ naming the path when the root is not a sysfs tree', async () => {
    const err: unknown = await readTopology({ root: base }).catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_NUMA_READ')).toBe(true);
    expect((err as Error).message).toContain(join(base, 'sys/devices/system/cpu'));
  });

  it('yields to the event loop while it reads (no long synchronous stretch)', async () => {
    const root = generated.get('eightNodes')!.layout.root;
    // An immediate scheduled now runs only if the reader yields to the event loop before it ends.
    let turns = 0;
    let handle: NodeJS.Immediate;
    const turn = (): void => {
      turns++;
      handle = setImmediate(turn);
    };
    handle = setImmediate(turn);
    try {
      await readTopology({ root, sliceMs: 0 });
    } finally {
      clearImmediate(handle);
    }
    expect(turns).toBeGreaterThanOrEqual(32);
  });
});

describe('what this process may use (cgroup cpuset, else /proc/self/status)', () => {
  const write = (root: string, rel: string, content: string): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
  };

  it('without a cpuset hierarchy: Cpus_allowed_list and Mems_allowed_list of /proc/self/status', async () => {
    const root = join(base, 'status-restricted');
    writeSyntheticMachine(root, machines.twoSocketSnc!);
    write(
      root,
      'proc/self/status',
      'Name:\tnode\nCpus_allowed:\t000f000f\nCpus_allowed_list:\t0-3,16-19\nMems_allowed_list:\t0\n',
    );
    const t = await readTopology({ root });
    expect(t.wholeSystem).toBe(false);
    expect(t.allowed).toEqual({
      cpus: [0, 1, 2, 3, 16, 17, 18, 19],
      nodes: [0],
      source: '/proc/self/status',
    });
    expect(t.cpus).toEqual([0, 1, 2, 3, 16, 17, 18, 19]);
    expect(t.processors.map((p) => p.id)).toEqual(t.cpus);
    expect(t.nodes.map((n) => [n.id, n.cpus])).toEqual([[0, [0, 1, 2, 3, 16, 17, 18, 19]]]);
    expect(t.nodes[0]!.distances).toEqual([10]);
    expect(t.packages.map((p) => [p.index, p.id, p.cpus.length])).toEqual([[0, 0, 8]]);
    expect(t.cores).toHaveLength(4);
    expect(t.caches.every((c) => c.cpus.every((cpu) => t.cpus.includes(cpu)))).toBe(true);
    const whole = await readTopology({ root, wholeSystem: true });
    expect(whole.cpus).toHaveLength(32);
    expect(whole.nodes).toHaveLength(4);
    expect(whole.allowed).toEqual(t.allowed);
  });

  it('a cgroup v2 cpuset: cpuset.cpus.effective and cpuset.mems.effective of our cgroup, before /proc/self/status', async () => {
    const root = join(base, 'cgroup2-restricted');
    writeSyntheticMachine(root, machines.twoSocketSnc!);
    write(root, 'sys/fs/cgroup/cpuset.cpus.effective', '0-31\n');
    write(root, 'sys/fs/cgroup/opdbus.slice/cpuset.cpus.effective', '8-15,24-31\n');
    write(root, 'sys/fs/cgroup/opdbus.slice/cpuset.mems.effective', '2-3\n');
    write(root, 'proc/self/cgroup', '0::/opdbus.slice\n');
    write(root, 'proc/self/status', 'Cpus_allowed_list:\t0\nMems_allowed_list:\t0\n');
    const t = await readTopology({ root });
    expect(t.allowed).toEqual({
      cpus: [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31],
      nodes: [2, 3],
      source: '/sys/fs/cgroup/opdbus.slice/cpuset.cpus.effective',
    });
    expect(t.nodes.map((n) => n.id)).toEqual([2, 3]);
    expect(t.nodes[0]!.distances).toEqual([10, 12]);
    expect(t.packages.map((p) => [p.index, p.id, p.nodes])).toEqual([[0, 1, [2, 3]]]);
    expect(t.processors.every((p) => p.package === 0)).toBe(true);
    // PCI devices keep their node; their local CPUs are cut to what is shown.
    expect(t.pciDevices.find((d) => d.address === '0000:5e:00.0')).toMatchObject({ node: 2 });
    expect(t.pciDevices.find((d) => d.address === '0000:3b:00.0')).toMatchObject({ node: 1, localCpus: [] });
  });

  it('a cgroup whose cpuset covers the machine restricts nothing', async () => {
    const root = join(base, 'cgroup1-all');
    writeSyntheticMachine(root, machines.twoSocketSnc!);
    write(root, 'proc/mounts', 'cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n');
    write(root, 'proc/self/cgroup', '3:cpuset:/\n');
    write(root, 'sys/fs/cgroup/cpuset/cpuset.cpus', '0-31\n');
    write(root, 'sys/fs/cgroup/cpuset/cpuset.mems', '0-3\n');
    const t = await readTopology({ root });
    expect(t.allowed.source).toBeNull();
    expect(t.cpus).toHaveLength(32);
    expect(t.nodes).toHaveLength(4);
  });
});
