// The ovs plugin against real ovsdb-server + ovs-vswitchd (userspace datapath) in sandbox
// namespaces, cross-checked with ovs-vsctl and with traffic through the bridge.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  createPlan,
  makeChange,
  parseStateDocument,
  type PluginContext,
  type StateDocument,
} from '@opdbus/core';
import { OvsdbClient } from '@opdbus/ovsdb';
import type { OpenVSwitchTables } from '@opdbus/ovsdb/vswitch';
import { createNetns, probeSandbox, startOvs, type OvsSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicatedColumns } from '../src/model.js';
import { createOvsPlugin } from '../src/plugin.js';
import type { OvsSection } from '../src/schema.js';
import { buildTransaction } from '../src/txn.js';
import { describeIf } from '@opdbus/sandbox/testing';

const run = promisify(execFile);
const probe = probeSandbox();

/** The state document of issue 4, as written. */
const ISSUE_YAML = `version: 1
plugins:
  ovs:
    bridges:
      - name: ovsbr0
        datapath_type: netdev
        ports:
          - { name: p1, interfaces: [{ name: p1, type: internal }] }
          - { name: vlan10, tag: 10, interfaces: [{ name: vlan10, type: internal }] }
`;

async function vsctl(ovs: OvsSandbox, ...args: string[]): Promise<string> {
  const { stdout } = await run('ovs-vsctl', [`--db=${ovs.address}`, '--timeout=20', ...args]);
  return stdout.trim();
}

