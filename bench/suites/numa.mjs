// Reading the topology of a 256-CPU machine (a generated sysfs tree): @opdbus/numa in-process
// against hwloc's lstopo (Debian's hwloc) reading the same tree with HWLOC_FSROOT, and both as
// commands a script would run.
import { readTopology } from '@opdbus/numa';
import { writeSyntheticMachine } from '@opdbus/numa/synthetic';
import fs, { closeSync, openSync, readSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { syncBuiltinESMExports } from 'node:module';
import { fileURLToPath } from 'node:url';
import { has, measure, ms, ratio, sh, stats, table } from '../lib.mjs';

export const title = 'numa: topology of a 256-CPU machine';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps', 'cli', 'dist', 'bin.js');

/** 2 packages × 64 cores × 2 threads, 4 nodes per package, L3 per 8 cores, GPUs, NICs and NVMe. */
const machine = {
  packages: 2,
  coresPerPackage: 64,
  threadsPerCore: 2,
  nodesPerPackage: 4,
  memoryPerNodeBytes: 96 * 1024 ** 3,
  hugepages: [
    { sizeKiB: 2048, perNode: 1024 },
    { sizeKiB: 1048576, perNode: 8 },
  ],
  caches: [
    { level: 1, type: 'Data', sizeKiB: 32, ways: 8, sharedBy: 'core' },
    { level: 1, type: 'Instruction', sizeKiB: 32, ways: 8, sharedBy: 'core' },
    { level: 2, type: 'Unified', sizeKiB: 1024, ways: 8, sharedBy: 'core' },
    { level: 3, type: 'Unified', sizeKiB: 32768, ways: 16, sharedBy: { cores: 8 } },
  ],
  pci: Array.from({ length: 8 }, (_, node) => [
    {
      address: `0000:${(0x10 + node * 0x20).toString(16)}:00.0`,
      class: 0x030200,
      vendor: 0x10de,
      device: 0x2330,
      node,
      driver: 'nvidia',
      drm: [`card${node}`, `renderD${128 + node}`],
    },
    {
      address: `0000:${(0x18 + node * 0x20).toString(16)}:00.0`,
      class: 0x020000,
      vendor: 0x15b3,
      device: 0x1021,
      node,
      driver: 'mlx5_core',
      net: [`ens${node}f0np0`],
      infiniband: [`mlx5_${node}`],
    },
    {
      address: `0000:${(0x1c + node * 0x20).toString(16)}:00.0`,
      class: 0x010802,
      vendor: 0x144d,
      device: 0xa80a,
      node,
      driver: 'nvme',
      nvme: [`nvme${node}`],
    },
  ]).flat(),
};

/** The files one run of `fn` opens, and the directories it lists or probes, counted at node:fs. */
async function countFileOps(fn) {
  const original = { openSync: fs.openSync, readdirSync: fs.readdirSync, existsSync: fs.existsSync };
  const counts = { opens: 0, other: 0 };
  fs.openSync = (...args) => (counts.opens++, original.openSync(...args));
  fs.readdirSync = (...args) => (counts.other++, original.readdirSync(...args));
  fs.existsSync = (...args) => (counts.other++, original.existsSync(...args));
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    Object.assign(fs, original);
    syncBuiltinESMExports();
  }
  return counts;
}

/** The longest stretch the event loop did not turn while `fn` ran (ms). */
async function longestStall(fn) {
  let last = performance.now();
  let worst = 0;
  let handle;
  const turn = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    handle = setImmediate(turn);
  };
  handle = setImmediate(turn);
  await fn();
  clearImmediate(handle);
  return Math.max(worst, performance.now() - last);
}

function files(dir, out = [], limit = 2000) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (out.length >= limit) break;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files(path, out, limit);
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

