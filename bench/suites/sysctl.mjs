// Reading and applying sysctls inside a network namespace: op-dbus (in-process, /proc/sys
// directly) against procps' sysctl(8) spawned the way a script would (ip netns exec … sysctl).
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { createSysctlPlugin } from '@opdbus/plugins-sysctl';
import { createNetns } from '@opdbus/sandbox';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { has, measure, ms, ratio, sh, table } from '../lib.mjs';

export const title = 'sysctl: query and apply in a network namespace';

export async function run({ log }) {
  const netns = await createNetns();
  const stateDir = await mkdtemp(join(tmpdir(), 'opdbus-bench-sysctl-'));
  try {
    const plugin = createSysctlPlugin();
    const registry = new PluginRegistry([plugin]);
    const engine = new Engine({ registry, stateDir, target: { netns: netns.name }, openNetns });
    const ctx = engine.context('sysctl');
    const keyCount = Object.keys(await plugin.query(ctx)).length;

    log(`query all ${keyCount} net.* keys`);
    const ours = await measure(() => plugin.query(ctx), { iterations: 30 });
    const procps = has('sysctl')
      ? await measure(() => sh('ip', ['netns', 'exec', netns.name, 'sysctl', '-a', '-r', '^net\\.']), {
          iterations: 30,
        })
      : undefined;

    log('apply 20 keys as one verified transaction, and back');
    const keys = [
      'net.ipv4.ip_default_ttl',
      'net.core.somaxconn',
      'net.ipv4.tcp_fin_timeout',
      'net.ipv4.tcp_syn_retries',
      'net.ipv4.tcp_synack_retries',
    ];
    const values = [
      [64, 4096, 60, 6, 5],
      [77, 1024, 30, 4, 3],
    ];
    let flip = 0;
    const docFor = (v) =>
      parseStateDocument(
        JSON.stringify({
          version: 1,
          plugins: { sysctl: Object.fromEntries(keys.map((k, i) => [k, v[i]])) },
        }),
        { source: 'bench', registry },
      );
    const apply = await measure(
      async () => {
        flip ^= 1;
        await engine.apply(docFor(values[flip]));
      },
      { iterations: 20 },
    );
    const script = has('sysctl')
      ? await measure(
          () => {
            flip ^= 1;
            sh('ip', [
              'netns',
              'exec',
              netns.name,
              'sysctl',
              '-q',
              '-w',
              ...keys.map((k, i) => `${k}=${values[flip][i]}`),
            ]);
          },
          { iterations: 20 },
        )
      : undefined;

    return [
      table(
        ['Task', 'op-dbus', 'sysctl(8) via ip netns exec', 'Ratio'],
        [
          [
            `Read all ${keyCount} net.* keys`,
            ms(ours.median),
            ms(procps?.median),
            procps ? ratio(procps.median, ours.median) + ' faster' : 'n/a',
          ],
          [
            `Change ${keys.length} keys`,
            `${ms(apply.median)} (transaction: checkpoint, fsync'd journal, apply, verify)`,
            `${ms(script?.median)} (write only, no verify, no rollback)`,
            script ? ratio(apply.median, script.median) + ' the time' : 'n/a',
          ],
        ],
      ),
      '',
      'op-dbus reads /proc/sys/net inside the namespace without spawning anything (the files are opened',
      'with the thread switched into the namespace by setns(2), then read asynchronously). A transaction',
      'costs more than a bare write because it checkpoints, writes and fsyncs its journal twice, and',
      're-reads every key to verify; that is the price of rollback and crash recovery.',
    ].join('\n');
  } finally {
    await netns.destroy();
    await rm(stateDir, { recursive: true, force: true });
  }
}
