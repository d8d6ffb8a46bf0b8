// WireGuard peers in place: the op-dbus wireguard plugin (UAPI socket of wireguard-go, or the
// kernel family where there is one) against wireguard-tools' `wg setconf` / `wg set` / `wg show`,
// spawned the way a script does it (ip netns exec … wg …), on the same device.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine, PluginRegistry, createPlan, makeChange, parseStateDocument } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import {
  WireguardKeyStore,
  createWireguardPlugin,
  encodeKey,
  generatePrivateKey,
  openBackend,
  publicKeyOf,
} from '@opdbus/plugins-wireguard';
import { createNetns } from '@opdbus/sandbox';
import { has, ms, ratio, sh, stats, table } from '../lib.mjs';

export const title = 'wireguard: 50 peers applied in place, one changed, the device read';

const PEERS = 50;
const ROUNDS = 15;

export async function run({ log }) {
  if (!has('wireguard-go') || !has('wg'))
    throw new Error(
      'needs wireguard-go and wg: apt-get install --no-install-recommends wireguard-go wireguard-tools',
    );
  const netns = await createNetns();
  const stateDir = await mkdtemp(join(tmpdir(), 'opdbus-bench-wg-'));
  const name = `wgb${randomBytes(4).toString('hex')}`;
  try {
    const plugin = createWireguardPlugin();
    const registry = new PluginRegistry([plugin]);
    const engine = new Engine({ registry, stateDir, target: { netns: netns.name }, openNetns });
    const ctx = engine.context('wireguard');
    await new WireguardKeyStore({ stateDir }).generate('bench');
    const peers = Array.from({ length: PEERS }, (_, i) => ({
      publicKey: encodeKey(publicKeyOf(generatePrivateKey())),
      endpoint: `192.0.2.${1 + (i % 250)}:${51820 + i}`,
      allowedIPs: [`10.${100 + (i >> 8)}.${i & 255}.0/24`, `fd10:${i.toString(16)}::/64`],
      persistentKeepalive: 25,
    }));
    const iface = (list) => ({ name, privateKey: { stored: 'bench' }, listenPort: 51999, peers: list });
    const doc = (list) =>
      parseStateDocument(
        JSON.stringify({ version: 1, plugins: { wireguard: { interfaces: [iface(list)] } } }),
        {
          source: 'bench',
          registry,
        },
      );
    await engine.apply(doc([]));
    const backend = await openBackend({ netns });
    backend.close();
    log(`interface ${name} with ${backend.kind} backend: ${backend.detail}`);

    const conf = join(stateDir, 'peers.conf');
    const confBody = [
      '[Interface]',
      'ListenPort = 51999',
      ...peers.flatMap((p) => [
        '',
        '[Peer]',
        `PublicKey = ${p.publicKey}`,
        `Endpoint = ${p.endpoint}`,
        `AllowedIPs = ${p.allowedIPs.join(', ')}`,
        `PersistentKeepalive = ${p.persistentKeepalive}`,
      ]),
      '',
    ].join('\n');
    await writeFile(conf, confBody);
    const empty = join(stateDir, 'empty.conf');
    await writeFile(empty, '[Interface]\nListenPort = 51999\n');
    const wg = (...args) => sh('ip', ['netns', 'exec', netns.name, 'wg', ...args]);
    const reset = () => wg('setconf', name, empty);
    const removeAll = peers.map((p) => ({ publicKey: p.publicKey, state: 'absent' }));

    const changed = peers.map((p, i) =>
      i === 7 ? { ...p, allowedIPs: [...p.allowedIPs, '10.250.0.0/16'] } : p,
    );
    const runs = {
      // 50 peers onto an empty interface.
      engineAdd: { setup: reset, fn: () => engine.apply(doc(peers)) },
      pluginAdd: {
        setup: reset,
        fn: async () => {
          const observed = await plugin.query(ctx, { scope: { interfaces: [iface(peers)] } });
          const plan = createPlan(
            plugin.diff({ interfaces: [iface(peers)] }, observed).map((s) => makeChange('wireguard', s)),
          );
          await plugin.applyBatch(plan.changes, ctx);
        },
      },
      setconf: { setup: reset, fn: () => wg('setconf', name, conf) },
      // One peer of 50 changed (the others untouched).
      engineOne: { setup: () => wg('setconf', name, conf), fn: () => engine.apply(doc(changed)) },
      wgSet: {
        setup: () => wg('setconf', name, conf),
        fn: () =>
          wg('set', name, 'peer', peers[7].publicKey, 'allowed-ips', [...changed[7].allowedIPs].join(',')),
      },
      // Reading the device: keys, port, peers.
      query: { setup: () => wg('setconf', name, conf), fn: () => plugin.query(ctx) },
      show: { setup: () => undefined, fn: () => wg('show', name, 'dump') },
    };
    log(`${ROUNDS} rounds; the tools take turns each round`);
    const samples = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
    for (let i = 0; i < ROUNDS + 2; i++) {
      for (const [key, { setup, fn }] of Object.entries(runs)) {
        await setup();
        const t0 = performance.now();
        await fn();
        if (i >= 2) samples[key].push(performance.now() - t0);
      }
    }
    await engine.apply(doc(removeAll));
    const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
    const row = (what, x, ref) => [
      what,
      ms(x.median),
      ms(x.p95),
      ref === undefined ? '—' : ratio(x.median, ref.median),
    ];
    return [
      `One ${backend.kind === 'kernel' ? 'kernel' : 'wireguard-go'} interface in a network namespace; ${PEERS} peers with an endpoint, two allowed prefixes and a`,
      `keepalive each; medians of ${ROUNDS} rounds, the tools taking turns. \`wg\` runs as a script would run it`,
      '(`ip netns exec NS wg …`, a process each time). The engine numbers are whole transactions: query,',
      'diff, plan, checkpoint, journal (fsync), apply, verify (re-query), commit.',
      '',
      table(
        ['Task', 'Median', 'p95', 'vs `wg`'],
        [
          row(`op-dbus engine: apply ${PEERS} peers (one transaction)`, s.engineAdd, s.setconf),
          row(`op-dbus plugin: query, diff, apply ${PEERS} peer changes (one batch)`, s.pluginAdd, s.setconf),
          row('`wg setconf` with the same peers', s.setconf),
          row(`op-dbus engine: change 1 peer of ${PEERS} in place`, s.engineOne, s.wgSet),
          row('`wg set … peer … allowed-ips …`', s.wgSet),
          row('op-dbus plugin: query the device (normalised section)', s.query, s.show),
          row('`wg show … dump`', s.show),
        ],
      ),
      '',
      'A ratio above 1× means op-dbus took longer. The transaction pays for what `wg` does not do:',
      'the plan, the checkpoint for rollback, the fsync of the journal and the verification.',
    ].join('\n');
  } finally {
    await netns.destroy();
    await rm(stateDir, { recursive: true, force: true });
  }
}
