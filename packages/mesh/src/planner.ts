/**
 * The mesh planner: a roster and one node's name → that node's state document sections: a
 * `wireguard` interface with its peers, `network` routes to the other nodes' subnets, and the
 * `sysctl` forwarding a router needs. Pure: the same roster gives the same document anywhere.
 */
import { OpdbusError } from '@opdbus/core';
import { parseCidr } from '@opdbus/netlink';
import type { InterfaceEntry, PeerEntry, WireguardSection } from '@opdbus/plugins-wireguard';
import type { Roster, RosterNode } from './roster.js';

/** The stored key id of a node's key of one generation. */
export function meshKeyId(mesh: string, generation: number): string {
  return `mesh-${mesh}-${generation}`;
}

/** A route for the network plugin (its `routes` entries). */
export interface MeshRoute {
  to: string;
  via?: string;
  state?: 'absent';
}

/** What a node applies. */
export interface NodeDocument {
  wireguard: WireguardSection;
  network?: { routes: MeshRoute[] };
  sysctl?: Record<string, string>;
}

const hostPrefix = (address: string): string => `${address}/${address.includes(':') ? 128 : 32}`;

/** The peers of `self` under the roster's topology, with what each carries. */
export function peersOf(roster: Roster, self: RosterNode): { node: RosterNode; allowedIPs: string[] }[] {
  const others = roster.nodes.filter((n) => n.name !== self.name);
  if (roster.topology === 'hub-and-spoke' && self.name !== roster.hub) {
    const hub = others.find((n) => n.name === roster.hub);
    if (hub === undefined) return [];
    // A spoke sends everything of the mesh to the hub: the pool and every other node's subnets.
    const subnets = others.flatMap((n) => n.subnets);
    return [{ node: hub, allowedIPs: [roster.pool, ...subnets] }];
  }
  return others.map((node) => ({ node, allowedIPs: [hostPrefix(node.address), ...node.subnets] }));
}

/**
 * The roster as it is at `now`: scheduled rotations whose time has come are the nodes' keys, their
 * old keys revoked.
 */
export function rosterAt(roster: Roster, now: number): Roster {
  if (!roster.nodes.some((n) => n.next !== undefined && Date.parse(n.next.at) <= now)) return roster;
  const revoked = [...roster.revoked];
  const nodes = roster.nodes.map((n) => {
    if (n.next === undefined || Date.parse(n.next.at) > now) return n;
    revoked.push({ publicKey: n.publicKey, node: n.name, reason: 'rotated', at: n.next.at });
    const { next, ...rest } = n;
    return { ...rest, publicKey: next.publicKey, keyGeneration: next.keyGeneration };
  });
  return { ...roster, nodes, revoked };
}

/** The times of the rotations scheduled after `now`, earliest first. */
export function pendingSwitches(roster: Roster, now: number): number[] {
  const times = roster.nodes.flatMap((n) => (n.next === undefined ? [] : [Date.parse(n.next.at)]));
  return [...new Set(times.filter((t) => t > now))].sort((a, b) => a - b);
}

/**
 * The document of node `name` at time `now` (default: now). A node that is not in the roster
 * (removed, or never enrolled) gets its mesh interface deleted.
 */
export function planNode(given: Roster, name: string, now = Date.now()): NodeDocument {
  const roster = rosterAt(given, now);
  const self = roster.nodes.find((n) => n.name === name);
  if (self === undefined) {
    const removed = roster.revoked.find((r) => r.node === name && r.reason === 'removed');
    if (removed === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_MESH_NOT_FOUND',
        `Node "${name}" is not enrolled in mesh ${roster.name} (roster generation ${roster.generation}); join it with a token first.`,
        { data: { mesh: roster.name, node: name } },
      );
    }
    return { wireguard: { interfaces: [{ name: removed.interface ?? roster.interface, state: 'absent' }] } };
  }
  const prefixLength = parseCidr(roster.pool).prefixLength;
  const peers: PeerEntry[] = [];
  const routes: MeshRoute[] = [];
  const isHub = roster.topology === 'hub-and-spoke' && roster.hub === name;
  for (const { node, allowedIPs } of peersOf(roster, self)) {
    const peer: PeerEntry = { publicKey: node.publicKey, allowedIPs };
    if (node.endpoint !== undefined) peer.endpoint = node.endpoint;
    if (roster.keepalive > 0) peer.persistentKeepalive = roster.keepalive;
    peers.push(peer);
  }
  // Routes to the subnets behind other nodes: through their mesh address (a spoke's through the hub).
  const hub = roster.nodes.find((n) => n.name === roster.hub);
  for (const node of roster.nodes) {
    if (node.name === name) continue;
    const via =
      roster.topology === 'hub-and-spoke' && !isHub && hub !== undefined ? hub.address : node.address;
    for (const subnet of node.subnets) routes.push({ to: subnet, via });
  }
  const current = new Set(roster.nodes.map((n) => n.publicKey));
  const gone = new Set<string>();
  for (const r of roster.revoked) {
    if (current.has(r.publicKey) || r.publicKey === self.publicKey || gone.has(r.publicKey)) continue;
    gone.add(r.publicKey);
    peers.push({ publicKey: r.publicKey, state: 'absent' });
    for (const subnet of r.subnets ?? [])
      if (!routes.some((x) => x.to === subnet)) routes.push({ to: subnet, state: 'absent' });
  }
  const iface: InterfaceEntry = {
    name: self.interface ?? roster.interface,
    state: 'up',
    privateKey: { stored: meshKeyId(roster.name, self.keyGeneration) },
    publicKey: self.publicKey,
    mtu: roster.mtu,
    addresses: [`${self.address}/${prefixLength}`],
    peers,
  };
  const port =
    self.endpoint === undefined
      ? roster.listenPort
      : Number(self.endpoint.slice(self.endpoint.lastIndexOf(':') + 1));
  iface.listenPort = port;
  const doc: NodeDocument = { wireguard: { interfaces: [iface] } };
  if (routes.length > 0) doc.network = { routes };
  // A node with subnets behind it, or the hub, forwards between the mesh and them.
  if (self.subnets.length > 0 || isHub) {
    const v6 = [...self.subnets, roster.pool].some((s) => s.includes(':'));
    doc.sysctl = { 'net.ipv4.ip_forward': '1', ...(v6 ? { 'net.ipv6.conf.all.forwarding': '1' } : {}) };
  }
  return doc;
}
