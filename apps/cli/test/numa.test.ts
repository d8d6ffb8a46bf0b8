// `opdbus numa` and `opdbus numa place`, spawned from the built CLI, on this machine and on
// generated sysfs trees.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCpuList, readTopology } from '@opdbus/numa';
import { writeSyntheticMachine } from '@opdbus/numa/synthetic';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

let dir: string;
let fsroot: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-numa-'));
  fsroot = join(dir, 'machine');
  writeSyntheticMachine(fsroot, {
    packages: 2,
    coresPerPackage: 4,
    threadsPerCore: 2,
    nodesPerPackage: 2,
    memoryPerNodeBytes: 32 * 1024 ** 3,
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
      { address: '0000:5e:00.0', class: 0x020000, vendor: 0x15b3, device: 0x1017, node: 2, net: ['ens1f0'] },
    ],
  });
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('opdbus numa', () => {
  it('is listed in --help', async () => {
    const help = await runCli(['--help']);
    expect(help.stdout).toMatch(/numa\s+.*topology/);
  });

  it('prints this machine as a tree', async () => {
    const result = await runCli(['numa']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Machine: \d+ CPUs? online/);
    expect(result.stdout).toContain('NUMANode 0');
    expect(result.stdout).toMatch(/Core 0: CPUs? 0/);
  });

  it('--json: cpus, nodes, packages, cores, caches, pciDevices of this machine', async () => {
    const result = await runCli(['--json', 'numa']);
    expect(result.code, result.stderr).toBe(0);
    const t = JSON.parse(result.stdout) as {
      cpus: number[];
      nodes: { id: number; cpus: number[]; memoryBytes: number; distances: number[] }[];
      packages: { id: number; cpus: number[] }[];
      cores: { cpus: number[] }[];
      caches: { level: number; type: string; sizeBytes: number; cpus: number[] }[];
      pciDevices: { address: string; class: string; node: number | null }[];
    };
    expect(t.cpus).toEqual(parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')));
    expect(t.nodes[0]).toMatchObject({ id: 0, distances: [10] });
    expect(t.nodes[0]!.memoryBytes).toBeGreaterThan(0);
    expect(t.packages.flatMap((p) => p.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    expect(t.cores.flatMap((c) => c.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    for (const cache of t.caches)
      expect(Object.keys(cache)).toEqual(expect.arrayContaining(['level', 'type', 'sizeBytes', 'cpus']));
    for (const dev of t.pciDevices)
      expect(dev).toMatchObject({
        address: expect.stringMatching(/^[0-9a-f]{4}:/),
        class: expect.stringMatching(/^0x[0-9a-f]{6}$/),
      });
  });

  it('--fsroot reads another tree', async () => {
    const result = await runCli(['numa', '--fsroot', fsroot, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const t = JSON.parse(result.stdout) as {
      root: string;
      cpus: number[];
      nodes: { id: number; cpus: number[] }[];
      pciDevices: { address: string; node: number }[];
    };
    expect(t.root).toBe(fsroot);
    expect(t.cpus).toHaveLength(16);
    expect(t.nodes.map((n) => n.cpus)).toEqual([
      [0, 1, 8, 9],
      [2, 3, 10, 11],
      [4, 5, 12, 13],
      [6, 7, 14, 15],
    ]);
    expect(t.pciDevices.map((d) => [d.address, d.node])).toEqual([
      ['0000:3b:00.0', 1],
      ['0000:5e:00.0', 2],
    ]);
    const tree = await runCli(['numa', '--fsroot', fsroot]);
    expect(tree.stdout).toContain('│     └─ PCI 0000:3b:00.0 GPU [10de:2330] card0 (nvidia)');
    expect(tree.stdout).toContain('NUMA distances (from row to column):');
  });

  it('exits 4 with OPDBUS_ERR_NUMA_READ when the root is not a sysfs tree', async () => {
    const result = await runCli(['numa', '--fsroot', join(dir, 'nothing')]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(`${join(dir, 'nothing')}/sys/devices/system/cpu does not exist`);
    expect(result.stderr).toContain('(OPDBUS_ERR_NUMA_READ)');
  });
});

// Real machines' sysfs from hwloc's test suite (packages/numa/test/fixtures/hwloc-linux).
const dumps = fileURLToPath(new URL('../../../packages/numa/test/fixtures/hwloc-linux/', import.meta.url));

/** Unpack a dump into the test's directory; its fsroot. */
function unpack(name: string): string {
  const target = join(dir, 'dumps', name);
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xjf', join(dumps, `${name}.tar.bz2`), '-C', target]);
  return join(target, readdirSync(target)[0]!);
}

/** The number of `type` objects lstopo printed for a dump. */
function hwlocCount(name: string, type: string): number {
  const text = readFileSync(join(dumps, `${name}.console`), 'utf8');
  const match = new RegExp(`depth -?\\d+:\\s+(\\d+) ${type} \\(`).exec(text);
  return match === null ? 0 : Number(match[1]);
}

describe('opdbus numa --fsroot on real machines (hwloc dumps)', () => {
  it.each([
    // Values ending in "\n\0", AMD compute units.
    '64amd64-4s2n4ca2co',
    // No package information at all; no caches.
    '2ps3-2t',
    // POWER7: 64 packages without physical_package_id.
    '256ppc-8n8s4t',
    // HBM, NVM and DRAM nodes, HMAT initiators.
    'fakeheteromemtiers',
  ])('%s: prints the tree, and the same topology as the library as JSON', async (name) => {
    const root = unpack(name);
    const tree = await runCli(['numa', '--fsroot', root]);
    expect(tree.code, tree.stderr).toBe(0);
    expect(tree.stdout).toMatch(new RegExp(`^Machine: ${hwlocCount(name, 'PU')} CPUs online`));
    const json = await runCli(['--json', 'numa', '--fsroot', root]);
    expect(json.code, json.stderr).toBe(0);
    const t = JSON.parse(json.stdout) as Awaited<ReturnType<typeof readTopology>>;
    const library = await readTopology({ root });
    expect(t).toEqual(library);
    expect(t.cores).toHaveLength(hwlocCount(name, 'Core'));
    expect(t.packages).toHaveLength(hwlocCount(name, 'Package'));
  });

  it('shows what the dumped process was allowed, and the whole machine with --whole-system', async () => {
    const name = '16amd64-8n2c-cpusets';
    const root = unpack(name);
    const allowed = await runCli(['numa', '--fsroot', root]);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout.split('\n')[0]).toBe(
      `Machine: ${hwlocCount(name, 'PU')} CPUs allowed (0-3,5-6,12-15) by /dev/cpuset/dummy/cpus, ${hwlocCount(name, 'NUMANode')} NUMA nodes, 32 GiB, offline CPUs 4`,
    );
    const whole = await runCli(['--json', 'numa', '--fsroot', root, '--whole-system']);
    expect(whole.code, whole.stderr).toBe(0);
    const t = JSON.parse(whole.stdout) as { wholeSystem: boolean; cpus: number[]; nodes: unknown[] };
    expect(t.wholeSystem).toBe(true);
    expect(t.cpus).toHaveLength(hwlocCount(`${name}-disallowed`, 'PU'));
    expect(t.nodes).toHaveLength(hwlocCount(`${name}-disallowed`, 'NUMANode'));
  });

  it('labels GPU memory nodes', async () => {
    const root = unpack('nvidiagpunumanodes');
    const tree = await runCli(['numa', '--fsroot', root]);
    expect(tree.code, tree.stderr).toBe(0);
    expect(tree.stdout).toContain(
      "├─ NUMANode 255 (GPUMemory tier 1 of GPU 0004:05:00.0, memory only, 15 GiB, 15 GiB free; local to the GPU's CPUs (CPUs 0-15))",
    );
  });
});

describe('opdbus numa place', () => {
  it('resolves the numa section of a state document, with properties and reasons', async () => {
    const file = join(dir, 'host.yaml');
    await writeFile(
      file,
      [
        'version: 1',
        'plugins:',
        '  numa:',
        '    placements:',
        '      train.service: { cpus: 4, near: card0, memory: 16G }',
        '      db.service: { cpus: 2, exclusive: true, node: 3 }',
        '',
      ].join('\n'),
    );
    const result = await runCli(['numa', 'place', file, '--fsroot', fsroot]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n').slice(0, 2)).toEqual([
      'db.service',
      '  CPUAffinity=6,14  NUMAPolicy=bind  NUMAMask=3',
    ]);
    expect(result.stdout).toContain(
      'train.service\n  CPUAffinity=2-3,10-11  NUMAPolicy=bind  NUMAMask=1\n  node 1: GPU 0000:3b:00.0 (card0) is on node 1',
    );
    const json = await runCli(['--json', 'numa', 'place', file, '--fsroot', fsroot]);
    const body = JSON.parse(json.stdout) as {
      ok: boolean;
      order: string[];
      placements: { unit: string; properties: Record<string, string> }[];
    };
    expect(body.ok).toBe(true);
    expect(body.order).toEqual(['db.service', 'train.service']);
    expect(body.placements[1]).toMatchObject({
      unit: 'train.service',
      properties: { CPUAffinity: '2-3,10-11' },
    });
  });

  it('reads a bare section from stdin; exits 3 on an invalid section or an impossible placement', async () => {
    const bad = await runCli(['numa', 'place', '-', '--fsroot', fsroot], {
      input: 'placements:\n  web.service: { cpus: 2, nodes: [0], near: eth0 }\n',
    });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('<stdin>: placements["web.service"]: use one of `node`, `nodes` and `near`');
    const tooBig = await runCli(['--json', 'numa', 'place', '-', '--fsroot', fsroot], {
      input: 'placements:\n  web.service: { cpus: 5, node: 0 }\n',
    });
    expect(tooBig.code).toBe(3);
    const err = JSON.parse(tooBig.stdout) as {
      ok: boolean;
      error: { code: string; message: string; data: { path: string } };
    };
    expect(err).toMatchObject({
      ok: false,
      error: { code: 'OPDBUS_ERR_NUMA_INSUFFICIENT', data: { path: 'placements["web.service"]' } },
    });
    expect(err.error.message).toContain(
      'needs 5 CPUs on node 0, which is more than there is: node 0: 4 of 4 CPUs free',
    );
  });
});
