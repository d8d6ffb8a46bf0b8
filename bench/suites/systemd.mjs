// Querying every unit with its state from a real systemd (in a systemd-nspawn container):
// op-dbus (one D-Bus connection, ListUnits + ListUnitFiles) against what a script would spawn:
// `systemctl list-units --all --output=json` (inside the container, via nsenter) and `busctl`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry } from '@opdbus/core';
import { Systemd1Manager, connectBus } from '@opdbus/dbus';
import { createSystemdPlugin } from '@opdbus/plugins-systemd';
import { startSystemdContainer } from '@opdbus/sandbox';
import { has, measure, ms, ratio, sh, table } from '../lib.mjs';

export const title = 'systemd: query all units with their state';

export async function run({ log }) {
  log('booting a container (the image is built once and cached)');
  const ct = await startSystemdContainer();
  const stateDir = await mkdtemp(join(tmpdir(), 'opdbus-bench-systemd-'));
  try {
    const plugin = createSystemdPlugin();
    const engine = new Engine({
      registry: new PluginRegistry([plugin]),
      stateDir,
      target: { busAddress: ct.busAddress, root: ct.rootDir },
    });
    const ctx = engine.context('systemd');
    const units = Object.keys((await plugin.query(ctx)).units ?? {}).length;
    const loaded = JSON.parse(
      sh('nsenter', [
        '--target',
        String(ct.leaderPid),
        '--all',
        '--',
        'systemctl',
        'list-units',
        '--all',
        '--output=json',
        '--no-pager',
      ]),
    ).length;

    log(`query: ${units} units (${loaded} loaded)`);
    const inCt = (...args) => sh('nsenter', ['--target', String(ct.leaderPid), '--all', '--', ...args]);
    const busctl = (member) =>
      JSON.parse(
        sh('busctl', [
          `--address=${ct.busAddress}`,
          '--json=short',
          'call',
          'org.freedesktop.systemd1',
          '/org/freedesktop/systemd1',
          'org.freedesktop.systemd1.Manager',
          member,
        ]),
      );

    // 1. Loaded units with their state (what `systemctl list-units --all` shows).
    const oursLoaded = await measure(
      async () => {
        const bus = await connectBus({ address: ct.busAddress });
        try {
          return await new Systemd1Manager(bus).listUnits();
        } finally {
          await bus.close();
        }
      },
      { iterations: 30 },
    );
    const bus = await connectBus({ address: ct.busAddress });
    const manager = new Systemd1Manager(bus);
    const warmLoaded = await measure(() => manager.listUnits(), { iterations: 50 });
    const systemctlLoaded = await measure(
      () => JSON.parse(inCt('systemctl', 'list-units', '--all', '--output=json', '--no-pager')),
      { iterations: 30 },
    );
    const busctlLoaded = has('busctl')
      ? await measure(() => busctl('ListUnits'), { iterations: 30 })
      : undefined;

    // 2. Every unit with state and enablement (the plugin's full query: ListUnits + ListUnitFiles).
    const oursAll = await measure(() => plugin.query(ctx), { iterations: 10, warmup: 1 });
    const warmFiles = await measure(() => manager.listUnitFiles(), { iterations: 10, warmup: 1 });
    await bus.close();
    const systemctlAll = await measure(
      () => [
        JSON.parse(inCt('systemctl', 'list-units', '--all', '--output=json', '--no-pager')),
        JSON.parse(inCt('systemctl', 'list-unit-files', '--output=json', '--no-pager')),
      ],
      { iterations: 10, warmup: 1 },
    );
    const busctlAll = has('busctl')
      ? await measure(() => [busctl('ListUnits'), busctl('ListUnitFiles')], { iterations: 10, warmup: 1 })
      : undefined;

    const vs = (other, base) =>
      other > base ? `${ratio(other, base)} slower` : `${ratio(base, other)} faster`;
    const rows = [
      [
        `Loaded units with their state (${loaded})`,
        `op-dbus: connect + ListUnits`,
        ms(oursLoaded.median),
        ms(oursLoaded.p95),
        '1×',
      ],
      [
        '',
        'op-dbus: ListUnits on an open connection (a daemon)',
        ms(warmLoaded.median),
        ms(warmLoaded.p95),
        vs(warmLoaded.median, oursLoaded.median),
      ],
      [
        '',
        '`systemctl list-units --all --output=json` (spawned in the container)',
        ms(systemctlLoaded.median),
        ms(systemctlLoaded.p95),
        vs(systemctlLoaded.median, oursLoaded.median),
      ],
    ];
    if (busctlLoaded)
      rows.push([
        '',
        '`busctl --json=short call … ListUnits` (spawned)',
        ms(busctlLoaded.median),
        ms(busctlLoaded.p95),
        vs(busctlLoaded.median, oursLoaded.median),
      ]);
    rows.push(
      [
        `Every unit with state and enablement (${units})`,
        'op-dbus: `query` of the systemd plugin',
        ms(oursAll.median),
        ms(oursAll.p95),
        '1×',
      ],
      [
        '',
        '`systemctl list-units --all` + `list-unit-files` (2 spawns)',
        ms(systemctlAll.median),
        ms(systemctlAll.p95),
        vs(systemctlAll.median, oursAll.median),
      ],
    );
    if (busctlAll)
      rows.push([
        '',
        '`busctl` ListUnits + ListUnitFiles (2 spawns)',
        ms(busctlAll.median),
        ms(busctlAll.p95),
        vs(busctlAll.median, oursAll.median),
      ]);
    return [
      table(['Task', 'How', 'median', 'p95', 'vs op-dbus'], rows),
      '',
      `All against the same systemd 252 in a systemd-nspawn Debian container, in one run. ListUnitFiles alone`,
      `takes ${ms(warmFiles.median)} inside systemd (it reads every unit directory; busctl and systemctl pay the`,
      'same), so it dominates the full query whoever calls it; op-dbus needs it for enablement. For loaded units,',
      'op-dbus saves the process spawn. systemctl runs inside the container via nsenter (it refuses a manager',
      'that is not the local PID 1); busctl talks to the container bus from the host, as op-dbus does.',
    ].join('\n');
  } finally {
    await ct.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}
