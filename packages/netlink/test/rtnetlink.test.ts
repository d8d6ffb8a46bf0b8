import { isOpdbusError, type OpdbusError } from '@opdbus/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IFA_F, NUD, RTN, RTPROT, RT_SCOPE } from '../src/constants.js';
import { LIFETIME_FOREVER, Rtnetlink, type Link, type Netns } from '../src/index.js';
import { dropAllNetns, dropNetns, freshNetns, ip, ipBatch, ipJson, describeAsRoot } from './helpers.js';

async function rejection(promise: Promise<unknown>): Promise<OpdbusError> {
  try {
    await promise;
  } catch (err) {
    if (isOpdbusError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  address?: string;
  master?: string;
  link?: string;
  link_netnsid?: number;
  group: string;
  txqlen?: number;
  min_mtu?: number;
  max_mtu?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
  };
}
interface IpAddr {
  ifindex: number;
  ifname: string;
  addr_info: {
    family: string;
    local: string;
    prefixlen: number;
    broadcast?: string;
    scope: string;
    label?: string;
    valid_life_time: number;
    preferred_life_time: number;
    nodad?: boolean;
    noprefixroute?: boolean;
  }[];
}
interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  nexthops?: { gateway: string; dev: string; weight: number }[];
}

/**
 * iproute2's view, ours, and iproute2's again, until the two iproute2 views agree (the kernel
 * changes some state by itself shortly after a change: operational state, IPv6 addresses).
 */
async function consistent<T, U>(
  theirs: () => T,
  ours: () => Promise<U>,
  state: (t: T) => unknown = (t) => t,
): Promise<{ theirs: T; ours: U }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const before = theirs();
    const mine = await ours();
    if (JSON.stringify(state(before)) === JSON.stringify(state(theirs())))
      return { theirs: before, ours: mine };
  }
  throw new Error('the namespace never held still long enough to compare');
}

const scopeNames: Record<string, number> = {
  global: 0,
  universe: 0,
  site: 200,
  link: 253,
  host: 254,
  nowhere: 255,
};
const protoNames: Record<string, number> = { kernel: 2, boot: 3, static: 4, ra: 9, dhcp: 16 };
const tableNames: Record<string, number> = { main: 254, local: 255, default: 253 };
const typeNames: Record<string, number> = {
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
};

