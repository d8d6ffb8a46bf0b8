// The `opdbus` command as users run it: whole processes, start to exit, beside the tools a user
// would run instead (`ip -j`, `sysctl -a`) and Node's own start (`node -e 0`), in turn, on an empty
// network namespace. CPU time (user + system) is reported beside wall time: it is what a busy
// machine does not inflate.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetns } from '@opdbus/sandbox';
import { has, ms, stats, table } from '../lib.mjs';

export const title = 'cli: commands as whole processes';

const cli = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), 'apps', 'cli', 'dist', 'bin.cjs');
const TIME = '/usr/bin/time';

/** Wall ms, CPU ms and peak RSS (KiB, with GNU time) of one run. */
function once(argv) {
  const timed = existsSync(TIME);
  const cmd = timed ? TIME : argv[0];
  const args = timed ? ['-f', '%U %S %M', ...argv] : argv.slice(1);
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(-500)}`);
  if (!timed) return { wall };
  const [user, sys, rss] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
  return { wall, cpu: (user + sys) * 1000, rss };
}

export async function run({ log }) {
  const netns = await createNetns();
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-bench-cli-'));
  try {
    const o = (...a) => [process.execPath, cli, '--state-dir', join(dir, 's'), '--netns', netns.name, ...a];
    const doc = join(dir, 'doc.yaml');
    await writeFile(doc, 'version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 0\n');
    const rows = [
      ['`node -e 0` (Node starting, nothing else)', [process.execPath, '-e', '0']],
      ['`opdbus --help`', [process.execPath, cli, '--help']],
      ['`opdbus query --plugin network`', o('query', '--plugin', 'network')],
      [
        'the same without the code cache (`OPDBUS_CODE_CACHE=off`)',
        ['env', 'OPDBUS_CODE_CACHE=off', ...o('query', '--plugin', 'network')],
      ],
      [
        '`ip -n NS -j link` + `addr` + `route`',
        [
          'sh',
          '-c',
          `ip -n ${netns.name} -j link >/dev/null && ip -n ${netns.name} -j addr >/dev/null && ip -n ${netns.name} -j route >/dev/null`,
        ],
      ],
      ['`opdbus query --plugin sysctl`', o('query', '--plugin', 'sysctl')],
      [
        '`sysctl -a -r ^net` via ip netns exec',
        ['ip', 'netns', 'exec', netns.name, 'sysctl', '-a', '-r', '^net\\.'],
      ],
      ['`opdbus diff` of a one-key document', o('diff', doc)],
      ['`opdbus query` (every plugin)', o('query')],
    ].filter(([, argv]) => argv[0] !== 'ip' || has('ip'));
    const samples = rows.map(() => []);
    // Warm the page cache, then alternate the commands so that load drifts hit them alike.
    for (const [, argv] of rows) once(argv);
    log(`${rows.length} commands × 11 runs, in turn`);
    for (let i = 0; i < 11; i++) rows.forEach(([, argv], j) => samples[j].push(once(argv)));
    const node = stats(samples[0].map((s) => s.wall)).median;
    const nodeCpu = samples[0][0].cpu === undefined ? undefined : stats(samples[0].map((s) => s.cpu)).median;
    const body = rows.map(([name], j) => {
      const wall = stats(samples[j].map((s) => s.wall)).median;
      const cpu = samples[j][0].cpu === undefined ? undefined : stats(samples[j].map((s) => s.cpu)).median;
      const rss = samples[j][0].rss === undefined ? undefined : stats(samples[j].map((s) => s.rss)).median;
      return [
        name,
        ms(wall),
        `${(wall / node).toFixed(1)}×`,
        cpu === undefined ? 'n/a' : `${ms(cpu)} (${(cpu / nodeCpu).toFixed(1)}×)`,
        rss === undefined ? 'n/a' : `${(rss / 1024).toFixed(0)} MiB`,
      ];
    });
    return [
      table(['Command', 'Wall (median of 11)', 'Wall ÷ node -e 0', 'CPU (÷ node -e 0)', 'Peak RSS'], body),
      '',
      'The CLI is bundled at build time (esbuild: one chunk per command and per plugin, loaded on',
      'demand), and a scoped command loads only the plugins it reads: `query --plugin network` loads',
      'core, netlink and the network plugin, not D-Bus, OVSDB or nftables. `opdbus query` of every',
      'plugin also probes the ones that are not reachable here (no ovsdb socket, no system bus).',
      'zod is loaded at its first use, from a chunk of its own, and the plugins build their schemas at',
      'their first use (`lazySchema`): `query` validates no document, so it neither loads zod nor builds',
      "a schema; `diff` and `apply` do both. yaml's parser comes from a chunk of its own too: `query`",
      "only prints, with yaml's Document. Output goes out with write(2), not through a Node stream. A",
      "small namespace's netlink dumps are read on the calling thread (no thread pool).",
      '',
      "The chunks are minified CommonJS scripts that dist/bin.cjs runs through `vm.Script` with V8's",
      'code cache (Node 20 has no module compile cache): the first run of a command writes the cache of',
      'each chunk it ran (dist/.code-cache, or ~/.cache/opdbus/code-cache/INSTALL), later runs skip compiling',
      'them. Each command keeps caches of its own (a cache holds what the run that wrote it compiled), per',
      'set of Node flags. Node built-ins (crypto, child_process, fs/promises …) load at their first use, not when a',
      'chunk that names them starts. Each command above ran once before the measured runs, so its cache',
      'is warm; the row without it shows what compiling costs.',
      '',
      'Goal (wave-1 issue): a scoped command at most 2× `node -e 0` (acceptance `cli-speed`: pairs of',
      "runs, median ratio). Before issue 14's second pass the scoped query took 302 ms and 65 MiB (2.8×).",
    ].join('\n');
  } finally {
    await netns.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}
