// Placement on generated machines: node choice, SMT packing, cache domains, exclusivity, "near a
// GPU/NIC", memory, CXL memory-only nodes, and impossible requests with clear errors.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOpdbusError, type OpdbusError } from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bytesToCpuSet,
  cpuSetToBytes,
  numaSectionSchema,
  readTopology,
  resolvePlacements,
  type NumaSection,
  type PlacementRequest,
  type ResolvedPlacement,
  type Topology,
} from '../src/index.js';
import { writeSyntheticMachine } from '../src/synthetic.js';
import { cxlMemoryNodes, eightNodes, multiDie, noNuma, offlineCpus, twoSocketSnc } from './machines.js';

let base: string;
const topo: Record<string, Topology> = {};

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'opdbus-numa-placement-'));
  for (const [name, machine] of Object.entries({
    twoSocketSnc,
    eightNodes,
    cxlMemoryNodes,
    multiDie,
    offlineCpus,
    noNuma,
  })) {
    writeSyntheticMachine(join(base, name), machine);
    topo[name] = await readTopology({ root: join(base, name) });
  }
  // cxlMemoryNodes whose node 3 is a GPU's memory (as the NVIDIA driver onlines it).
  const gpu = join(base, 'gpuMemory');
  writeSyntheticMachine(gpu, cxlMemoryNodes);
  mkdirSync(join(gpu, 'proc/driver/nvidia/gpus/0000:c1:00.0'), { recursive: true });
  writeFileSync(join(gpu, 'proc/driver/nvidia/gpus/0000:c1:00.0/numa_status'), 'Node: 3\nStatus: online\n');
  topo.gpuMemory = await readTopology({ root: gpu });
});
afterAll(async () => {
  if (base !== undefined) await rm(base, { recursive: true, force: true });
});

function place(
  machine: string,
  placements: Record<string, PlacementRequest>,
): Record<string, ResolvedPlacement> {
  const section: NumaSection = numaSectionSchema.parse({ placements });
  const result = resolvePlacements(section, topo[machine]!);
  return Object.fromEntries(result.placements.map((p) => [p.unit, p]));
}

function failure(machine: string, placements: Record<string, PlacementRequest>): OpdbusError {
  try {
    place(machine, placements);
  } catch (err) {
    if (isOpdbusError(err)) return err;
    throw err;
  }
  throw new Error('expected the placement to fail');
}

// twoSocketSnc: node 0 = CPUs 0-3,16-19; node 1 = 4-7,20-23; node 2 = 8-11,24-27; node 3 =
// 12-15,28-31; 64 GiB each; siblings are N and N+16; GPU 0000:3b:00.0 (card0) on node 1,
// NIC 0000:5e:00.0 (ens1f0np0, mlx5_0) on node 2, nvme1 without locality.

