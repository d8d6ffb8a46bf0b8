// readTopology on real machines: the sysfs dumps of hwloc's own test suite (fixtures/hwloc-linux,
// see the README there), each checked against what hwloc reports for it. The expectations come
// from the dumps' hwloc files, never from numbers written here: hwloc's NAME.test says which dump
// and which view (whole machine, GPU memory nodes kept), NAME.console what lstopo printed. A dump
// of the same kind added to the folder is tested the same way.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { itIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopology, type Topology } from '../src/index.js';
import { hasLstopo, hwlocView } from './hwloc.js';

const fixtures = fileURLToPath(new URL('./fixtures/hwloc-linux/', import.meta.url));

/** One of hwloc's test descriptions (NAME.test): a dump, a view of it, and what lstopo printed. */
interface HwlocTest {
  name: string;
  source: string;
  target: string;
  /** `options: --disallowed`: the whole machine, not only what the dumped process was allowed. */
  wholeSystem: boolean;
  /** `env: HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES=1`. */
  env: Record<string, string>;
}

function readTests(): HwlocTest[] {
  return readdirSync(fixtures)
    .filter((f) => f.endsWith('.test'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(fixtures, file), 'utf8');
      const field = (key: string): string[] =>
        [...text.matchAll(new RegExp(`^${key}:\\s*(.*)$`, 'gm'))].map((m) => m[1]!.trim());
      const env: Record<string, string> = {};
      for (const assignment of field('env')) {
        const match = /^(\w+)=(\S*)$/.exec(assignment);
        if (match !== null) env[match[1]!] = match[2]!;
      }
      return {
        name: file.slice(0, -'.test'.length),
        source: field('source')[0]!,
        target: field('target')[0]!,
        wholeSystem: field('options').some((o) => o.split(/\s+/).includes('--disallowed')),
        env,
      };
    });
}

/** What lstopo printed: objects per type, NUMA nodes with their labels, cache sizes. */
interface ConsoleView {
  counts: Map<string, number>;
  nodes: { id: number; kind: string | null; tier: number | null }[];
  /** `L2 1024KiB`, `L1d 32KiB`, `L3 28MiB` ... one per cache, as lstopo prints sizes. */
  caches: string[];
}

/** A size as lstopo prints it (hwloc_memory_size_printf_value/_unit): rounded, in the largest unit that leaves ≥ 10. */
function hwlocSize(bytes: number): string {
  const round = (shift: number): number => (Math.floor(bytes / 2 ** shift) + 1) >> 1;
  if (bytes < 10 * 2 ** 20) return `${round(9)}KiB`;
  if (bytes < 10 * 2 ** 30) return `${round(19)}MiB`;
  if (bytes < 10 * 2 ** 40) return `${round(29)}GiB`;
  return `${round(39)}TiB`;
}

function parseConsole(text: string): ConsoleView {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^\s*(?:Special )?depth -?\d+:\s+(\d+) (\w+) \(type #\d+\)$/gm))
    counts.set(m[2]!, Number(m[1]));
  const nodes = [...text.matchAll(/NUMANode(?:\(([\w-]+)\))? L#\d+ \(P#(\d+)([^)]*)\)/g)].map((m) => {
    const tier = /\bmemorytier=(\d+)/.exec(m[3]!);
    return { id: Number(m[2]), kind: m[1] ?? null, tier: tier === null ? null : Number(tier[1]) };
  });
  const caches = [...text.matchAll(/\bL(\d)([di]?)Cache L#\d+ \(([^)]*)\)/g)].map((m) => {
    const size = /\bsize=(\d+[KMGT]iB)/.exec(m[3]!);
    return `L${m[1]}${m[2]} ${size === null ? hwlocSize(0) : size[1]}`;
  });
  return { counts, nodes: nodes.sort((a, b) => a.id - b.id), caches: caches.sort() };
}

const cacheName = (c: Topology['caches'][number]): string =>
  `L${c.level}${c.type === 'data' ? 'd' : c.type === 'instruction' ? 'i' : ''}`;

const tests = readTests();
let base: string;
/** Dump file name → its fsroot (the unpacked directory that holds sys/). */
const roots = new Map<string, string>();

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'opdbus-numa-hwloc-'));
  for (const source of new Set(tests.map((t) => t.source))) {
    const dir = join(base, source.replace(/\.tar\.bz2$/, ''));
    mkdirSync(dir);
    execFileSync('tar', ['-xjf', join(fixtures, source), '-C', dir]);
    const top = readdirSync(dir);
    expect(top, `${source} unpacks into one directory`).toHaveLength(1);
    roots.set(source, join(dir, top[0]!));
  }
});
afterAll(() => {
  if (base !== undefined) rmSync(base, { recursive: true, force: true });
});