async function must(ns: SandboxNetns, command: string, ...args: string[]): Promise<string> {
  const result = await ns.exec(command, args);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(' ')} failed in ${ns.name}: ${result.stderr}`);
  return result.stdout;
}

function errorOf(promise: Promise<unknown>): Promise<OpdbusError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(OpdbusError);
      return err as OpdbusError;
    },
  );
}

describeIf(probe.vswitchd, 'the ovs plugin with ovs-vswitchd', () => {
  let ns: SandboxNetns;
  let peer: SandboxNetns;
  let ovs: OvsSandbox;
  let stateDir: string;
  const plugin = createOvsPlugin({ vswitchdTimeoutMs: 10_000 });
  const registry = new PluginRegistry([plugin]);
  const engine = (): Engine => new Engine({ registry, stateDir, target: { ovsdbAddress: ovs.address } });
  const doc = (text: string): StateDocument => parseStateDocument(text, { source: 'test.yaml', registry });
  const section = (ovsSection: OvsSection): StateDocument =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { ovs: ovsSection } }), {
      source: 'test.json',
      registry,
    });
  const ctx = (): PluginContext => engine().context('ovs');

  beforeAll(async () => {
    ns = await createNetns();
    peer = await createNetns();
    ovs = await startOvs({ vswitchd: true, netns: ns });
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-ovs-'));
  });
  afterAll(async () => {
    await plugin.close();
    await ovs?.stop();
    await peer?.destroy();
    await ns?.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("applies the issue's YAML as written in ONE transaction; ovs-vsctl shows the same; the ports exist in the namespace", async () => {
    const e = engine();
    const { plan } = await e.plan(doc(ISSUE_YAML));
    expect(plan.changes.map((c) => c.summary)).toEqual([
      'create bridge ovsbr0 (datapath_type netdev)',
      'create port p1 on bridge ovsbr0 with interface(s) p1 internal',
      'create port vlan10 on bridge ovsbr0 (tag 10) with interface(s) vlan10 internal',
    ]);
    const result = await e.apply(doc(ISSUE_YAML));
    expect(result.status).toBe('committed');
    expect((await e.plan(doc(ISSUE_YAML))).plan.changes).toEqual([]);

    // ovs-vsctl (test-only cross-check) sees what the document says.
    expect(await vsctl(ovs, 'list-br')).toBe('ovsbr0');
    expect((await vsctl(ovs, 'list-ports', 'ovsbr0')).split('\n')).toEqual(['p1', 'vlan10']);
    expect(await vsctl(ovs, 'get', 'Bridge', 'ovsbr0', 'datapath_type')).toBe('netdev');
    expect(await vsctl(ovs, 'get', 'Port', 'vlan10', 'tag')).toBe('10');
    expect(await vsctl(ovs, 'get', 'Port', 'p1', 'tag')).toBe('[]');
    expect(await vsctl(ovs, 'get', 'Interface', 'p1', 'type')).toBe('internal');
    expect(await vsctl(ovs, 'get', 'Interface', 'vlan10', 'error')).toBe('[]');
    const show = await vsctl(ovs, 'show');
    expect(show).toMatch(/Bridge ovsbr0\n\s+datapath_type: netdev/);
    expect(show).toMatch(/Port vlan10\n\s+tag: 10\n\s+Interface vlan10\n\s+type: internal/);
    // ovs-vswitchd made them: tap devices inside the sandbox namespace (and never on the host).
    const links = (JSON.parse(await must(ns, 'ip', '-j', 'link', 'show')) as { ifname: string }[]).map(
      (l) => l.ifname,
    );
    expect(links).toEqual(expect.arrayContaining(['ovsbr0', 'p1', 'vlan10']));

    // One OVSDB transaction for the whole plan: ovsdb-server logged one commit with op-dbus's comment.
    const { stdout: log } = await run('ovsdb-tool', ['-mm', 'show-log', ovs.dbPath]);
    const ours = log.split('\n').filter((line) => line.includes('"opdbus: '));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toContain('create port vlan10 on bridge ovsbr0');
  });

  it('a veth in another namespace attached as a port passes traffic through the bridge', async () => {
    await must(ns, 'ip', 'link', 'add', 'vh0', 'type', 'veth', 'peer', 'name', 'vh1', 'netns', peer.name);
    await must(ns, 'ip', 'link', 'set', 'vh0', 'up');
    const result = await engine().apply(
      section({
        bridges: [
          { name: 'ovsbr0', ports: [{ name: 'vh0', interfaces: [{ name: 'vh0', type: 'system' }] }] },
        ],
      }),
    );
    expect(result.status).toBe('committed');
    expect((await vsctl(ovs, 'list-ports', 'ovsbr0')).split('\n')).toContain('vh0');
    expect(await vsctl(ovs, 'get', 'Interface', 'vh0', 'error')).toBe('[]');
    // p1 (an internal port, untagged like vh0) gets an address in the switch's namespace.
    await must(ns, 'ip', 'addr', 'add', '10.44.0.1/24', 'dev', 'p1');
    await must(ns, 'ip', 'link', 'set', 'p1', 'up');
    await must(peer, 'ip', 'addr', 'add', '10.44.0.2/24', 'dev', 'vh1');
    await must(peer, 'ip', 'link', 'set', 'vh1', 'up');
    const ping = await peer.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.44.0.1']);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
  });

  it('bonds, patch ports with peers, tunnels, controllers and managers — as ovs-vsctl sees them', async () => {
    for (const [a, b] of [
      ['bm0', 'bm0x'],
      ['bm1', 'bm1x'],
    ] as const) {
      await must(ns, 'ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      await must(ns, 'ip', 'link', 'set', a, 'up');
    }
    const managerSocket = join(ovs.dir, 'mgr.sock');
    const result = await engine().apply(
      section({
        bridges: [
          {
            name: 'br-a',
            datapath_type: 'netdev',
            fail_mode: 'secure',
            stp: false,
            protocols: ['OpenFlow13'],
            other_config: { hwaddr: '02:00:00:00:00:0a' },
            external_ids: { owner: 'test', tier: 1 },
            controllers: [
              { target: 'tcp:127.0.0.1:6653', connection_mode: 'out-of-band', inactivity_probe: 15_000 },
            ],
            ports: [
              {
                name: 'bond0',
                bond_mode: 'active-backup',
                lacp: 'off',
                bond_updelay: 100,
                interfaces: [{ name: 'bm0' }, { name: 'bm1' }],
              },
              { name: 'patch-ab', interfaces: [{ name: 'patch-ab', type: 'patch', peer: 'patch-ba' }] },
              {
                name: 'vx0',
                interfaces: [
                  {
                    name: 'vx0',
                    type: 'vxlan',
                    options: { remote_ip: '192.0.2.7', key: 42, dst_port: 4789 },
                  },
                ],
              },
            ],
          },
          {
            name: 'br-b',
            datapath_type: 'netdev',
            ports: [
              { name: 'patch-ba', interfaces: [{ name: 'patch-ba', type: 'patch', peer: 'patch-ab' }] },
            ],
          },
        ],
        managers: [{ target: `punix:${managerSocket}`, inactivity_probe: 0 }],
      }),
    );
    expect(result.status).toBe('committed');
    expect(await vsctl(ovs, 'get', 'Bridge', 'br-a', 'fail_mode')).toBe('secure');
    expect(await vsctl(ovs, 'get', 'Bridge', 'br-a', 'protocols')).toBe('[OpenFlow13]');
    expect(await vsctl(ovs, 'get', 'Bridge', 'br-a', 'external_ids')).toBe('{owner=test, tier="1"}');
    expect(await vsctl(ovs, 'get-controller', 'br-a')).toBe('tcp:127.0.0.1:6653');
    expect(await vsctl(ovs, 'get', 'Controller', 'br-a', 'connection_mode')).toBe('out-of-band');
    expect(await vsctl(ovs, 'get-manager')).toBe(`punix:${managerSocket}`);
    expect(await vsctl(ovs, 'get', 'Port', 'bond0', 'bond_mode')).toBe('active-backup');
    expect(
      (await vsctl(ovs, '--columns=name', '--bare', 'list', 'Interface', 'bm0', 'bm1')).split(/\s+/).sort(),
    ).toEqual(['bm0', 'bm1']);
    expect(await vsctl(ovs, 'get', 'Interface', 'patch-ab', 'options:peer')).toBe('patch-ba');
    expect(await vsctl(ovs, 'get', 'Interface', 'vx0', 'options')).toBe(
      '{dst_port="4789", key="42", remote_ip="192.0.2.7"}',
    );
    for (const iface of ['bm0', 'bm1', 'patch-ab', 'patch-ba', 'vx0'])
      expect(await vsctl(ovs, 'get', 'Interface', iface, 'error'), iface).toBe('[]');
    // ovs-vswitchd connected the patch ports to each other (it reports the peer's ofport).
    expect(Number(await vsctl(ovs, 'get', 'Interface', 'patch-ab', 'ofport'))).toBeGreaterThan(0);
    // The ovsdb-server manager listens.
    await using viaManager = await OvsdbClient.connect(`unix:${managerSocket}`);
    expect(await viaManager.listDbs()).toContain('Open_vSwitch');

    // The full query of what op-dbus manages reads back the same.
    const all = await plugin.query(ctx());
    const brA = all.bridges?.find((b) => b.name === 'br-a');
    expect(brA).toMatchObject({
      datapath_type: 'netdev',
      fail_mode: 'secure',
      protocols: ['OpenFlow13'],
      external_ids: { owner: 'test', tier: '1' },
      controllers: [
        { target: 'tcp:127.0.0.1:6653', connection_mode: 'out-of-band', inactivity_probe: 15_000 },
      ],
    });
    expect(brA?.ports?.find((p) => p.name === 'vx0')?.interfaces).toEqual([
      { name: 'vx0', type: 'vxlan', options: { dst_port: '4789', key: '42', remote_ip: '192.0.2.7' } },
    ]);

    // Updates touch only what is named: a key set to null goes, others stay; absent removes.
    await vsctl(ovs, '--no-wait', 'br-set-external-id', 'br-a', 'other-tool', 'keeps-this');
    const update = await engine().apply(
      section({
        bridges: [
          {
            name: 'br-a',
            fail_mode: 'standalone',
            external_ids: { tier: null, owner: 'test2' },
            controllers: [{ target: 'tcp:127.0.0.1:6653', state: 'absent' }],
            ports: [
              { name: 'vx0', state: 'absent' },
              { name: 'bond0', interfaces: [{ name: 'bm1', state: 'absent' }] },
            ],
          },
        ],
      }),
    );
    expect(update.plan.changes.map((c) => c.op)).toEqual(['update', 'delete', 'update']);
    expect(await vsctl(ovs, 'get', 'Bridge', 'br-a', 'external_ids')).toBe(
      '{other-tool=keeps-this, owner=test2}',
    );
    expect(await vsctl(ovs, 'get-controller', 'br-a')).toBe('');
    expect(await vsctl(ovs, 'list-ports', 'br-a')).not.toContain('vx0');
    expect(await vsctl(ovs, '--columns=name', '--bare', 'list', 'Interface')).not.toMatch(/^bm1$/m);
    // And a rollback puts it all back, including the controller and the port that were removed.
    await engine().rollback();
    expect(await vsctl(ovs, 'get', 'Bridge', 'br-a', 'fail_mode')).toBe('secure');
    expect(await vsctl(ovs, 'get-controller', 'br-a')).toBe('tcp:127.0.0.1:6653');
    expect(await vsctl(ovs, 'get', 'Interface', 'vx0', 'options:key')).toBe('"42"');
    expect(await vsctl(ovs, 'get', 'Bridge', 'br-a', 'external_ids')).toBe(
      '{other-tool=keeps-this, owner=test, tier="1"}',
    );
  });

  it('an interface ovs-vswitchd cannot set up fails the apply, which is rolled back', async () => {
    const err = await errorOf(
      engine().apply(
        section({
          bridges: [{ name: 'br-err', datapath_type: 'netdev', ports: [{ name: 'nosuchdev0' }] }],
        }),
      ),
    );
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.data).toMatchObject({
      causeCode: 'OPDBUS_ERR_OVS_INTERFACE',
      resource: 'bridge/br-err/port/nosuchdev0',
    });
    expect(err.message).toMatch(/could not set up interface nosuchdev0: .*No such device/);
    expect(err.message).toContain('rolled back');
    expect(await vsctl(ovs, 'list-br')).not.toContain('br-err');
  });

  it('optimistic concurrency: a concurrent writer makes the transaction fail cleanly instead of clobbering', async () => {
    const desired: OvsSection = {
      bridges: [{ name: 'ovsbr0', fail_mode: 'secure', external_ids: { plan: 'a' } }],
    };
    const observed = await plugin.query(ctx(), { scope: desired });
    const changes = createPlan(plugin.diff(desired, observed).map((spec) => makeChange('ovs', spec))).changes;
    expect(changes).toHaveLength(1);

    // 1. Someone changes the bridge between the plan and the apply: the plugin sees it and refuses.
    await vsctl(ovs, '--no-wait', 'br-set-external-id', 'ovsbr0', 'plan', 'b');
    const stale = await errorOf(plugin.applyBatch!(changes, ctx()));
    expect(stale.code).toBe('OPDBUS_ERR_OVS_CONFLICT');
    expect(stale.data).toMatchObject({ resource: 'bridge/ovsbr0', changeId: changes[0]!.id });
    expect(await vsctl(ovs, 'get', 'Bridge', 'ovsbr0', 'fail_mode')).toBe('[]');

    // 2. Someone commits after op-dbus built its transaction: ovsdb-server's `wait` refuses it.
    const fresh = await plugin.query(ctx(), { scope: desired });
    const again = createPlan(plugin.diff(desired, fresh).map((spec) => makeChange('ovs', spec))).changes;
    await using client = await OvsdbClient.connect(ovs.address);
    // A second replica with the plugin's columns, to build the transaction as the plugin would.
    const replica = await client
      .database<OpenVSwitchTables>('Open_vSwitch')
      .replica(
        Object.fromEntries(
          Object.entries(replicatedColumns).map(([table, columns]) => [table, { columns: [...columns] }]),
        ),
      );
    const built = buildTransaction(replica, again, { waitForVswitchd: false, comment: 'opdbus test' });
    await vsctl(ovs, '--no-wait', 'set', 'Bridge', 'ovsbr0', 'stp_enable=true');
    const raced = await errorOf(client.transact('Open_vSwitch', built.operations));
    expect(raced.code).toBe('OPDBUS_ERR_OVSDB_TRANSACTION');
    expect(raced.data).toMatchObject({ error: 'timed out', operation: 'wait', table: 'Bridge' });
    // Nothing of it was written: the concurrent writer's change stands, ours is not there.
    expect(await vsctl(ovs, 'get', 'Bridge', 'ovsbr0', 'stp_enable')).toBe('true');
    expect(await vsctl(ovs, 'get', 'Bridge', 'ovsbr0', 'fail_mode')).toBe('[]');
    expect(await vsctl(ovs, 'get', 'Bridge', 'ovsbr0', 'external_ids:plan')).toBe('b');
  });

  it('only what the document names is managed, and removal is explicit', async () => {
    await vsctl(
      ovs,
      '--no-wait',
      'add-port',
      'ovsbr0',
      'by-hand',
      '--',
      'set',
      'Interface',
      'by-hand',
      'type=internal',
    );
    const e = engine();
    expect((await e.plan(doc(ISSUE_YAML))).plan.changes).toEqual([]);
    expect((await vsctl(ovs, 'list-ports', 'ovsbr0')).split('\n')).toContain('by-hand');
    const removal = await e.apply(
      section({ bridges: [{ name: 'ovsbr0', ports: [{ name: 'by-hand', state: 'absent' }] }] }),
    );
    expect(removal.plan.changes.map((c) => c.summary)).toEqual(['delete port by-hand from bridge ovsbr0']);
    expect((await vsctl(ovs, 'list-ports', 'ovsbr0')).split('\n')).not.toContain('by-hand');
  });

  it('refuses a port that already lives on another bridge, naming both', async () => {
    const err = await errorOf(
      engine().apply(section({ bridges: [{ name: 'br-b', ports: [{ name: 'p1' }] }] })),
    );
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.data).toMatchObject({ causeCode: 'OPDBUS_ERR_OVS_INVALID' });
    expect(err.message).toContain('Port p1 already exists on bridge ovsbr0');
  });
});

describe('the ovs plugin without a server', () => {
  it('probe says why it is unavailable when the socket is missing', async () => {
    const plugin = createOvsPlugin();
    const stateDir = await mkdtemp(join(tmpdir(), 'opdbus-ovs-probe-'));
    try {
      const e = new Engine({
        registry: new PluginRegistry([plugin]),
        stateDir,
        target: { ovsdbAddress: 'unix:/nonexistent/db.sock' },
      });
      expect(await plugin.probe(e.context('ovs'))).toEqual({
        available: false,
        reason: expect.stringMatching(
          /^there is no OVSDB socket at \/nonexistent\/db\.sock \(is ovsdb-server running\?.*--ovsdb\)$/,
        ),
      });
      const bad = new Engine({
        registry: new PluginRegistry([plugin]),
        stateDir,
        target: { ovsdbAddress: 'ptcp:6640' },
      });
      expect(await plugin.probe(bad.context('ovs'))).toMatchObject({
        available: false,
        reason: expect.stringContaining('passive'),
      });
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
