import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  createPlan,
  makeChange,
  parseStateDocument,
  stringifyStateDocument,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { RtnetlinkMonitor, openNetns, type NetlinkEvent } from '@opdbus/netlink';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffSection } from '../src/diff.js';
import { createNetworkPlugin } from '../src/plugin.js';
import type { NetworkSection } from '../src/schema.js';
import { describeIf, requirement } from '@opdbus/sandbox/testing';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
const plugin = createNetworkPlugin();
const registry = new PluginRegistry([plugin]);
const doc = (section: NetworkSection) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins: { network: section } }), {
    source: 'test.yaml',
    registry,
  });

/** The example document. */
const example: NetworkSection = {
  links: [
    { name: 'br0', kind: 'bridge', state: 'up', mtu: 1500 },
    { name: 'veth0', kind: 'veth', peer: 'veth0p', master: 'br0', state: 'up' },
    {
      name: 'vx100',
      kind: 'vxlan',
      vxlan: { id: 100, local: '10.0.0.1', port: 4789 },
      master: 'br0',
      state: 'up',
    },
  ],
  addresses: [
    { link: 'br0', address: '10.0.0.1/24' },
    { link: 'br0', address: 'fd00::1/64' },
  ],
  routes: [{ to: '10.9.0.0/16', via: '10.0.0.254', metric: 100 }],
};