it('has the sixteen dumps of hwloc-linux, each with the description and output hwloc tests it with', () => {
  const dumps = readdirSync(fixtures).filter((f) => f.endsWith('.tar.bz2'));
  expect(dumps.length).toBeGreaterThanOrEqual(16);
  for (const dump of dumps) expect(tests.map((t) => t.source)).toContain(dump);
  for (const t of tests) expect(readdirSync(fixtures)).toContain(t.target);
});

describe.each(tests.map((t) => [t.name, t] as const))('%s', (_name, test) => {
  let topology: Promise<Topology> | undefined;
  const read = (): Promise<Topology> =>
    (topology ??= readTopology({ root: roots.get(test.source)!, wholeSystem: test.wholeSystem }));
  const printed = (): ConsoleView => parseConsole(readFileSync(join(fixtures, test.target), 'utf8'));

  it('counts NUMA nodes, packages, cores, PUs, L3 and L2 caches as hwloc does', async () => {
    const t = await read();
    const hw = printed();
    // hwloc hides GPU memory nodes on POWER unless asked to keep them; it labels those it shows.
    const showsGpuMemory = hw.nodes.some((n) => n.kind === 'GPUMemory');
    const nodes = t.nodes.filter((n) => showsGpuMemory || n.memoryKind !== 'GPUMemory');
    const count = (type: string): number => hw.counts.get(type) ?? 0;
    expect({
      nodes: nodes.length,
      packages: t.packages.length,
      cores: t.cores.length,
      pus: t.cpus.length,
      l3: t.caches.filter((c) => c.level === 3 && c.type !== 'instruction').length,
      l2: t.caches.filter((c) => c.level === 2 && c.type !== 'instruction').length,
    }).toEqual({
      nodes: count('NUMANode'),
      packages: count('Package'),
      cores: count('Core'),
      pus: count('PU'),
      l3: count('L3Cache'),
      l2: count('L2Cache'),
    });
    expect(nodes.map((n) => n.id)).toEqual(hw.nodes.map((n) => n.id));
    // Every PU is in one core; packages hold every PU they cover once.
    expect(t.cores.flatMap((c) => c.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    const inPackages = t.packages.flatMap((p) => p.cpus);
    expect(new Set(inPackages).size).toBe(inPackages.length);
  });

  it('labels memory nodes (HBM, NVM, GPU memory ...) and numbers their tiers as hwloc does', async () => {
    const t = await read();
    const hw = printed();
    const hidden = hw.nodes.some((n) => n.kind === 'GPUMemory')
      ? []
      : t.nodes.filter((n) => n.memoryKind === 'GPUMemory');
    const shown = t.nodes.filter((n) => !hidden.includes(n));
    expect(shown.map((n) => ({ id: n.id, kind: n.memoryKind }))).toEqual(
      hw.nodes.map((n) => ({ id: n.id, kind: n.kind })),
    );
    // Tiers are numbered over the nodes shown: comparable when hwloc shows them all.
    if (hidden.length === 0)
      expect(t.nodes.map((n) => ({ id: n.id, tier: n.memoryTier }))).toEqual(
        hw.nodes.map((n) => ({ id: n.id, tier: n.tier })),
      );
    for (const node of t.nodes.filter((n) => n.memoryKind === 'GPUMemory')) {
      expect(node.gpu, `node ${node.id}`).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d$/);
      expect(node.cpus).toEqual([]);
    }
    // Memory-only nodes are local to some CPUs when the firmware or distances say so.
    for (const node of t.nodes)
      if (node.cpus.length > 0) expect(node.localCpus).toEqual(expect.arrayContaining(node.cpus));
  });

  it('has the caches hwloc has, with their sizes', async () => {
    const t = await read();
    expect(t.caches.map((c) => `${cacheName(c)} ${hwlocSize(c.sizeBytes)}`).sort()).toEqual(printed().caches);
  });

  itIf(
    requirement('lstopo', hasLstopo, 'lstopo-no-graphics is missing; apt-get install hwloc'),
    "agrees with this machine's lstopo on the CPUs of every object",
    async () => {
      const t = await read();
      const hw = await hwlocView(roots.get(test.source)!, {
        args: test.wholeSystem ? ['--disallowed'] : [],
        env: { HWLOC_COMPONENTS: 'linux,stop', ...test.env },
      });
      const sets = (lists: number[][]): string[] => lists.map((l) => l.join(',')).sort();
      expect(hw.pus).toEqual(t.cpus);
      expect(sets(hw.cores)).toEqual(sets(t.cores.map((c) => c.cpus)));
      expect(sets(hw.packages.map((p) => p.cpus))).toEqual(sets(t.packages.map((p) => p.cpus)));
      const gpuShown = Object.keys(test.env).includes('HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES');
      expect(hw.nodes.map((n) => n.id).sort((a, b) => a - b)).toEqual(
        t.nodes.filter((n) => gpuShown || n.memoryKind !== 'GPUMemory').map((n) => n.id),
      );
      const cacheKey = (c: {
        level: number;
        type: string;
        sizeBytes: number;
        lineSizeBytes: number;
        cpus: number[];
      }): string => `L${c.level}${c.type} ${c.sizeBytes} ${c.lineSizeBytes} [${c.cpus.join(',')}]`;
      expect(hw.caches.map(cacheKey).sort()).toEqual(t.caches.map(cacheKey).sort());
    },
  );
});

describe('the view of what the process may use', () => {
  const cpusets = (): HwlocTest => tests.find((t) => t.name === '16amd64-8n2c-cpusets')!;

  it('names the cpuset that restricts it, and shows the whole machine when asked', async () => {
    const root = roots.get(cpusets().source)!;
    const allowedView = await readTopology({ root });
    const whole = await readTopology({ root, wholeSystem: true });
    expect(allowedView.wholeSystem).toBe(false);
    expect(allowedView.allowed.source).toBe('/dev/cpuset/dummy/cpus');
    expect(allowedView.cpus).toEqual(allowedView.allowed.cpus);
    expect(allowedView.nodes.map((n) => n.id)).toEqual(allowedView.allowed.nodes);
    expect(whole.wholeSystem).toBe(true);
    expect(whole.allowed).toEqual(allowedView.allowed);
    expect(whole.cpus.length).toBeGreaterThan(allowedView.cpus.length);
    for (const cpu of allowedView.cpus) expect(whole.cpus).toContain(cpu);
    // Placement sees only what it may use.
    for (const node of allowedView.nodes)
      for (const cpu of node.cpus) expect(allowedView.allowed.cpus).toContain(cpu);
    // A package none of whose CPUs is allowed stays when a node local to it is (it holds memory),
    // as in hwloc.
    const noCpus = allowedView.packages.filter((p) => p.cpus.length === 0);
    expect(noCpus.length).toBeGreaterThan(0);
    for (const p of noCpus) {
      const full = whole.packages.find((w) => w.id === p.id)!;
      const local = whole.nodes.filter(
        (n) =>
          allowedView.allowed.nodes.includes(n.id) &&
          n.cpus.length > 0 &&
          n.cpus.every((c) => full.cpus.includes(c)),
      );
      expect(local.length, `package ${p.id}`).toBeGreaterThan(0);
    }
  });
});
