import { describe, expect, it } from 'vitest';
import { pendingSwitches, planNode } from './planner.js';
import type { Roster } from './roster.js';

const K = (c: string): string => `${c.repeat(42)}A=`;

const roster = (over: Partial<Roster> = {}): Roster => ({
  v: 1,
  name: 'lab',
  pool: '10.99.0.0/24',
  topology: 'full',
  interface: 'wg-lab',
  listenPort: 51820,
  keepalive: 25,
  mtu: 1420,
  generation: 5,
  issued: '2026-01-01T00:00:00.000Z',
  nodes: [
    {
      name: 'n1',
      address: '10.99.0.1',
      endpoint: '192.0.2.1:51820',
      subnets: ['10.200.1.0/24'],
      publicKey: K('a'),
      keyGeneration: 1,
    },
    {
      name: 'n2',
      address: '10.99.0.2',
      endpoint: '192.0.2.2:51821',
      subnets: [],
      publicKey: K('b'),
      keyGeneration: 2,
    },
    { name: 'n3', address: '10.99.0.3', subnets: ['10.200.3.0/24'], publicKey: K('c'), keyGeneration: 1 },
  ],
  revoked: [
    {
      publicKey: K('d'),
      node: 'n4',
      reason: 'removed',
      subnets: ['10.200.4.0/24'],
      at: '2026-01-01T00:00:00.000Z',
    },
    { publicKey: K('e'), node: 'n2', reason: 'rotated', at: '2026-01-01T00:00:00.000Z' },
  ],
  ...over,
});

describe('planNode', () => {
  it('full mesh: every other node a peer with its address and subnets; routes to their subnets; forwarding where subnets are', () => {
    const doc = planNode(roster(), 'n2');
    const iface = doc.wireguard.interfaces![0]!;
    expect(iface).toMatchObject({
      name: 'wg-lab',
      state: 'up',
      privateKey: { stored: 'mesh-lab-2' },
      publicKey: K('b'),
      listenPort: 51821,
      mtu: 1420,
      addresses: ['10.99.0.2/24'],
    });
    expect(iface.peers).toEqual([
      {
        publicKey: K('a'),
        endpoint: '192.0.2.1:51820',
        allowedIPs: ['10.99.0.1/32', '10.200.1.0/24'],
        persistentKeepalive: 25,
      },
      { publicKey: K('c'), allowedIPs: ['10.99.0.3/32', '10.200.3.0/24'], persistentKeepalive: 25 },
      { publicKey: K('d'), state: 'absent' },
      { publicKey: K('e'), state: 'absent' },
    ]);
    expect(doc.network?.routes).toEqual([
      { to: '10.200.1.0/24', via: '10.99.0.1' },
      { to: '10.200.3.0/24', via: '10.99.0.3' },
      { to: '10.200.4.0/24', state: 'absent' },
    ]);
    expect(doc.sysctl).toBeUndefined();
    expect(planNode(roster(), 'n1').sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
  });

  it('hub-and-spoke: a spoke peers with the hub only, sending the pool and all subnets to it', () => {
    const r = roster({ topology: 'hub-and-spoke', hub: 'n1' });
    const spoke = planNode(r, 'n3');
    expect(spoke.wireguard.interfaces![0]!.peers!.filter((p) => p.state !== 'absent')).toEqual([
      {
        publicKey: K('a'),
        endpoint: '192.0.2.1:51820',
        allowedIPs: ['10.99.0.0/24', '10.200.1.0/24'],
        persistentKeepalive: 25,
      },
    ]);
    expect(spoke.network?.routes).toContainEqual({ to: '10.200.1.0/24', via: '10.99.0.1' });
    const hub = planNode(r, 'n1');
    expect(
      hub.wireguard.interfaces![0]!.peers!.filter((p) => p.state !== 'absent').map((p) => p.allowedIPs),
    ).toEqual([['10.99.0.2/32'], ['10.99.0.3/32', '10.200.3.0/24']]);
    expect(hub.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
  });

  it('a removed node deletes its interface; an unknown one is refused', () => {
    expect(planNode(roster(), 'n4')).toEqual({
      wireguard: { interfaces: [{ name: 'wg-lab', state: 'absent' }] },
    });
    expect(() => planNode(roster(), 'zz')).toThrow(/Node "zz" is not enrolled in mesh lab/);
  });

  it('switches a scheduled rotation at its time, the same for every node', () => {
    const r = roster({
      nodes: roster().nodes.map((n) =>
        n.name === 'n2'
          ? { ...n, next: { publicKey: K('f'), keyGeneration: 3, at: '2026-01-01T00:10:00.000Z' } }
          : n,
      ),
    });
    const before = Date.parse('2026-01-01T00:09:59.999Z');
    const at = Date.parse('2026-01-01T00:10:00.000Z');
    expect(pendingSwitches(r, before)).toEqual([at]);
    expect(pendingSwitches(r, at)).toEqual([]);
    expect(planNode(r, 'n2', before).wireguard.interfaces![0]).toMatchObject({
      privateKey: { stored: 'mesh-lab-2' },
      publicKey: K('b'),
    });
    expect(planNode(r, 'n2', at).wireguard.interfaces![0]).toMatchObject({
      privateKey: { stored: 'mesh-lab-3' },
      publicKey: K('f'),
    });
    const peersBefore = planNode(r, 'n1', before).wireguard.interfaces![0]!.peers!;
    expect(peersBefore.find((p) => p.publicKey === K('b'))?.allowedIPs).toEqual(['10.99.0.2/32']);
    const peersAt = planNode(r, 'n1', at).wireguard.interfaces![0]!.peers!;
    expect(peersAt.find((p) => p.publicKey === K('f'))?.allowedIPs).toEqual(['10.99.0.2/32']);
    expect(peersAt).toContainEqual({ publicKey: K('b'), state: 'absent' });
  });
});
