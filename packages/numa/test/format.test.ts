// The lstopo-like tree for people, on generated machines.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatTopology, readTopology } from '../src/index.js';
import { writeSyntheticMachine } from '../src/synthetic.js';
import { arm64Clusters, cxlMemoryNodes } from './machines.js';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'opdbus-numa-format-'));
});
afterAll(async () => {
  if (base !== undefined) await rm(base, { recursive: true, force: true });
});

describe('formatTopology', () => {
  it('nests packages, caches, nodes and cores, lists devices under their node, and the distances', async () => {
    const root = join(base, 'small');
    writeSyntheticMachine(root, {
      packages: 1,
      coresPerPackage: 4,
      threadsPerCore: 2,
      nodesPerPackage: 2,
      memoryPerNodeBytes: 16 * 1024 ** 3,
      hugepages: [{ sizeKiB: 2048, perNode: 8, freePerNode: 6 }],
      offlineCpus: [7],
      pci: [
        {
          address: '0000:3b:00.0',
          class: 0x030200,
          vendor: 0x10de,
          device: 0x2330,
          node: 1,
          driver: 'nvidia',
          drm: ['card0'],
        },
        { address: '0000:00:00.0', class: 0x060000, vendor: 0x8086, device: 0x09a2, node: 0 },
        { address: '0000:c0:00.0', class: 0x010802, vendor: 0x144d, device: 0xa80a, nvme: ['nvme0'] },
      ],
    });
    const text = formatTopology(await readTopology({ root }));
    expect(text).toBe(
      [
        'Machine: 7 CPUs online (0-6), 2 NUMA nodes, 32 GiB, offline CPUs 7',
        '├─ Package 0 + L3 105 MiB (15-way, 64 B lines): CPUs 0-6',
        '│  ├─ NUMANode 0 (16 GiB, 14.4 GiB free; hugepages 2 MiB pages: 8 (6 free)): CPUs 0-1,4-5',
        '│  │  ├─ Core 0: CPUs 0,4 · L2 2 MiB · L1d 48 KiB · L1i 32 KiB',
        '│  │  └─ Core 1: CPUs 1,5 · L2 2 MiB · L1d 48 KiB · L1i 32 KiB',
        '│  └─ NUMANode 1 (16 GiB, 14.4 GiB free; hugepages 2 MiB pages: 8 (6 free)): CPUs 2-3,6',
        '│     ├─ Core 2: CPUs 2,6 · L2 2 MiB · L1d 48 KiB · L1i 32 KiB',
        '│     ├─ Core 3: CPU 3 · L2 2 MiB · L1d 48 KiB · L1i 32 KiB',
        '│     └─ PCI 0000:3b:00.0 GPU [10de:2330] card0 (nvidia)',
        '└─ PCI 0000:c0:00.0 NVMe [144d:a80a] nvme0 (no NUMA locality)',
        '',
        'NUMA distances (from row to column):',
        'node     0   1',
        '0       10  12',
        '1       12  10',
      ].join('\n'),
    );
    // Bridges only on request.
    expect(formatTopology(await readTopology({ root }), { allDevices: true })).toContain(
      'PCI 0000:00:00.0 Bridge [8086:09a2]',
    );
  });

  it('shows memory-only nodes with their nearest CPUs, and arm64 clusters', async () => {
    writeSyntheticMachine(join(base, 'cxl'), cxlMemoryNodes);
    const cxl = formatTopology(await readTopology({ root: join(base, 'cxl') }));
    expect(cxl).toContain(
      '├─ NUMANode 2 (memory only, 256 GiB, 230 GiB free; nearest CPUs: node 0, distance 14)',
    );
    writeSyntheticMachine(join(base, 'arm'), arm64Clusters);
    const arm = formatTopology(await readTopology({ root: join(base, 'arm') }));
    expect(arm).toContain('│  │  ├─ Cluster 0 + L2 1 MiB (8-way, 64 B lines): CPUs 0-3');
    expect(arm).toContain('│  │  │  ├─ Core 0: CPU 0 · L1d 64 KiB · L1i 64 KiB');
  });
});
