// OVSDB at scale: 10,000 ports inserted in one transaction, and a replica of 10,000 rows built
// and kept current — @opdbus/ovsdb against ovs-vsctl (one process per port, and all ports in one
// invocation chained with --) and Debian's python3-ovsdbapp, on the same sandboxed ovsdb-server.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { OvsdbClient } from '@opdbus/ovsdb';
import { startOvs } from '@opdbus/sandbox';
import { ms, ratio, stats, table } from '../lib.mjs';

export const title = 'ovsdb: 10,000 ports in one transaction; a replica of 10,000 rows';

const N = Number(process.env.OPDBUS_BENCH_OVSDB_N ?? 10_000);
const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';
const OVSDBAPP = '/usr/lib/python3/dist-packages/ovsdbapp/__init__.py';

function vsctl(ovs, ...args) {
  const result = spawnSync('ovs-vsctl', [`--db=${ovs.address}`, '--no-wait', '--timeout=600', ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (result.status !== 0)
    throw new Error(`ovs-vsctl ${args.slice(0, 6).join(' ')} … failed: ${result.stderr}`);
  return result.stdout;
}

/** An empty bench0 (with its local port, as add-br makes it); set up with our client, untimed. */
async function freshBridge(ovs) {
  const client = await OvsdbClient.connect(ovs.address);
  try {
    await client.transact('Open_vSwitch', [
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['bridges', 'delete', await bridgeUuids(client)]],
      },
      { op: 'insert', table: 'Interface', uuidName: 'li', row: { name: 'bench0', type: 'internal' } },
      { op: 'insert', table: 'Port', uuidName: 'lp', row: { name: 'bench0', interfaces: ['li'] } },
      { op: 'insert', table: 'Bridge', uuidName: 'br', row: { name: 'bench0', ports: ['lp'] } },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ['br']]] },
    ]);
  } finally {
    await client.close();
  }
}

async function bridgeUuids(client) {
  const [{ rows }] = await client.transact('Open_vSwitch', [
    { op: 'select', table: 'Bridge', where: [], columns: ['_uuid'] },
  ]);
  return rows.map((r) => r._uuid);
}