export async function run({ log }) {
  const base = await mkdtemp(join(tmpdir(), 'opdbus-bench-numa-'));
  try {
    const root = join(base, 'machine');
    writeSyntheticMachine(root, machine);
    const topology = await readTopology({ root });
    const summary = `${topology.cpus.length} CPUs, ${topology.cores.length} cores, ${topology.nodes.length} nodes, ${topology.caches.length} caches, ${topology.pciDevices.length} PCI devices`;
    log(`tree: ${summary}`);

    const loadBefore = loadavg()[0];
    // Interleaved, so that both see the same machine conditions.
    log('readTopology in-process and lstopo --of xml (HWLOC_FSROOT), interleaved');
    const hwloc = has('lstopo-no-graphics');
    const hwlocEnv = { ...process.env, HWLOC_FSROOT: root, HWLOC_COMPONENTS: '-x86' };
    const runLstopo = () => sh('lstopo-no-graphics', ['--of', 'xml', '-'], { env: hwlocEnv });
    for (let i = 0; i < 5; i++) await readTopology({ root });
    if (hwloc) for (let i = 0; i < 2; i++) runLstopo();
    const oursSamples = [];
    const lstopoSamples = [];
    for (let i = 0; i < 40; i++) {
      let t0 = performance.now();
      await readTopology({ root });
      oursSamples.push(performance.now() - t0);
      if (hwloc) {
        t0 = performance.now();
        runLstopo();
        lstopoSamples.push(performance.now() - t0);
      }
    }
    const ours = stats(oursSamples);

    const fileOps = await countFileOps(() => readTopology({ root }));
    const lstopo = hwloc ? stats(lstopoSamples) : undefined;
    const stalls = [];
    for (let i = 0; i < 10; i++) stalls.push(await longestStall(() => readTopology({ root })));
    stalls.sort((a, b) => a - b);

    log('as commands: opdbus --json numa --fsroot, opdbus --version, lstopo --of xml');
    const command = await measure(() => sh(process.execPath, [cli, '--json', 'numa', '--fsroot', root]), {
      iterations: 10,
      warmup: 1,
    });
    const startup = await measure(() => sh(process.execPath, [cli, '--version']), {
      iterations: 10,
      warmup: 1,
    });

    log('this machine (/)');
    const real = await readTopology();
    const oursReal = await measure(() => readTopology(), { iterations: 40, warmup: 5 });
    const lstopoReal = hwloc
      ? await measure(() => sh('lstopo-no-graphics', ['--of', 'xml', '-']), { iterations: 20, warmup: 2 })
      : undefined;

    // Why the reader reads synchronously in slices: the cost of one small file each way.
    log('per-file cost: synchronous read vs fs.promises.readFile');
    const sample = files(join(root, 'sys/devices/system/cpu'));
    const buffer = Buffer.allocUnsafe(4096);
    const syncRead = await measure(
      () => {
        for (const f of sample) {
          const fd = openSync(f, 'r');
          readSync(fd, buffer, 0, 4096, null);
          closeSync(fd);
        }
      },
      { iterations: 10, warmup: 2 },
    );
    const asyncRead = await measure(() => Promise.all(sample.map((f) => readFile(f, 'latin1'))), {
      iterations: 10,
      warmup: 2,
    });

    const loadAfter = loadavg()[0];
    return [
      `A generated sysfs tree of ${summary} (2 packages × 64 cores × 2 threads, 4 NUMA nodes per`,
      'package, an L3 per 8 cores, a GPU, a NIC and an NVMe drive per node). Goal: < 20 ms.',
      `Load average of the machine during the run: ${loadBefore.toFixed(1)} → ${loadAfter.toFixed(1)}${
        Math.max(loadBefore, loadAfter) > cpus().length
          ? ` (above its ${cpus().length} CPUs: it was busy with other work, so medians include waiting for a CPU; the minimum is the closest to an idle machine)`
          : ''
      }.`,
      '',
      table(
        ['Task', '@opdbus/numa', 'lstopo --of xml (hwloc)', 'Ratio'],
        [
          [
            'Read the 256-CPU tree (in-process; hwloc spawned)',
            `${ms(ours.median)} (min ${ms(ours.min)}, p95 ${ms(ours.p95)})`,
            lstopo
              ? `${ms(lstopo.median)} (min ${ms(lstopo.min)}, p95 ${ms(lstopo.p95)})`
              : 'n/a (hwloc not installed)',
            lstopo ? `${ratio(lstopo.median, ours.median)} faster` : 'n/a',
          ],
          [
            'As a command: `opdbus --json numa --fsroot` vs `lstopo --of xml`',
            `${ms(command.median)} (of which start-up, \`opdbus --version\`: ${ms(startup.median)})`,
            lstopo ? ms(lstopo.median) : 'n/a',
            lstopo ? `${ratio(command.median, lstopo.median)} the time` : 'n/a',
          ],
          [
            `This machine (${real.cpus.length} CPUs, ${real.pciDevices.length} PCI devices)`,
            ms(oursReal.median),
            lstopoReal ? ms(lstopoReal.median) : 'n/a',
            lstopoReal ? `${ratio(lstopoReal.median, oursReal.median)} faster` : 'n/a',
          ],
        ],
      ),
      '',
      `Longest event-loop stall during one read of the 256-CPU tree: median ${ms(stalls[5])}, worst ${ms(stalls[stalls.length - 1])}`,
      '(the reader yields every 2 ms of synchronous reads).',
      '',
      table(
        ['Reading one small sysfs file', 'Time per file'],
        [
          ['open + read + close, synchronous', ms(syncRead.median / sample.length)],
          ['fs.promises.readFile, all at once (thread pool)', ms(asyncRead.median / sample.length)],
        ],
      ),
      '',
      `One read of the tree opens ${fileOps.opens} files (and lists or probes ${fileOps.other} directories): at the`,
      `synchronous cost above, that is ${ms((fileOps.opens * syncRead.median) / sample.length)} in open/read/close alone, most of the ${ms(ours.median)}.`,
      'Before issue 14 a read opened 2788 files and took 34.68 ms here (2026-12-05); then 1202 files and',
      '~29 ms (2026-12-07). The reader reads one sibling mask per core, package and die, and one',
      'shared_cpu_map and size per distinct cache. Since then, on a machine of one kind of core (no',
      'Intel hybrid cpu_atom PMU, no arm64 cpu_capacity), the caches private to a core (L1, usually L2)',
      'and one-core clusters are read on the first core only and taken as the same for every core with',
      'as many threads; hybrid machines, cores with another number of threads and shared caches (L3)',
      'are read as before. All sixteen hwloc dumps still match hwloc (`--project numa`).',
      '',
      'sysfs attributes are generated in memory: a read never waits on a device. Through the thread',
      'pool each file costs several round trips (open, fstat, read, close), so @opdbus/numa reads them',
      'synchronously into one buffer, in slices of at most 2 ms between which it yields to the event',
      'loop. lstopo is run as a user would run it (a process per call, with HWLOC_COMPONENTS=-x86 so',
      'that it describes the tree rather than the CPU it runs on).',
    ].join('\n');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}