describe('near a device', () => {
  it('places on the GPU node, whole cores first, and says why', () => {
    const { 'train.service': p } = place('twoSocketSnc', {
      'train.service': { cpus: 4, near: '0000:3b:00.0' },
    });
    expect(p).toMatchObject({
      cpus: [4, 5, 20, 21],
      nodes: [1],
      memoryNodes: [1],
      numaPolicy: 'bind',
      properties: { CPUAffinity: '4-5,20-21', NUMAPolicy: 'bind', NUMAMask: '1' },
    });
    expect(p!.reason).toMatch(
      /^node 1: GPU 0000:3b:00\.0 \(card0, renderD128\) is on node 1 \(8 free CPUs\); 4 CPUs \(4-5,20-21\) as 2 whole cores sharing one L3/,
    );
  });

  it('finds the device by short address, interface, RDMA, DRM and NVMe name', () => {
    const result = place('twoSocketSnc', {
      'a.service': { cpus: 1, near: '5e:00.0' },
      'b.service': { cpus: 1, near: 'ens1f0np0' },
      'c.service': { cpus: 1, near: 'mlx5_0' },
      'd.service': { cpus: 1, near: 'card0' },
      'e.service': { cpus: 1, near: 'nvme0' },
      'f.service': { cpus: 1, near: 'ens2f0' },
    });
    expect(Object.values(result).map((p) => p.nodes[0])).toEqual([2, 2, 2, 1, 0, 3]);
  });

  it('falls back to the nearest node with room, and says so; strict fails instead', () => {
    const result = place('twoSocketSnc', {
      'big.service': { cpus: 6, near: 'card0', exclusive: true },
      'small.service': { cpus: 4, near: 'card0' },
    });
    expect(result['big.service']!.cpus).toEqual([4, 5, 6, 20, 21, 22]);
    expect(result['small.service']).toMatchObject({ nodes: [0], cpus: [0, 1, 16, 17] });
    expect(result['small.service']!.reason).toContain(
      'node 0: GPU 0000:3b:00.0 (card0, renderD128) is on node 1, which has 2 free CPUs; node 0 is the nearest with room (distance 12)',
    );
    const err = failure('twoSocketSnc', {
      'big.service': { cpus: 6, near: 'card0', exclusive: true },
      'small.service': { cpus: 4, near: 'card0', strict: true },
    });
    expect(err.code).toBe('OPDBUS_ERR_NUMA_INSUFFICIENT');
    expect(err.message).toBe(
      'Placement of small.service (plugins.numa.placements["small.service"]): needs 4 CPUs on node 1, where card0 is (strict), which is more than there is: node 1: 2 of 8 CPUs free (6 held exclusively by big.service). Ask for less, allow more nodes, or make other placements non-exclusive.',
    );
    expect(err.data).toMatchObject({
      path: 'plugins.numa.placements["small.service"]',
      needed: { cpus: 4 },
      available: { 1: { cpus: 2 } },
    });
  });

  it('refuses a device that does not exist, or one without NUMA locality, naming what to do', () => {
    const unknown = failure('twoSocketSnc', { 'x.service': { cpus: 1, near: 'eth9' } });
    expect(unknown.code).toBe('OPDBUS_ERR_NUMA_UNKNOWN_DEVICE');
    expect(unknown.message).toContain('no PCI device "eth9"');
    expect(unknown.message).toContain('GPU 0000:3b:00.0 (card0, renderD128)');
    const noLocality = failure('twoSocketSnc', { 'x.service': { cpus: 1, near: 'nvme1' } });
    expect(noLocality.code).toBe('OPDBUS_ERR_NUMA_NO_LOCALITY');
    expect(noLocality.message).toContain('NVMe 0000:c0:00.0 (nvme1) has no NUMA node (numa_node is -1');
    expect(noLocality.message).toContain('`node:`');
  });

  it('on a machine without NUMA, every device is on node 0', () => {
    expect(place('noNuma', { 'x.service': { cpus: 2, near: 'eth0' } })['x.service']).toMatchObject({
      nodes: [0],
      cpus: [0, 4],
    });
  });

  it('follows the distance row of the device node, asymmetric distances included (8 nodes)', () => {
    // eightNodes: 4 CPUs per node (no SMT), node n = CPUs 4n..4n+3. card1 is on node 5, nvme0 on 7.
    // Row 7 says node 0 is at 12 (row 0 says 7 is at 22): from the NVMe, node 0 is nearest.
    const result = place('eightNodes', {
      'hog5.service': { cpus: 4, node: 5, exclusive: true },
      'hog7.service': { cpus: 4, node: 7, exclusive: true },
      'gpu.service': { cpus: 3, near: 'card1' },
      'db.service': { cpus: 3, near: 'nvme0' },
    });
    // From node 5, nodes 1, 3, 4 and 7 are at 16 (7 is full): the tie goes to the lowest id.
    expect(result['gpu.service']!.nodes).toEqual([1]);
    expect(result['db.service']!.nodes).toEqual([0]);
    expect(result['db.service']!.reason).toContain(
      'NVMe 0000:e0:00.0 (nvme0) is on node 7, which has 0 free CPUs; node 0 is the nearest with room (distance 12)',
    );
  });

  it('spans to the nearest nodes when no node is big enough', () => {
    const p = place('eightNodes', { 'wide.service': { cpus: 6, near: 'card1' } })['wide.service']!;
    expect(p).toMatchObject({ nodes: [1, 5], cpus: [4, 5, 20, 21, 22, 23], memoryNodes: [1, 5] });
    expect(p.reason).toMatch(
      /^nodes 5, 1: GPU 0000:40:00\.0 \(card1\) is on node 5, which has room for part only/,
    );
    expect(
      failure('eightNodes', { 'wide.service': { cpus: 6, near: 'card1', span: false } }).message,
    ).toContain('needs 6 CPUs on any one node (span: false)');
  });
});