async function ovsdbapp(ovs, task, n) {
  const { stdout } = await execFileP(
    PYTHON,
    [join(here, '..', 'python', 'ovsdbapp_bench.py'), ovs.address, task, String(n)],
    {
      maxBuffer: 1 << 26,
      timeout: 1_800_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

/** 10,000 ports (Port + Interface rows, added to the bridge) in one transaction with our client. */
async function insertOurs(client, n) {
  const ops = [];
  const ports = [];
  for (let i = 0; i < n; i++) {
    ops.push({ op: 'insert', table: 'Interface', uuidName: `i${i}`, row: { name: `p${i}` } });
    ops.push({
      op: 'insert',
      table: 'Port',
      uuidName: `p${i}`,
      row: { name: `p${i}`, interfaces: [`i${i}`] },
    });
    ports.push(`p${i}`);
  }
  ops.push({
    op: 'mutate',
    table: 'Bridge',
    where: [['name', '==', 'bench0']],
    mutations: [['ports', 'insert', ports]],
  });
  const t0 = performance.now();
  await client.transact('Open_vSwitch', ops);
  return performance.now() - t0;
}

/** ovs-vsctl add-port, one process per port: sampled, because each call reads the whole database. */
function perPortSample(ovs, existing, samples) {
  const times = [];
  for (let k = 0; k < samples; k++) {
    const t0 = performance.now();
    vsctl(ovs, 'add-port', 'bench0', `s${existing}-${k}`);
    times.push(performance.now() - t0);
  }
  vsctl(
    ovs,
    ...Array.from({ length: samples }, (_, k) => ['--', 'del-port', 'bench0', `s${existing}-${k}`]).flat(),
  );
  return stats(times).median;
}

let round = 0;

async function replicaOurs(ovs) {
  const all = `all-js-${round++}`;
  const t0 = performance.now();
  const client = await OvsdbClient.connect(ovs.address);
  const replica = await client.database('Open_vSwitch').replica({ Port: true });
  const buildMs = performance.now() - t0;
  if (replica.table('Port').size !== N + 1)
    throw new Error(`replica has ${replica.table('Port').size} ports`);
  const writer = await OvsdbClient.connect(ovs.address);
  const ports = replica.table('Port');
  const t1 = performance.now();
  const everyRow = replica.waitFor(
    () => [...ports.values()].every((r) => r.external_ids.get('bench') === all),
    {
      timeoutMs: 600_000,
    },
  );
  await writer.transact('Open_vSwitch', [
    {
      op: 'mutate',
      table: 'Port',
      where: [],
      mutations: [
        ['external_ids', 'delete', ['bench']],
        ['external_ids', 'insert', { bench: all }],
      ],
    },
  ]);
  await everyRow;
  const allRowsMs = performance.now() - t1;
  const one = [];
  for (let k = 0; k < 100; k++) {
    const value = `one${k}`;
    const s = performance.now();
    const seen = replica.waitFor(
      () => replica.lookup('Port', 'name', 'p7')?.external_ids.get('bench') === value,
    );
    await writer.transact('Open_vSwitch', [
      {
        op: 'mutate',
        table: 'Port',
        where: [['name', '==', 'p7']],
        mutations: [
          ['external_ids', 'delete', ['bench']],
          ['external_ids', 'insert', { bench: value }],
        ],
      },
    ]);
    await seen;
    one.push(performance.now() - s);
  }
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await writer.close();
  await client.close();
  return { buildMs, allRowsMs, oneRowMs: stats(one).median, heapMiB };
}

export async function run({ log }) {
  const haveOvsdbapp = existsSync(OVSDBAPP) && existsSync(PYTHON);
  const ovs = await startOvs();
  try {
    const rows = [];
    // ---------------------------------------------------------------- insert
    log(`insert ${N} ports in one transaction: op-dbus`);
    const client = await OvsdbClient.connect(ovs.address);
    const oursInsert = [];
    for (let r = 0; r < 3; r++) {
      await freshBridge(ovs);
      oursInsert.push(await insertOurs(client, N));
    }
    await client.close();
    const ours = stats(oursInsert).median;

    let py;
    if (haveOvsdbapp) {
      log(`insert ${N} ports in one transaction: ovsdbapp`);
      const runs = [];
      for (let r = 0; r < 3; r++) {
        await freshBridge(ovs);
        runs.push(await ovsdbapp(ovs, 'insert', N));
      }
      py = {
        insertMs: stats(runs.map((x) => x.insertMs)).median,
        connectMs: stats(runs.map((x) => x.connectMs)).median,
      };
    }

    log(`insert ${N} ports: ovs-vsctl, all in one invocation chained with --`);
    await freshBridge(ovs);
    const t0 = performance.now();
    vsctl(ovs, ...Array.from({ length: N }, (_, i) => ['--', 'add-port', 'bench0', `p${i}`]).flat());
    const batched = performance.now() - t0;

    log(`ovs-vsctl add-port one process per port: sampling the cost at 0 to ${N} existing ports`);
    // The database now holds N ports; sample at smaller sizes by removing ports in steps.
    const sizes = [N, (3 * N) / 4, N / 2, N / 4, 0];
    const perPort = new Map();
    for (const size of sizes) {
      const current = Number(
        vsctl(ovs, '--columns=name', '--format=json', 'list', 'Port').match(/"p\d+"/g)?.length ?? 0,
      );
      if (current > size)
        vsctl(
          ovs,
          ...Array.from({ length: current - size }, (_, k) => [
            '--',
            'del-port',
            'bench0',
            `p${size + k}`,
          ]).flat(),
        );
      perPort.set(size, perPortSample(ovs, size, size === 0 ? 20 : 10));
      log(`  at ${size} ports: ${ms(perPort.get(size))} per add-port`);
    }
    // Trapezoid rule over the sampled sizes: the total of N calls made one after another.
    const ascending = [...sizes].sort((a, b) => a - b);
    let perPortTotal = 0;
    for (let i = 1; i < ascending.length; i++) {
      const a = ascending[i - 1];
      const b = ascending[i];
      perPortTotal += ((perPort.get(a) + perPort.get(b)) / 2) * (b - a);
    }

    rows.push([
      `Insert ${N.toLocaleString('en')} ports (Port + Interface rows, added to a bridge)`,
      ms(ours),
      `${ms(batched)} batched with \`--\`; ≈ ${(perPortTotal / 60_000).toFixed(0)} min one process per port (${ms(perPort.get(0))} per call on an empty bridge, ${ms(perPort.get(N))} at ${N.toLocaleString('en')} ports)`,
      py ? `${ms(py.insertMs)} (+ ${ms(py.connectMs)} to connect and load the database)` : 'not installed',
      py ? ratio(py.insertMs, ours) + ' faster' : 'n/a',
    ]);

    // ---------------------------------------------------------------- replica
    log(`replica of the Port table (${N + 1} rows): op-dbus`);
    await freshBridge(ovs);
    const seed = await OvsdbClient.connect(ovs.address);
    await insertOurs(seed, N);
    await seed.close();
    const oursReplica = [];
    for (let r = 0; r < 3; r++) oursReplica.push(await replicaOurs(ovs));
    const median = (key, list) => stats(list.map((x) => x[key])).median;
    let pyReplica;
    if (haveOvsdbapp) {
      log(`replica of the Port table (${N + 1} rows): ovsdbapp`);
      const runs = [];
      for (let r = 0; r < 3; r++) runs.push(await ovsdbapp(ovs, 'replica', N + 1));
      pyReplica = {
        buildMs: median('buildMs', runs),
        allRowsMs: median('allRowsMs', runs),
        oneRowMs: median('oneRowMs', runs),
      };
    }
    log('ovs-vsctl list Port (a one-shot read; ovs-vsctl keeps no replica)');
    const reads = [];
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      vsctl(ovs, '--format=json', 'list', 'Port');
      reads.push(performance.now() - t);
    }
    const o = {
      buildMs: median('buildMs', oursReplica),
      allRowsMs: median('allRowsMs', oursReplica),
      oneRowMs: median('oneRowMs', oursReplica),
    };
    const cmp = (key) => (pyReplica ? ratio(pyReplica[key], o[key]) + ' faster' : 'n/a');
    rows.push([
      `Build a replica of ${(N + 1).toLocaleString('en')} Port rows (connect, schema, monitor, initial rows)`,
      ms(o.buildMs),
      `${ms(stats(reads).median)} to read the table once (\`list Port\`)`,
      pyReplica ? ms(pyReplica.buildMs) : 'not installed',
      cmp('buildMs'),
    ]);
    rows.push([
      `Keep it current: another client changes all ${(N + 1).toLocaleString('en')} rows in one transaction, until the replica has them all`,
      ms(o.allRowsMs),
      'n/a',
      pyReplica ? ms(pyReplica.allRowsMs) : 'not installed',
      cmp('allRowsMs'),
    ]);
    rows.push([
      'Keep it current: one row changed, until the replica has it (median of 100)',
      ms(o.oneRowMs),
      'n/a',
      pyReplica ? ms(pyReplica.oneRowMs) : 'not installed',
      cmp('oneRowMs'),
    ]);

    return [
      table(
        [
          'Task',
          'op-dbus (@opdbus/ovsdb)',
          'ovs-vsctl',
          'ovsdbapp (python3-ovsdbapp)',
          'op-dbus vs ovsdbapp',
        ],
        rows,
      ),
      '',
      `All against one ${spawnSync('ovsdb-server', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]} (standalone database, unix`,
      `socket) started by @opdbus/sandbox, without ovs-vswitchd, so every tool does the same database work (${os.loadavg()[0].toFixed(1)} load average on this`,
      `${os.cpus().length}-CPU machine when the run ended, shared with other jobs: absolute times are noisy, the ratios come from the same run):`,
      "`ovs-vsctl --no-wait`, and ovsdbapp's own `add_port` commands in one transaction without its wait for",
      'ovs-vswitchd. Medians of 3 runs. op-dbus inserts with `client.transact` (rows validated against the',
      "schema); the replica is a `Replica` of the whole Port table (every column), ovsdbapp's an IDL",
      'registered for the Port table, both following monitor_cond_since updates; the writer is a second',
      'client in the same process. ovs-vsctl keeps no replica and reads the whole database on every call,',
      'so one process per port grows quadratically: its total is estimated from the sampled per-call cost',
      'at 0 to 10,000 ports (trapezoid rule), not run to the end.',
      `op-dbus heap after the replica benchmark: ${stats(oursReplica.map((x) => x.heapMiB)).median.toFixed(0)} MiB.`,
    ].join('\n');
  } finally {
    await ovs.stop();
  }
}