describe('network section schema', () => {
  const invalid = (yaml: string): string => {
    try {
      parseStateDocument(`version: 1\nplugins:\n  network:\n${yaml}`, { source: 'host.yaml', registry });
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected the document to be refused');
  };

  it('accepts the issue example', () => {
    expect(() => doc(example)).not.toThrow();
  });

  it('refuses unknown fields, bad addresses, duplicates and contradictions, with file:line:column and path', () => {
    expect(invalid('    links:\n      - { name: br0, kind: bridge, mtuu: 1500 }\n')).toMatch(
      /host\.yaml:5:\d+: plugins\.network\.links\[0\]\.mtuu: unknown field/,
    );
    expect(invalid('    addresses:\n      - { link: br0, address: 10.0.0.300/24 }\n')).toContain(
      'plugins.network.addresses[0].address',
    );
    expect(invalid('    addresses:\n      - { link: br0, address: 10.0.0.1 }\n')).toContain(
      'with its prefix length',
    );
    expect(invalid('    links:\n      - { name: br0 }\n      - { name: br0, mtu: 1400 }\n')).toContain(
      'plugins.network.links[1].name: link "br0" is already declared at links[0]',
    );
    expect(invalid('    links:\n      - { name: vx1, kind: vxlan }\n')).toContain(
      'needs `vxlan: { id: ... }`',
    );
    expect(invalid('    routes:\n      - { to: 10.9.1.0/16, via: 10.0.0.1 }\n')).toContain(
      'has host bits set',
    );
    expect(invalid('    routes:\n      - { to: 10.9.0.0/16 }\n')).toContain(
      'needs `via`, `dev` or `nexthops`',
    );
    expect(
      invalid(
        '    links:\n      - { name: b1, state: absent }\n    addresses:\n      - { link: b1, address: 10.0.0.1/24 }\n',
      ),
    ).toContain('link "b1" is declared absent');
    expect(invalid('    links:\n      - { name: "a very long interface name" }\n')).toContain(
      'an interface name',
    );
  });

  it('validates interface names as the kernel does: bytes, not characters; no ".", "..", "/", ":" or spaces', () => {
    // 10 characters, 17 bytes.
    expect(invalid('    links:\n      - { name: "ethééééééé" }\n')).toContain(
      'plugins.network.links[0].name: an interface name has at most 15 bytes; this one has 17',
    );
    for (const bad of ['"."', '".."', '"a/b"', '"eth0:1"', '"a b"'])
      expect(invalid(`    links:\n      - { name: ${bad} }\n`), bad).toContain(
        'plugins.network.links[0].name',
      );
    expect(invalid('    addresses:\n      - { link: "..", address: 10.0.0.1/24 }\n')).toContain(
      'plugins.network.addresses[0].link',
    );
  });
});

describe('diff (pure)', () => {
  it('orders create links → masters → up → addresses → routes, with dependencies', () => {
    const changes = diffSection(example, { links: [], addresses: [], routes: [] });
    const plan = createPlan(changes.map((c) => makeChange('network', c)));
    expect(plan.changes.map((c) => `${c.op} ${c.resource}`)).toEqual([
      'create link/br0',
      'create link/veth0',
      'create link/vx100',
      'create address/br0/10.0.0.1/24',
      'create address/br0/fd00::1/64',
      'create route/254/10.9.0.0/16/100',
    ]);
    const route = plan.changes.at(-1)!;
    expect(route.dependsOn).toContain('network:address/br0/10.0.0.1/24');
    expect(plan.changes[1]!.dependsOn).toContain('network:link/br0');
    // Declared in the "wrong" order, the planner still puts the master first.
    const reversed = diffSection({ links: [...example.links!].reverse() }, {});
    const order = createPlan(reversed.map((c) => makeChange('network', c))).changes.map((c) => c.resource);
    expect(order.indexOf('link/br0')).toBeLessThan(order.indexOf('link/vx100'));
    expect(order.indexOf('link/br0')).toBeLessThan(order.indexOf('link/veth0'));
  });

  it('removes in reverse: routes, then addresses, then ports, then the bridge', () => {
    const observed: NetworkSection = {
      links: [
        { name: 'br0', kind: 'bridge', state: 'up', mtu: 1500, master: null },
        { name: 'vx100', kind: 'vxlan', state: 'up', mtu: 1500, master: 'br0', vxlan: { id: 100 } },
      ],
      addresses: [{ link: 'br0', address: '10.0.0.1/24', scope: 'global' }],
      routes: [{ to: '10.9.0.0/16', via: '10.0.0.254', dev: 'br0', metric: 100, protocol: 'static' }],
    };
    const desired: NetworkSection = {
      links: [
        { name: 'br0', state: 'absent' },
        { name: 'vx100', state: 'absent' },
      ],
      addresses: [{ link: 'br0', address: '10.0.0.1/24', state: 'absent' }],
      routes: [{ to: '10.9.0.0/16', metric: 100, state: 'absent' }],
    };
    const plan = createPlan(diffSection(desired, observed).map((c) => makeChange('network', c)));
    expect(plan.changes.map((c) => `${c.op} ${c.resource}`)).toEqual([
      'delete route/254/10.9.0.0/16/100',
      'delete address/br0/10.0.0.1/24',
      'delete link/vx100',
      'delete link/br0',
    ]);
    // Nothing to do once it is all absent; and diff of the observed state with itself is empty.
    expect(
      diffSection(desired, {
        links: [
          { name: 'br0', state: 'absent' },
          { name: 'vx100', state: 'absent' },
        ],
      }),
    ).toEqual([]);
    expect(diffSection(observed, observed)).toEqual([]);
  });

  it('compares only what the document names; immutable attributes mean recreate', () => {
    const observed: NetworkSection = {
      links: [
        {
          name: 'vx1',
          kind: 'vxlan',
          state: 'up',
          mtu: 1450,
          mac: '02:00:00:00:00:01',
          master: null,
          vxlan: { id: 1, port: 4789, ttl: 0 },
        },
      ],
    };
    expect(diffSection({ links: [{ name: 'vx1', state: 'up' }] }, observed)).toEqual([]);
    expect(
      diffSection({ links: [{ name: 'vx1', mac: '02:00:00:00:00:01'.toUpperCase() }] }, observed),
    ).toEqual([]);
    const [ttl] = diffSection({ links: [{ name: 'vx1', vxlan: { id: 1, ttl: 8 } }] }, observed);
    expect(ttl?.summary).toBe('set link vx1: vxlan.ttl 0 → 8');
    const [id] = diffSection({ links: [{ name: 'vx1', vxlan: { id: 2 } }] }, observed);
    expect(id?.summary).toBe('recreate link vx1: vxlan.id 1 → 2');
  });

  it('flags changes to the default-route link, the management address and the default route as risky', () => {
    const observed: NetworkSection = {
      links: [{ name: 'eth0', state: 'up', mtu: 1500, master: null }],
      addresses: [{ link: 'eth0', address: '192.0.2.10/24', scope: 'global' }],
      routes: [{ to: '0.0.0.0/0', via: '192.0.2.1', dev: 'eth0', metric: 0, protocol: 'static' }],
    };
    const facts = {
      riskyLinks: new Map([['eth0', 'carries the default route (0.0.0.0/0)']]),
      riskyAddresses: new Map([
        ['192.0.2.10', 'is the address of the management connection (SSH_CONNECTION)'],
      ]),
      sshClient: undefined,
    };
    const changes = diffSection(
      {
        links: [{ name: 'eth0', mtu: 1400 }],
        addresses: [{ link: 'eth0', address: '192.0.2.10/24', state: 'absent' }],
        routes: [{ to: 'default', via: '192.0.2.254' }],
      },
      observed,
      facts,
    );
    expect(changes.map((c) => c.risk?.reason)).toEqual([
      'address 192.0.2.10/24 is the address of the management connection (SSH_CONNECTION)',
      'link eth0 carries the default route (0.0.0.0/0)',
      'route 0.0.0.0/0 is the default route',
    ]);
  });
});

describeIf(asRoot, 'network plugin in a network namespace', () => {
  let netns: SandboxNetns;
  let other: SandboxNetns;
  let stateDir: string;
  const engine = (): Engine =>
    new Engine({
      registry,
      stateDir,
      target: { netns: netns.name },
      openNetns,
      verify: { attempts: 6, initialDelayMs: 20 },
    });
  const ctx = (): PluginContext => engine().context('network');
  const ipj = async <T>(...args: string[]): Promise<T> => {
    const r = await netns.exec('ip', ['-j', ...args]);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const ip = async (...args: string[]): Promise<void> => {
    const r = await netns.exec('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  /** What iproute2 sees, reduced to what the plugin manages (ifindex left out: recreated links get new ones). */
  const snapshot = async (): Promise<unknown> => {
    const links = await ipj<
      {
        ifname: string;
        flags: string[];
        mtu: number;
        address: string;
        master?: string;
        linkinfo?: { info_kind: string };
      }[]
    >('-d', 'link', 'show');
    const addrs = await ipj<
      { ifname: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[]
    >('addr', 'show');
    const routes4 = await ipj<unknown[]>('-4', 'route', 'show', 'table', 'all');
    const routes6 = await ipj<{ dst: string; table?: string }[]>('-6', 'route', 'show', 'table', 'all');
    return {
      links: links
        .map((l) => ({
          name: l.ifname,
          up: l.flags.includes('UP'),
          mtu: l.mtu,
          mac: l.address,
          master: l.master ?? null,
          kind: l.linkinfo?.info_kind ?? null,
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      addresses: addrs
        .flatMap((a) =>
          a.addr_info
            .filter((x) => !x.local.startsWith('fe80'))
            .map((x) => `${a.ifname} ${x.local}/${x.prefixlen} ${x.scope}`),
        )
        .sort(),
      routes4: routes4.map((r) => JSON.stringify(r)).sort(),
      routes6: routes6
        .filter((r) => !r.dst.startsWith('fe80') && r.table !== 'local')
        .map((r) => JSON.stringify(r))
        .sort(),
    };
  };

  beforeAll(async () => {
    netns = await createNetns();
    other = await createNetns();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-network-'));
  });
  afterAll(async () => {
    await netns?.destroy();
    await other?.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('applies the issue example, then diff shows no change; the full query round-trips', async () => {
    const e = engine();
    const result = await e.apply(doc(example));
    expect(result.status).toBe('committed');
    expect(result.plan.changes).toHaveLength(6);
    expect((await e.plan(doc(example))).plan.changes).toEqual([]);
    const links = await ipj<{ ifname: string; mtu: number; master?: string; flags: string[] }[]>(
      'link',
      'show',
    );
    expect(links.find((l) => l.ifname === 'veth0')).toMatchObject({ master: 'br0' });
    expect(links.find((l) => l.ifname === 'vx100')?.flags).toContain('UP');
    expect(links.find((l) => l.ifname === 'br0')?.mtu).toBe(1500);
    const full = await plugin.query(ctx());
    const reparsed = parseStateDocument(stringifyStateDocument({ network: full }), {
      source: 'query.yaml',
      registry,
    });
    expect((await e.plan(reparsed)).plan.changes).toEqual([]);
    expect(full.routes).toEqual([
      { to: '10.9.0.0/16', via: '10.0.0.254', dev: 'br0', metric: 100, protocol: 'static' },
    ]);
    // Roll back: everything the transaction created goes away.
    await e.rollback(result.txId);
    expect((await ipj<{ ifname: string }[]>('link', 'show')).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('rolls back a half-applied plan after a real kernel refusal, and the namespace is exactly as before', async () => {
    // A namespace with some state: a bridge with a port, addresses, a route, a standalone veth.
    await ip('link', 'add', 'b1', 'type', 'bridge');
    await ip('link', 'set', 'b1', 'up');
    await ip('link', 'add', 'p1', 'type', 'veth', 'peer', 'name', 'p1p');
    await ip('link', 'set', 'p1', 'master', 'b1');
    await ip('link', 'set', 'p1', 'up');
    await ip('addr', 'add', '10.40.0.1/24', 'dev', 'b1');
    await ip('addr', 'add', 'fd40::1/64', 'dev', 'b1', 'nodad');
    await ip('route', 'add', '10.41.0.0/16', 'via', '10.40.0.254', 'metric', '10');
    await ip('link', 'add', 'solo', 'type', 'veth', 'peer', 'name', 'solop');
    await ip('addr', 'add', '10.42.0.1/24', 'dev', 'solo');
    const before = await snapshot();
    const queryBefore = await plugin.query(ctx());
    const failing: NetworkSection = {
      links: [
        { name: 'nb', kind: 'bridge', state: 'up' },
        { name: 'p1', master: 'nb', mtu: 1400 },
        { name: 'b1', state: 'down' },
        { name: 'solo', state: 'absent' },
        // A duplicate name: the peer would be called like an existing link (EEXIST), late in the plan.
        { name: 'dup0', kind: 'veth', peer: 'p1p' },
      ],
      addresses: [
        { link: 'b1', address: '10.40.0.1/24', state: 'absent' },
        { link: 'nb', address: '10.43.0.1/24' },
      ],
      routes: [
        { to: '10.41.0.0/16', metric: 10, state: 'absent' },
        { to: '10.44.0.0/16', dev: 'nb' },
      ],
    };
    const err = (await engine()
      .apply(doc(failing))
      .catch((e: unknown) => e)) as OpdbusError;
    expect(err).toBeInstanceOf(OpdbusError);
    expect(err.code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect(err.message).toContain('create link dup0');
    expect(err.data).toMatchObject({
      causeCode: 'OPDBUS_ERR_NETWORK_APPLY',
      causeData: { errno: 'EEXIST', errnoNumber: 17 },
    });
    // It failed late: the route and address removals, the deletion of "solo", the new bridge and
    // the changes to p1 and b1 had been applied.
    const [, index, total] = /Change (\d+) of (\d+) failed/.exec(err.message) ?? [];
    expect(Number(index)).toBeGreaterThanOrEqual(6);
    expect(Number(total)).toBe(9);
    expect(await snapshot()).toEqual(before);
    // The plugin's own view, configuration only: IPv6 link-local addresses are made by the kernel
    // when a link gets carrier (IFA_PROTO kernel_ll), which depends on the ports' state, not on
    // anything a configuration restores.
    const configured = (s: NetworkSection): NetworkSection => ({
      ...s,
      addresses: (s.addresses ?? []).filter((a) => !a.address.startsWith('fe80:')),
    });
    expect(configured(await plugin.query(ctx()))).toEqual(configured(queryBefore));
  });

  it('watch reports an out-of-band `ip link set down` as drift on that link', async () => {
    await engine().apply(doc({ links: [{ name: 'w0', kind: 'bridge', state: 'up' }] }));
    const events: WatchEvent[] = [];
    let notify: (() => void) | undefined;
    const seen = new Promise<void>((resolve) => (notify = resolve));
    const unsubscribe = await plugin.watch!(ctx(), (event) => {
      events.push(event);
      if (event.resource === 'link/w0' && event.detail?.includes('down')) notify?.();
    });
    try {
      await ip('link', 'set', 'w0', 'down');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        seen,
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error('no watch event within 10 s')), 10_000)),
        ),
      ]).finally(() => clearTimeout(timer));
    } finally {
      await unsubscribe();
    }
    const drift = events.find((e) => e.resource === 'link/w0')!;
    expect(drift).toMatchObject({
      plugin: 'network',
      detail: expect.stringContaining('link w0: down'),
      raw: { name: 'w0', up: false },
    });
    const plan = await engine().plan(doc({ links: [{ name: 'w0', state: 'up' }] }));
    expect(plan.plan.changes.map((c) => c.summary)).toEqual(['set link w0: state down → up']);
  });

  it('creates a veth whose peer lives in another namespace, and sees it there', async () => {
    const section: NetworkSection = {
      links: [{ name: 'xv0', kind: 'veth', peer: { name: 'xv0p', netns: other.name }, state: 'up' }],
    };
    const e = engine();
    const result = await e.apply(doc(section));
    expect(result.status).toBe('committed');
    const r = await other.exec('ip', ['-j', 'link', 'show', 'xv0p']);
    expect((JSON.parse(r.stdout) as { ifname: string }[])[0]?.ifname).toBe('xv0p');
    const observed = await plugin.query(ctx(), { scope: section });
    expect(observed.links?.[0]).toMatchObject({
      name: 'xv0',
      kind: 'veth',
      peer: { name: 'xv0p', netns: other.name },
    });
    expect((await e.plan(doc(section))).plan.changes).toEqual([]);
    await e.rollback(result.txId);
    expect((await other.exec('ip', ['link', 'show', 'xv0p'])).code).not.toBe(0);
  });

  it('recreates a VXLAN whose id changes, keeping its master and addresses', async () => {
    const e = engine();
    await e.apply(
      doc({
        links: [
          { name: 'rb', kind: 'bridge', state: 'up' },
          {
            name: 'rvx',
            kind: 'vxlan',
            vxlan: { id: 5, local: '10.0.0.1' },
            master: 'rb',
            state: 'up',
            mtu: 1400,
          },
        ],
        addresses: [{ link: 'rvx', address: '10.45.0.1/24' }],
      }),
    );
    const result = await e.apply(doc({ links: [{ name: 'rvx', vxlan: { id: 6 } }] }));
    expect(result.plan.changes.map((c) => c.summary)).toEqual(['recreate link rvx: vxlan.id 5 → 6']);
    const link = (
      await ipj<{ ifname: string; master: string; mtu: number; linkinfo: { info_data: { id: number } } }[]>(
        '-d',
        'link',
        'show',
        'rvx',
      )
    )[0]!;
    expect(link).toMatchObject({ master: 'rb', mtu: 1400, linkinfo: { info_data: { id: 6 } } });
    const addrs = await ipj<{ addr_info: { local: string }[] }[]>('addr', 'show', 'rvx');
    expect(addrs[0]?.addr_info.map((a) => a.local)).toContain('10.45.0.1');
    // Rolling back recreates it with the old id.
    await e.rollback(result.txId);
    const back = (
      await ipj<{ linkinfo: { info_data: { id: number } }; master: string }[]>('-d', 'link', 'show', 'rvx')
    )[0]!;
    expect(back).toMatchObject({ master: 'rb', linkinfo: { info_data: { id: 5 } } });
  });

  it('deletes many links in one bulk request (they pass through one temporary interface group)', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `bd${i}`);
    await engine().apply(doc({ links: names.map((name) => ({ name, kind: 'bridge' as const })) }));
    const monitor = await RtnetlinkMonitor.open({ netns: netns.name, groups: ['link'], resync: false });
    const grouped = new Set<string>();
    monitor.on('event', (e: NetlinkEvent) => {
      if (e.type === 'link' && (e.link.group ?? 0) >= 0x40000000) grouped.add(e.link.name);
    });
    try {
      const result = await engine().apply(
        doc({ links: names.map((name) => ({ name, state: 'absent' as const })) }),
      );
      expect(result.status).toBe('committed');
      expect(result.plan.changes).toHaveLength(30);
      const left = (await ipj<{ ifname: string }[]>('link', 'show')).map((l) => l.ifname);
      expect(left.filter((n) => n.startsWith('bd'))).toEqual([]);
      // The events of the deletion were all delivered by the time the kernel acked it.
      await new Promise((resolve) => setImmediate(resolve));
      expect([...grouped].sort()).toEqual([...names].sort());
    } finally {
      monitor.close();
    }
  });

  it('refuses a change to the link carrying the default route unless forced or commit-confirmed', async () => {
    await ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p');
    await ip('link', 'set', 'up0', 'up');
    await ip('addr', 'add', '10.46.0.2/24', 'dev', 'up0');
    await ip('route', 'add', 'default', 'via', '10.46.0.1');
    const risky = doc({ links: [{ name: 'up0', mtu: 1400 }] });
    const err = (await engine()
      .apply(risky)
      .catch((e: unknown) => e)) as OpdbusError;
    expect(err.code).toBe('OPDBUS_ERR_RISKY_CHANGE');
    expect(err.message).toContain('link up0 carries the default route (0.0.0.0/0)');
    expect((await engine().apply(risky, { force: true })).status).toBe('committed');
    // The management address (SSH_CONNECTION's server side) is protected the same way.
    const saved = process.env.SSH_CONNECTION;
    process.env.SSH_CONNECTION = '10.46.0.99 50000 10.46.0.2 22';
    try {
      const plan = await engine().plan(
        doc({ addresses: [{ link: 'up0', address: '10.46.0.2/24', state: 'absent' }] }),
      );
      expect(plan.plan.changes[0]?.risk?.reason).toBe(
        'address 10.46.0.2/24 is the address of the management connection (SSH_CONNECTION)',
      );
    } finally {
      if (saved === undefined) delete process.env.SSH_CONNECTION;
      else process.env.SSH_CONNECTION = saved;
    }
    await ip('route', 'del', 'default');
    await ip('link', 'del', 'up0');
  });

  it('says what is wrong with a document it cannot apply here, with the path', async () => {
    await expect(
      plugin.query(ctx(), { scope: { links: [{ name: 'nic9', mtu: 1400 }] } }),
    ).rejects.toMatchObject({
      code: 'OPDBUS_ERR_NETWORK_INVALID',
      message: expect.stringContaining('plugins.network.links[0]: link nic9 does not exist and has no kind'),
    });
    await expect(
      plugin.query(ctx(), { scope: { addresses: [{ link: 'nic9', address: '10.0.0.1/24' }] } }),
    ).rejects.toMatchObject({
      code: 'OPDBUS_ERR_NETWORK_INVALID',
      message: expect.stringContaining('plugins.network.addresses[0].link'),
    });
    await expect(
      plugin.query(ctx(), { scope: { links: [{ name: 'lo', kind: 'bridge' }] } }),
    ).rejects.toMatchObject({
      code: 'OPDBUS_ERR_NETWORK_INVALID',
      message: expect.stringContaining('cannot be recreated as bridge'),
    });
  });

  it('manages taps, macvlans, address flags and lifetimes, multipath and blackhole routes', async () => {
    const section: NetworkSection = {
      links: [
        { name: 'tp0', kind: 'tap', state: 'up', mtu: 1300, tap: { owner: 0 } },
        { name: 'lower0', kind: 'veth', peer: 'lower0p', state: 'up' },
        {
          name: 'mv0',
          kind: 'macvlan',
          parent: 'lower0',
          macvlan: { mode: 'bridge' },
          mac: '02:00:00:00:10:01',
        },
        { name: 'lower1', kind: 'veth', peer: 'lower1p', state: 'up' },
      ],
      addresses: [
        { link: 'lower0', address: '10.50.0.1/24' },
        { link: 'lower1', address: '10.51.0.1/24' },
        {
          link: 'tp0',
          address: 'fd50::1/64',
          flags: ['nodad', 'noprefixroute'],
          validLifetime: 3600,
          preferredLifetime: 1800,
        },
      ],
      routes: [
        { to: '10.60.0.0/16', nexthops: [{ via: '10.50.0.254', weight: 3 }, { via: '10.51.0.254' }] },
        { to: '192.0.2.0/24', type: 'blackhole', table: 100, metric: 5 },
        { to: '10.61.0.0/16', via: '10.50.0.254', mtu: 1400, advmss: 1360, protocol: 'boot' },
      ],
    };
    const e = engine();
    const result = await e.apply(doc(section));
    expect(result.status).toBe('committed');
    expect((await e.plan(doc(section))).plan.changes).toEqual([]);
    const observed = await plugin.query(ctx(), { scope: section });
    expect(observed.links?.[0]).toMatchObject({ kind: 'tap', mtu: 1300, tap: { owner: 0 } });
    expect(observed.addresses?.[2]).toMatchObject({ flags: ['nodad', 'noprefixroute'] });
    expect(observed.routes?.[1]).toMatchObject({ type: 'blackhole', table: 100 });
    // An address change that only needs a replace (lifetime forever now).
    const changed = await e.apply(
      doc({
        addresses: [
          { link: 'tp0', address: 'fd50::1/64', validLifetime: 'forever', preferredLifetime: 'forever' },
        ],
      }),
    );
    expect(changed.plan.changes.map((c) => c.summary)).toEqual([
      'change address fd50::1/64 on tp0: validLifetime 3600 → forever, preferredLifetime 1800 → forever',
    ]);
    await e.rollback(changed.txId);
    await e.rollback(result.txId);
    expect((await ipj<{ ifname: string }[]>('link', 'show')).map((l) => l.ifname)).not.toContain('tp0');
  });
});