describe('SMT, caches and exclusivity', () => {
  it('packs SMT siblings; an odd count takes one thread of a core and leaves its sibling free', () => {
    const result = place('twoSocketSnc', {
      'a.service': { cpus: 3, node: 1 },
      'b.service': { cpus: 1, node: 1 },
    });
    expect(result['a.service']!.cpus).toEqual([4, 5, 20]);
    expect(result['a.service']!.reason).toContain(
      '3 CPUs (4-5,20) as 1 whole core + 1 partial core sharing one L3',
    );
    // b prefers an idle thread: 6 (core 6/22) rather than 21, the sibling of a's partial core.
    expect(result['b.service']!.cpus).toEqual([6]);
  });

  it('smt: avoid takes one thread per core', () => {
    expect(
      place('twoSocketSnc', { 'l.service': { cpus: 4, node: 2, smt: 'avoid' } })['l.service']!.cpus,
    ).toEqual([8, 9, 10, 11]);
  });

  it('exclusive placements hold their cores (siblings kept idle) and spread over nodes', () => {
    const result = place('twoSocketSnc', {
      'x1.service': { cpus: 5, exclusive: true },
      'x2.service': { cpus: 5, exclusive: true },
      'x3.service': { cpus: 5, exclusive: true },
      'shared.service': { cpus: 8 },
    });
    expect(['x1', 'x2', 'x3'].map((x) => result[`${x}.service`]!.nodes[0])).toEqual([0, 1, 2]);
    expect(result['x1.service']).toMatchObject({
      cpus: [0, 1, 2, 16, 17],
      reservedCpus: [18],
      exclusive: true,
    });
    expect(result['x1.service']!.reason).toContain('exclusive: sibling thread(s) 18 kept idle');
    expect(result['x1.service']!.reason).toMatch(
      /^node 0: most room among node\(s\) 0-3 \(8 free CPUs; tied with node\(s\) 1-3, lowest id first\)/,
    );
    expect(result['x2.service']!.reason).toMatch(
      /^node 1: most room among node\(s\) 0-3 \(8 free CPUs; tied with node\(s\) 2-3/,
    );
    // The shared placement goes where nothing is held: node 3.
    expect(result['shared.service']!.nodes).toEqual([3]);
    const all = [result['x1.service']!, result['x2.service']!, result['x3.service']!];
    const taken = all.flatMap((p) => [...p.cpus, ...p.reservedCpus]);
    expect(new Set(taken).size).toBe(taken.length);
  });

  it('exclusive with smt: avoid reserves the other threads', () => {
    const p = place('twoSocketSnc', { 'rt.service': { cpus: 2, node: 3, exclusive: true, smt: 'avoid' } })[
      'rt.service'
    ]!;
    expect(p).toMatchObject({ cpus: [12, 13], reservedCpus: [28, 29] });
  });

  it('keeps a placement in one L3 when it fits (best fit), and spans L3s only when it must', () => {
    // multiDie: one node, L3 per die: die 0 = CPUs 0-15, die 1 = 16-31 (siblings adjacent).
    const result = place('multiDie', {
      'batch.service': { cpus: 8 },
      'db.service': { cpus: 12, exclusive: true },
    });
    expect(result['db.service']!.cpus).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(result['db.service']!.reason).toContain('as 6 whole cores sharing one L3');
    expect(result['batch.service']!.cpus).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
    const wide = place('multiDie', { 'wide.service': { cpus: 20 } })['wide.service']!;
    expect(wide.cpus).toHaveLength(20);
    expect(wide.reason).toContain('across 2 L3 caches');
  });

  it('shared placements avoid each other while there is room', () => {
    const result = place('multiDie', {
      'a.service': { cpus: 4 },
      'b.service': { cpus: 4 },
      'c.service': { cpus: 4 },
    });
    const cpus = Object.values(result).flatMap((p) => p.cpus);
    expect(new Set(cpus).size).toBe(12);
    // Then they share, least loaded first, and say so.
    const crowded = place('multiDie', { 'a.service': { cpus: 24 }, 'b.service': { cpus: 16 } });
    expect(crowded['b.service']!.reason).toMatch(/shared with 1 other placement/);
  });

  it('never takes isolated CPUs, and fills a half-offline core first for a single thread', () => {
    // offlineCpus: core 3 (3, 11) offline, core 5 has only thread 5 online, 6 and 14 isolated.
    const result = place('offlineCpus', {
      'one.service': { cpus: 1, exclusive: true },
      'rest.service': { cpus: 10 },
    });
    expect(result['one.service']).toMatchObject({ cpus: [5], reservedCpus: [] });
    expect(result['rest.service']!.cpus).toEqual([0, 1, 2, 4, 7, 8, 9, 10, 12, 15]);
    const err = failure('offlineCpus', { 'big.service': { cpus: 12 } });
    expect(err.message).toContain(
      'needs 12 CPUs on this machine, which is more than there is: node 0: 11 of 13 CPUs free',
    );
  });
});

describe('memory and memory policies', () => {
  it('claims memory per node and spans to the nearest node when one is not enough', () => {
    const result = place('twoSocketSnc', { 'mem.service': { cpus: 4, memory: '100G' } });
    expect(result['mem.service']).toMatchObject({
      nodes: [0],
      memoryNodes: [0, 1],
      memoryBytes: 100 * 1024 ** 3,
    });
    expect(result['mem.service']!.properties).toEqual({
      CPUAffinity: '0-1,16-17',
      NUMAPolicy: 'bind',
      NUMAMask: '0-1',
    });
    expect(result['mem.service']!.reason).toContain('100 GiB memory on node(s) 0-1');
    const err = failure('twoSocketSnc', {
      'a.service': { cpus: 2, memory: '40G', node: 0 },
      'b.service': { cpus: 2, memory: '40G', node: 0 },
    });
    expect(err.message).toContain(
      'needs 40 GiB memory on node 0, which is more than there is: node 0: 8 of 8 CPUs free 24 GiB of 64 GiB memory unclaimed.',
    );
    expect(
      failure('twoSocketSnc', { 'a.service': { cpus: 2, memory: '100G', span: false } }).message,
    ).toContain('on any one node (span: false)');
  });

  it('writes each policy the way systemd takes it', () => {
    const result = place('twoSocketSnc', {
      'p.service': { cpus: 2, node: 2, numaPolicy: 'preferred' },
      'i.service': { cpus: 2, nodes: [0, 1], numaPolicy: 'interleave' },
      'l.service': { cpus: 2, node: 3, numaPolicy: 'local' },
      'd.service': { cpus: 2, node: 3, numaPolicy: 'default' },
    });
    expect(result['p.service']!.properties).toEqual({
      CPUAffinity: '8,24',
      NUMAPolicy: 'preferred',
      NUMAMask: '2',
    });
    expect(result['i.service']!.properties).toMatchObject({ NUMAPolicy: 'interleave', NUMAMask: '0-1' });
    // Same priority: resolved by name, so d takes core 12/28 first and l the next one.
    expect(result['d.service']!.properties).toEqual({ CPUAffinity: '12,28' });
    expect(result['l.service']!.properties).toEqual({ CPUAffinity: '13,29', NUMAPolicy: 'local' });
  });

  it('CXL memory-only nodes: interleave onto them, spill onto the nearest, memory-only placements', () => {
    // cxlMemoryNodes: nodes 0, 1 (CPUs, 128 GiB), 2 (near socket 0) and 3 (near socket 1), 256 GiB each.
    const result = place('cxlMemoryNodes', {
      'tiered.service': { cpus: 4, nodes: [0, 2], numaPolicy: 'interleave' },
      'spill.service': { cpus: 2, memory: '300G' },
      'cache.service': { memory: '200G', nodes: [2] },
    });
    expect(result['tiered.service']).toMatchObject({ nodes: [0], memoryNodes: [0, 2] });
    // spill goes to node 1 (node 0 has placements), and its memory spills onto node 3, the CXL
    // memory nearest to it (distance 14), not onto node 0 (21).
    expect(result['spill.service']).toMatchObject({ nodes: [1], memoryNodes: [1, 3] });
    expect(result['cache.service']).toMatchObject({
      cpus: [],
      memoryNodes: [2],
      properties: { NUMAPolicy: 'bind', NUMAMask: '2' },
    });
    const err = failure('cxlMemoryNodes', { 'x.service': { cpus: 2, node: 2 } });
    expect(err.code).toBe('OPDBUS_ERR_NUMA_UNKNOWN_NODE');
    expect(err.message).toContain('node(s) 2 have no CPUs (memory-only)');
  });
});

describe('GPU memory nodes', () => {
  it('are used only when named: not for spill-over nor for memory-only placements', () => {
    expect(topo.gpuMemory!.nodes.map((n) => [n.id, n.memoryKind])).toEqual([
      [0, null],
      [1, null],
      [2, null],
      [3, 'GPUMemory'],
    ]);
    const result = place('gpuMemory', {
      'busy.service': { cpus: 16, node: 0 },
      'spill.service': { cpus: 2, memory: '300G' },
      'cache.service': { memory: '100G' },
      'gpu.service': { memory: '10G', nodes: [3] },
    });
    // Node 1's memory spills onto the other nodes, not onto the GPU's memory (the nearest, 14).
    expect(result['spill.service']!.nodes).toEqual([1]);
    expect(result['spill.service']!.memoryNodes).toEqual([0, 1, 2]);
    expect(result['cache.service']!.memoryNodes).not.toContain(3);
    expect(result['gpu.service']).toMatchObject({ memoryNodes: [3], properties: { NUMAMask: '3' } });
    // More memory than the other nodes have: refused, though the GPU's memory would hold it.
    const err = failure('gpuMemory', { 'big.service': { memory: '700G' } });
    expect(err.code).toBe('OPDBUS_ERR_NUMA_INSUFFICIENT');
    expect(err.message).not.toContain('node 3');
  });
});

describe('the section', () => {
  it('is deterministic whatever the key order, and resolves exclusive and constrained first', () => {
    const placements: Record<string, PlacementRequest> = {
      'web.service': { cpus: 4 },
      'db.service': { cpus: 8, exclusive: true, memory: '32G' },
      'gpu.service': { cpus: 4, near: 'card0' },
      'log.service': { cpus: 1 },
    };
    const forward = resolvePlacements({ placements }, topo.twoSocketSnc!);
    const backward = resolvePlacements(
      { placements: Object.fromEntries(Object.entries(placements).reverse()) },
      topo.twoSocketSnc!,
    );
    expect(backward).toEqual(forward);
    expect(forward.order).toEqual(['db.service', 'gpu.service', 'web.service', 'log.service']);
    expect(forward.placements.map((p) => p.unit)).toEqual([
      'db.service',
      'gpu.service',
      'log.service',
      'web.service',
    ]);
  });

  it('names an unknown node', () => {
    const err = failure('twoSocketSnc', { 'x.service': { cpus: 1, node: 7 } });
    expect(err.code).toBe('OPDBUS_ERR_NUMA_UNKNOWN_NODE');
    expect(err.message).toBe(
      'Placement of x.service (plugins.numa.placements["x.service"]): node 7 does not exist; this machine has node(s) 0-3.',
    );
  });

  it('validates the shape an operator writes', () => {
    const ok = numaSectionSchema.safeParse({
      placements: { 'a@1.service': { cpus: 2, memory: '1.5T', near: 'card0', strict: true } },
    });
    expect(ok.success).toBe(true);
    const bad = (placements: unknown): string[] => {
      const r = numaSectionSchema.safeParse({ placements });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(bad({ 'a.service': { cpus: 1, cpu: 2 } })[0]).toMatch(/Unrecognized key/);
    expect(bad({ 'a.service': { cpus: 1, node: 0, near: 'card0' } })).toEqual([
      'placements.a.service: use one of `node`, `nodes` and `near`',
    ]);
    expect(bad({ 'a.service': { cpus: 1, strict: true } })).toEqual([
      'placements.a.service.strict: `strict` applies to `near` only',
    ]);
    expect(bad({ 'a.service': { near: 'card0' } })).toEqual([
      'placements.a.service: a placement asks for `cpus`, `memory` or both',
    ]);
    expect(bad({ 'a.timer': { cpus: 1 } })).toEqual([
      'placements.a.timer: not a systemd unit that runs processes: use a .service, .socket, .mount or .swap unit name',
    ]);
    expect(bad({ 'a.service': { cpus: 0 } })).toHaveLength(1);
    expect(bad({ 'a.service': { cpus: 1, memory: '12 parsecs' } })[0]).toMatch(/a size such as 512M/);
  });
});

describe('systemd D-Bus forms', () => {
  it('CPU and node sets as the ay bytes of CPUAffinity / NUMAMask', () => {
    expect(cpuSetToBytes([0, 1, 9])).toEqual([3, 2]);
    expect(cpuSetToBytes([])).toEqual([]);
    expect(bytesToCpuSet([3, 2])).toEqual([0, 1, 9]);
    expect(bytesToCpuSet(cpuSetToBytes([4, 5, 20, 21, 255]))).toEqual([4, 5, 20, 21, 255]);
  });
});