describeAsRoot('Rtnetlink in a network namespace', () => {
  let ns: Netns;
  let other: Netns;
  let nl: Rtnetlink;
  const byName = async (name: string): Promise<Link> => {
    const link = await nl.getLink(name);
    if (link === undefined) throw new Error(`no link ${name}`);
    return link;
  };

  beforeAll(() => {
    ns = freshNetns();
    other = freshNetns();
    nl = Rtnetlink.open({ netns: ns });
  });
  afterAll(() => {
    nl?.close();
    dropAllNetns();
  });

  it('creates links of several kinds, with master, MTU, MAC and up in the same request', async () => {
    await nl.createLink({
      name: 'br0',
      kind: 'bridge',
      up: true,
      mtu: 1400,
      bridge: { stpState: 1, forwardDelay: 400 },
    });
    await nl.createLink({
      name: 'veth0',
      kind: 'veth',
      peer: { name: 'veth0p', mtu: 1400, up: true },
      master: 'br0',
      mtu: 1400,
      address: '02:00:00:00:00:01',
      up: true,
    });
    await nl.createLink({
      name: 'vx7',
      kind: 'vxlan',
      vxlan: { id: 7, local: '10.0.0.1', port: 4790, ttl: 16, learning: false },
      master: 'br0',
      up: true,
    });
    await nl.createLink({ name: 'mv0', kind: 'macvlan', parent: 'veth0p', macvlan: { mode: 'bridge' } });
    await nl.createLink({ name: 'tap0', kind: 'tap', mtu: 1300, up: true, tun: { owner: 0 } });

    const d = ipJson<IpLink[]>(ns.name, '-d', 'link', 'show');
    const get = (name: string): IpLink => d.find((l) => l.ifname === name)!;
    expect(get('br0').linkinfo?.info_kind).toBe('bridge');
    expect(get('br0').linkinfo?.info_data).toMatchObject({ stp_state: 1, forward_delay: 400 });
    expect(get('br0').mtu).toBe(1400);
    expect(get('veth0')).toMatchObject({ master: 'br0', mtu: 1400, address: '02:00:00:00:00:01' });
    expect(get('veth0').flags).toContain('UP');
    expect(get('veth0p').flags).toContain('UP');
    expect(get('vx7').linkinfo?.info_data).toMatchObject({
      id: 7,
      local: '10.0.0.1',
      port: 4790,
      ttl: 16,
      learning: false,
    });
    expect(get('vx7').master).toBe('br0');
    expect(get('mv0').linkinfo?.info_data).toMatchObject({ mode: 'bridge' });
    expect(get('mv0').link).toBe('veth0p');
    expect(get('tap0').linkinfo?.info_kind).toBe('tun');
    expect(get('tap0').linkinfo?.info_data).toMatchObject({ type: 'tap', pi: false });
    expect(get('tap0').mtu).toBe(1300);

    // The library's own view of the same links.
    const tap = await byName('tap0');
    expect(tap).toMatchObject({ kind: 'tun', tun: { type: 2, owner: 0 }, mtu: 1300, up: true });
    expect(await byName('vx7')).toMatchObject({
      kind: 'vxlan',
      slaveKind: 'bridge',
      master: (await byName('br0')).index,
      vxlan: { id: 7, port: 4790 },
    });
    expect((await byName('veth0')).bridgePort?.state).toBeTypeOf('number');
  });

  it('a bridge keeps the MTU it was created with when a port with a smaller MTU joins', async () => {
    await nl.createLink({ name: 'brm', kind: 'bridge', mtu: 1500, up: true });
    await nl.createLink({ name: 'vm0', kind: 'veth', peer: { name: 'vm0p' }, mtu: 1280, master: 'brm' });
    expect((await byName('brm')).mtu).toBe(1500);
  });

  it('lists links as `ip -j -d link` does (index, name, flags, MTU, MAC, master, peer, kind, VXLAN data)', async () => {
    // A consistent pair of views: iproute2's before and after ours must agree (the kernel's
    // linkwatch changes operational states a moment after links change).
    const { ours, theirs } = await consistent(
      () => ipJson<IpLink[]>(ns.name, '-d', 'link', 'show'),
      () => nl.listLinks(),
      // Bridge timers in the details tick on their own; the state compared is this.
      (links) => links.map((l) => [l.ifname, l.flags, l.operstate, l.mtu, l.master]),
    );
    expect(ours.map((l) => l.name).sort()).toEqual(theirs.map((l) => l.ifname).sort());
    const names = new Map(ours.map((l) => [l.index, l.name]));
    for (const t of theirs) {
      const o = ours.find((l) => l.index === t.ifindex)!;
      expect(o.name, t.ifname).toBe(t.ifname);
      expect(o.mtu, t.ifname).toBe(t.mtu);
      expect(o.up, t.ifname).toBe(t.flags.includes('UP'));
      expect(o.lowerUp, t.ifname).toBe(t.flags.includes('LOWER_UP'));
      expect(o.operState.toUpperCase(), t.ifname).toBe(t.operstate);
      if (t.address !== undefined) expect(o.address, t.ifname).toBe(t.address);
      expect(o.master === undefined ? undefined : names.get(o.master), t.ifname).toBe(t.master);
      if (t.link !== undefined) expect(names.get(o.link!), t.ifname).toBe(t.link);
      expect(o.kind, t.ifname).toBe(t.linkinfo?.info_kind);
      expect(o.slaveKind, t.ifname).toBe(t.linkinfo?.info_slave_kind);
      if (t.min_mtu !== undefined) expect(o.minMtu, t.ifname).toBe(t.min_mtu);
      if (t.max_mtu !== undefined) expect(o.maxMtu, t.ifname).toBe(t.max_mtu);
      if (t.txqlen !== undefined) expect(o.txQueueLength, t.ifname).toBe(t.txqlen);
      if (t.linkinfo?.info_kind === 'vxlan') {
        const data = t.linkinfo.info_data!;
        expect(o.vxlan).toMatchObject({
          id: data.id,
          port: data.port,
          ttl: data.ttl,
          learning: data.learning,
        });
        if (data.local !== undefined) expect(o.vxlan?.local).toBe(data.local);
      }
    }
    // Kernel-side filters.
    expect((await nl.listLinks({ kind: 'bridge' })).map((l) => l.name).sort()).toEqual(['br0', 'brm']);
    expect((await nl.listLinks({ master: 'br0' })).map((l) => l.name).sort()).toEqual(['veth0', 'vx7']);
  });

  it('puts the peer of a veth in another namespace; the nsid and the peer agree across namespaces', async () => {
    await nl.createLink({
      name: 'xv0',
      kind: 'veth',
      peer: { name: 'xv0p', netns: other.name, up: true },
      up: true,
    });
    const here = await byName('xv0');
    expect(here.linkNetnsId).toBeTypeOf('number');
    expect(await nl.netnsId(other.name)).toBe(here.linkNetnsId);
    using there = Rtnetlink.open({ netns: other.name });
    const peer = await there.getLink('xv0p');
    expect(peer).toMatchObject({ kind: 'veth', up: true, index: here.link });
    expect(ipJson<IpLink[]>(other.name, 'link', 'show', 'xv0p')[0]!.ifname).toBe('xv0p');
    expect(await nl.getLink('xv0p')).toBeUndefined();
  });

  it('changes links: MTU, MAC, up/down, master on and off, group, alias, rename, bridge options', async () => {
    await nl.createLink({ name: 'ch0', kind: 'veth', peer: { name: 'ch0p' } });
    await nl.setLink('ch0', {
      mtu: 1450,
      address: '02:00:00:00:00:aa',
      up: true,
      master: 'br0',
      group: 5,
      alias: 'uplink to br0',
    });
    let link = await byName('ch0');
    expect(link).toMatchObject({
      mtu: 1450,
      address: '02:00:00:00:00:aa',
      up: true,
      master: (await byName('br0')).index,
      group: 5,
      alias: 'uplink to br0',
    });
    await nl.setLink('ch0', { master: null, up: false });
    link = await byName('ch0');
    expect(link.master).toBeUndefined();
    expect(link.up).toBe(false);
    await nl.setLink(link.index, { name: 'ch1' });
    expect(await nl.getLink('ch0')).toBeUndefined();
    expect((await byName('ch1')).index).toBe(link.index);
    await nl.setLink('br0', { bridge: { stpState: 0, forwardDelay: 300 } });
    expect((await byName('br0')).bridge).toMatchObject({ stpState: 0, forwardDelay: 300 });
    await nl.setLink('vx7', { vxlan: { learning: true } });
    expect((await byName('vx7')).vxlan?.learning).toBe(true);
  });

  it('refusals keep the errno identity and say which request failed', async () => {
    const dup = await rejection(nl.createLink({ name: 'br0', kind: 'bridge' }));
    expect(dup.code).toBe('OPDBUS_ERR_NETLINK_REQUEST');
    expect(dup.data).toMatchObject({
      errno: 'EEXIST',
      errnoNumber: 17,
      request: 'RTM_NEWLINK',
      description: 'create link br0 (bridge)',
      netns: ns.name,
    });
    expect(dup.message).toContain('create link br0 (bridge)');
    expect(dup.message).toContain('EEXIST (17)');

    const kind = await rejection(nl.createLink({ name: 'zz0', kind: 'opdbus-no-such-kind' }));
    expect(kind.data).toMatchObject({ errno: 'EOPNOTSUPP', errnoNumber: 95 });
    expect(kind.data?.extack).toBe('Unknown device type');

    const mtu = await rejection(
      nl.createLink({ name: 'big0', kind: 'veth', peer: { name: 'big0p' }, mtu: 100000 }),
    );
    expect(mtu.data).toMatchObject({ errno: 'EINVAL', errnoNumber: 22 });
    expect(await nl.getLink('big0')).toBeUndefined();

    const missing = await rejection(nl.setLink('nosuch0', { mtu: 1400 }));
    expect(missing.data).toMatchObject({ errno: 'ENODEV', errnoNumber: 19 });
    const master = await rejection(nl.setLink('veth0', { master: 'nosuch1' }));
    expect(master.data).toMatchObject({
      errno: 'ENODEV',
      request: 'RTM_GETLINK',
      description: 'find link nosuch1',
    });
    expect(await nl.getLink('nosuch0')).toBeUndefined();
  });

  it('vlan, bond and dummy work where the kernel has them (and say so where it does not)', async (context) => {
    const missing: string[] = [];
    for (const kind of ['dummy', 'bond', 'vlan'] as const) {
      const name = `${kind.slice(0, 3)}9`;
      try {
        if (kind === 'vlan')
          await nl.createLink({ name, kind, parent: 'veth0p', vlan: { id: 42, protocol: '802.1ad' } });
        else if (kind === 'bond')
          await nl.createLink({ name, kind, bond: { mode: 'active-backup', miimon: 100 } });
        else await nl.createLink({ name, kind, up: true });
      } catch (err) {
        if (isOpdbusError(err) && err.data?.errno === 'EOPNOTSUPP') {
          missing.push(kind);
          continue;
        }
        throw err;
      }
      const link = await byName(name);
      expect(link.kind).toBe(kind);
      if (kind === 'vlan') expect(link.vlan).toMatchObject({ id: 42, protocol: 0x88a8 });
      if (kind === 'bond') expect(link.bond).toMatchObject({ mode: 1, miimon: 100 });
      await nl.deleteLink(name);
    }
    if (missing.length > 0) context.skip(`this kernel has no ${missing.join(', ')} module(s)`);
  });

  it('deletes links one by one and many at once (one interface group, one kernel unregister)', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        nl.createLink({ name: `bulk${i}`, kind: 'veth', peer: { name: `bulk${i}p` } }),
      ),
    );
    await nl.createLink({ name: 'tapdel', kind: 'tap' });
    await nl.deleteLinks([...Array.from({ length: 20 }, (_, i) => `bulk${i}`), 'tapdel', 'not-there']);
    const left = (await nl.listLinks()).map((l) => l.name);
    expect(left.filter((n) => n.startsWith('bulk') || n === 'tapdel')).toEqual([]);
    expect(left).toContain('br0');
    // No link was left in a temporary group.
    expect((await nl.listLinks()).filter((l) => (l.group ?? 0) > 0x3fffffff)).toEqual([]);
    await nl.createLink({ name: 'one', kind: 'bridge' });
    await nl.deleteLink('one');
    expect(await nl.getLink('one')).toBeUndefined();
    expect((await rejection(nl.deleteLink('one'))).data?.errno).toBe('ENODEV');
  });

  it('manages IPv4 and IPv6 addresses with flags, scope, broadcast, label and lifetimes, as `ip -j addr` shows them', async () => {
    await nl.addAddress({ link: 'br0', address: '10.0.0.1/24', broadcast: '10.0.0.255', label: 'br0:mgmt' });
    await nl.addAddress({ link: 'br0', address: 'fd00::1/64', flags: IFA_F.NODAD | IFA_F.NOPREFIXROUTE });
    await nl.addAddress({
      link: 'br0',
      address: 'fd00:1::1/64',
      validLifetime: 3600,
      preferredLifetime: 1800,
    });
    await nl.addAddress({ link: 'lo', address: '127.0.0.2/8' });
    const { ours, theirs } = await consistent(
      () => ipJson<IpAddr[]>(ns.name, 'addr', 'show'),
      () => nl.listAddresses(),
    );
    let compared = 0;
    for (const t of theirs) {
      for (const a of t.addr_info) {
        const o = ours.find(
          (x) => x.index === t.ifindex && x.address === a.local && x.prefixLength === a.prefixlen,
        );
        expect(o, `${t.ifname} ${a.local}`).toBeDefined();
        expect(o!.family).toBe(a.family === 'inet' ? 4 : 6);
        expect(o!.scope).toBe(scopeNames[a.scope]);
        if (a.broadcast !== undefined) expect(o!.broadcast).toBe(a.broadcast);
        if (a.label !== undefined) expect(o!.label).toBe(a.label);
        expect((o!.flags & IFA_F.NODAD) !== 0).toBe(a.nodad === true);
        expect((o!.flags & IFA_F.NOPREFIXROUTE) !== 0).toBe(a.noprefixroute === true);
        expect(o!.validLifetime === LIFETIME_FOREVER ? 4294967295 : o!.validLifetime).toBeLessThanOrEqual(
          a.valid_life_time,
        );
        compared++;
      }
    }
    expect(compared).toBe(ours.length);
    const finite = ours.find((a) => a.address === 'fd00:1::1')!;
    expect(finite.validLifetime).toBeGreaterThan(3500);
    expect(finite.validLifetime).toBeLessThanOrEqual(3600);
    expect(finite.preferredLifetime).toBeLessThanOrEqual(1800);
    expect(ours.find((a) => a.address === '127.0.0.2')?.scope).toBe(RT_SCOPE.HOST);

    // Replace updates lifetimes; adding it again without replace is EEXIST.
    await nl.addAddress(
      { link: 'br0', address: 'fd00:1::1/64', validLifetime: LIFETIME_FOREVER },
      { replace: true },
    );
    expect(
      (await nl.listAddresses({ link: 'br0', family: 6 })).find((a) => a.address === 'fd00:1::1')
        ?.validLifetime,
    ).toBe(LIFETIME_FOREVER);
    expect((await rejection(nl.addAddress({ link: 'br0', address: '10.0.0.1/24' }))).data?.errno).toBe(
      'EEXIST',
    );
    await nl.deleteAddress({ link: 'br0', address: 'fd00:1::1/64' });
    expect((await nl.listAddresses({ link: 'br0' })).map((a) => a.address)).not.toContain('fd00:1::1');
    expect((await rejection(nl.deleteAddress({ link: 'br0', address: 'fd00:1::1/64' }))).data?.errno).toBe(
      'EADDRNOTAVAIL',
    );
  });

  it('manages routes: gateway, table, metric, scope, type, metrics, multipath, IPv6, replace, delete', async () => {
    await nl.createLink({ name: 'm1', kind: 'veth', peer: { name: 'm1p' }, up: true });
    await nl.createLink({ name: 'm2', kind: 'veth', peer: { name: 'm2p' }, up: true });
    await nl.addAddress({ link: 'm1', address: '10.1.0.1/24' });
    await nl.addAddress({ link: 'm2', address: '10.2.0.1/24' });
    await nl.addAddress({ link: 'm1', address: 'fd01::1/64', flags: IFA_F.NODAD });
    await nl.addRoute({ to: '10.9.0.0/16', via: '10.0.0.254', metric: 100 });
    await nl.addRoute({
      to: '10.8.0.0/16',
      via: '10.1.0.254',
      table: 100,
      metric: 5,
      metrics: { mtu: 1400, advmss: 1360 },
    });
    await nl.addRoute({ to: '10.7.0.0/16', dev: 'm2', src: '10.2.0.1' });
    await nl.addRoute({ to: '192.0.2.0/24', type: RTN.BLACKHOLE });
    await nl.addRoute({
      to: '10.6.0.0/16',
      nexthops: [
        { via: '10.1.0.254', weight: 2 },
        { via: '10.2.0.254', dev: 'm2' },
      ],
    });
    await nl.addRoute({ to: 'fd09::/48', via: 'fd01::fe' });
    await nl.addRoute({ to: 'default', via: '10.1.0.254', metric: 300 });

    // iproute2's view first: the kernel adds some routes a moment later by itself (the local route
    // of an IPv6 address comes from addrconf's work queue), so ours, taken after, can only have more.
    const theirs = [
      ...ipJson<IpRoute[]>(ns.name, '-4', 'route', 'show', 'table', 'all'),
      ...ipJson<IpRoute[]>(ns.name, '-6', 'route', 'show', 'table', 'all'),
    ];
    const ours = await nl.listRoutes();
    const names = new Map((await nl.listLinks()).map((l) => [l.index, l.name]));
    for (const t of theirs) {
      const table = t.table === undefined ? 254 : (tableNames[t.table] ?? Number(t.table));
      const v6 = t.dst.includes(':') || (t.dst === 'default' && (t.gateway ?? '').includes(':'));
      const dst =
        t.dst === 'default'
          ? v6
            ? '::/0'
            : '0.0.0.0/0'
          : t.dst.includes('/')
            ? t.dst
            : `${t.dst}/${v6 ? 128 : 32}`;
      const type = typeNames[t.type ?? 'unicast'];
      const matches = ours.filter(
        (r) =>
          r.destination === dst &&
          r.table === table &&
          r.type === type &&
          r.priority === (t.metric ?? 0) &&
          (t.dev === undefined || names.get(r.oif ?? -1) === t.dev),
      );
      expect(matches.length, JSON.stringify(t)).toBeGreaterThanOrEqual(1);
      const o = matches[0]!;
      if (t.gateway !== undefined) expect(o.gateway).toBe(t.gateway);
      if (t.protocol !== undefined) expect(o.protocol).toBe(protoNames[t.protocol] ?? Number(t.protocol));
      expect(o.scope).toBe(scopeNames[t.scope ?? 'global']);
      if (t.prefsrc !== undefined) expect(o.prefsrc).toBe(t.prefsrc);
      if (t.nexthops !== undefined) {
        expect(o.nexthops?.map((h) => [h.gateway, names.get(h.ifindex), h.weight])).toEqual(
          t.nexthops.map((h) => [h.gateway, h.dev, h.weight]),
        );
      }
    }
    const custom = ours.find((r) => r.destination === '10.8.0.0/16')!;
    expect(custom).toMatchObject({
      table: 100,
      priority: 5,
      protocol: RTPROT.STATIC,
      metrics: { mtu: 1400, advmss: 1360 },
    });
    expect(ours.find((r) => r.destination === '10.7.0.0/16')).toMatchObject({
      scope: RT_SCOPE.LINK,
      prefsrc: '10.2.0.1',
    });
    expect(ours.find((r) => r.destination === 'fd09::/48')).toMatchObject({
      family: 6,
      priority: 1024,
      gateway: 'fd01::fe',
    });
    expect((await nl.listRoutes({ table: 100 })).map((r) => r.destination)).toEqual(['10.8.0.0/16']);

    // Replace changes the gateway of the same (destination, table, metric).
    await nl.replaceRoute({ to: '10.9.0.0/16', via: '10.0.0.253', metric: 100 });
    expect(
      (await nl.listRoutes({ family: 4 }))
        .filter((r) => r.destination === '10.9.0.0/16')
        .map((r) => r.gateway),
    ).toEqual(['10.0.0.253']);
    expect(
      (await rejection(nl.addRoute({ to: '10.9.0.0/16', via: '10.0.0.1', metric: 100 }))).data?.errno,
    ).toBe('EEXIST');
    const unreachable = await rejection(nl.addRoute({ to: '10.5.0.0/16', via: '172.16.0.1' }));
    expect(unreachable.data).toMatchObject({ errno: 'ENETUNREACH', request: 'RTM_NEWROUTE' });
    await nl.deleteRoute({ to: '10.8.0.0/16', table: 100, metric: 5 });
    await nl.deleteRoute({ to: 'default', metric: 300 });
    expect((await nl.listRoutes({ family: 4 })).map((r) => r.destination)).not.toContain('10.8.0.0/16');
    expect((await rejection(nl.deleteRoute({ to: '10.8.0.0/16', table: 100, metric: 5 }))).data?.errno).toBe(
      'ESRCH',
    );
  });

  it('manages neighbour entries', async () => {
    await nl.addNeighbour({ link: 'm1', address: '10.1.0.9', lladdr: '02:00:00:00:09:09' });
    await nl.addNeighbour({ link: 'm1', address: 'fd01::9', lladdr: '02:00:00:00:09:0a' });
    let entries = await nl.listNeighbours({ link: 'm1' });
    expect(entries.find((n) => n.destination === '10.1.0.9')).toMatchObject({
      lladdr: '02:00:00:00:09:09',
      state: NUD.PERMANENT,
      family: 4,
    });
    expect(ip(ns.name, 'neigh', 'show', 'dev', 'm1')).toContain(
      '10.1.0.9 lladdr 02:00:00:00:09:09 PERMANENT',
    );
    await nl.addNeighbour(
      { link: 'm1', address: '10.1.0.9', lladdr: '02:00:00:00:09:0b' },
      { replace: true },
    );
    entries = await nl.listNeighbours({ link: 'm1', family: 4 });
    expect(entries.find((n) => n.destination === '10.1.0.9')?.lladdr).toBe('02:00:00:00:09:0b');
    await nl.deleteNeighbour({ link: 'm1', address: '10.1.0.9' });
    expect(
      (await nl.listNeighbours({ link: 'm1', family: 4 })).find((n) => n.destination === '10.1.0.9'),
    ).toBeUndefined();
  });

  it('pipelines: hundreds of requests in one tick all complete, and one failure fails only its own request', async () => {
    await nl.createLink({ name: 'pl0', kind: 'bridge', up: true });
    const results = await Promise.allSettled([
      ...Array.from({ length: 300 }, (_, i) =>
        nl.addAddress({ link: 'pl0', address: `10.50.${i >> 7}.${(i & 127) + 1}/16` }),
      ),
      nl.addAddress({ link: 'pl0', address: '10.50.0.1/16' }), // a duplicate of the first
      nl.createLink({ name: 'pl1', kind: 'bridge' }),
    ]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    const failed = results[300] as PromiseRejectedResult;
    expect((failed.reason as OpdbusError).data?.errno).toBe('EEXIST');
    expect((await nl.listAddresses({ link: 'pl0', family: 4 })).length).toBe(300);
    expect(await nl.getLink('pl1')).toBeDefined();
  });

  it('works with a namespace given by name, and its socket stays bound after the handle is closed', async () => {
    const temp = freshNetns();
    const name = temp.name;
    using byNameClient = Rtnetlink.open({ netns: name });
    temp.close();
    await byNameClient.createLink({ name: 'only-there', kind: 'bridge' });
    expect(ip(name, 'link', 'show', 'only-there')).toContain('only-there');
    expect(await nl.getLink('only-there')).toBeUndefined();
    byNameClient.close();
    dropNetns(temp);
  });

  it('a closed client rejects with OPDBUS_ERR_NETLINK_CLOSED', async () => {
    const c = Rtnetlink.open({ netns: ns });
    c.close();
    expect((await rejection(c.listLinks())).code).toBe('OPDBUS_ERR_NETLINK_CLOSED');
  });

  it('dumps many links consistently (a dump spans many datagrams)', async () => {
    ipBatch(
      ns.name,
      Array.from({ length: 400 }, (_, i) => `link add dm${i} type veth peer name dm${i}p`),
    );
    const links = await nl.listLinks();
    expect(links.filter((l) => l.name.startsWith('dm')).length).toBe(800);
    expect(new Set(links.map((l) => l.index)).size).toBe(links.length);
  });
});
