/** Reading the host: dumps through the rtnetlink client, normalised into the section's shape. */
import {
  Rtnetlink,
  canonicalIp,
  listNamedNetns,
  netnsPath,
  tryParseIp,
  type Address,
  type Link,
  type ParsedIp,
  type Route,
} from '@opdbus/netlink';
import type { NetnsRunner } from '@opdbus/core';
import { addressEntry, isManagedRoute, linkEntry, routeEntry, type NameResolver } from './model.js';
import type { AddressEntry, LinkEntry, RouteEntry } from './schema.js';

/** What the kernel reported, indexed, with the section entries built from it. */
export interface Observation {
  links: Link[];
  addresses: Address[];
  routes: Route[];
  byName: Map<string, Link>;
  byIndex: Map<number, Link>;
  names: NameResolver;
  /** Entries by name. */
  linkEntries: Map<string, LinkEntry>;
  /** Entries by key (`address/LINK/ADDR/PREFIX`). */
  addressEntries: Map<string, { entry: AddressEntry; address: Address }>;
  /** Entries by key (`route/TABLE/DST/METRIC`), every table and protocol. */
  routeEntries: Map<string, { entry: RouteEntry; route: Route }>;
}

/** Facts about the management path, for flagging risky changes. */
export interface HostFacts {
  /** Links whose change could cut the management connection, with why. */
  riskyLinks: Map<string, string>;
  /** Addresses (canonical IP) whose change could cut it, with why. */
  riskyAddresses: Map<string, string>;
  /** The SSH client, when op-dbus runs under SSH: routes towards it are risky. */
  sshClient: ParsedIp | undefined;
}

/** The addresses of the management connection: the server side of SSH_CONNECTION, plus configured ones. */
export function managementAddresses(extra: readonly string[] = []): {
  server: string[];
  client: ParsedIp | undefined;
} {
  const server: string[] = [];
  let client: ParsedIp | undefined;
  const ssh = process.env.SSH_CONNECTION?.trim().split(/\s+/);
  if (ssh !== undefined && ssh.length >= 4) {
    const c = tryParseIp(ssh[0]!);
    if (c !== undefined) client = c;
    if (tryParseIp(ssh[2]!) !== undefined) server.push(canonicalIp(ssh[2]!));
  }
  for (const a of extra) if (tryParseIp(a) !== undefined) server.push(canonicalIp(a));
  return { server, client };
}

/** Dump links (and addresses and routes when asked) and normalise them. */
export async function observe(
  nl: Rtnetlink,
  netns: NetnsRunner | undefined,
  parts: { addresses: boolean; routes: boolean } = { addresses: true, routes: true },
): Promise<Observation> {
  const [links, addresses, routes] = await Promise.all([
    nl.listLinks(),
    parts.addresses ? nl.listAddresses() : Promise.resolve([] as Address[]),
    parts.routes ? nl.listRoutes() : Promise.resolve([] as Route[]),
  ]);
  const byName = new Map<string, Link>();
  const byIndex = new Map<number, Link>();
  for (const l of links) {
    byName.set(l.name, l);
    byIndex.set(l.index, l);
  }
  const foreign = await foreignPeers(nl, netns, links);
  const names: NameResolver = {
    linkName: (index) => byIndex.get(index)?.name,
    foreignPeer: (link) => foreign.get(link.index),
  };
  const linkEntries = new Map<string, LinkEntry>();
  for (const l of links) linkEntries.set(l.name, linkEntry(l, names));
  const addressEntries = new Map<string, { entry: AddressEntry; address: Address }>();
  for (const a of addresses) {
    const link = byIndex.get(a.index);
    if (link === undefined) continue;
    const entry = addressEntry(a, link.name);
    // The kernel's text is canonical already: no need to parse it again for the key.
    addressEntries.set(`address/${link.name}/${entry.address}`, { entry, address: a });
  }
  const routeEntries = new Map<string, { entry: RouteEntry; route: Route }>();
  for (const r of routes) {
    const entry = routeEntry(r, names);
    // The kernel's destination is a canonical network already.
    const key = `route/${r.table}/${r.destination}/${r.priority}`;
    // Several kernel routes can share a key (IPv6 ECMP without RTA_MULTIPATH); keep the first, managed one preferred.
    const existing = routeEntries.get(key);
    if (existing === undefined || (!isManagedRoute(existing.route) && isManagedRoute(r)))
      routeEntries.set(key, { entry, route: r });
  }
  return { links, addresses, routes, byName, byIndex, names, linkEntries, addressEntries, routeEntries };
}

/**
 * Names of veth peers that live in another namespace: the nsid the link reports is matched to a
 * named namespace under /run/netns, and the peer is looked up there by ifindex.
 */
async function foreignPeers(
  nl: Rtnetlink,
  netns: NetnsRunner | undefined,
  links: readonly Link[],
): Promise<Map<number, { name: string; netns: string }>> {
  const out = new Map<number, { name: string; netns: string }>();
  const wanted = links.filter(
    (l) => l.kind === 'veth' && l.linkNetnsId !== undefined && l.link !== undefined,
  );
  if (wanted.length === 0) return out;
  const self = netns === undefined ? undefined : netnsPath(netns.path);
  const names = listNamedNetns().filter((n) => netnsPath(n) !== self);
  const ids = await Promise.all(names.map((n) => nl.netnsId(n).catch(() => undefined)));
  const byId = new Map<number, string>();
  for (const [i, id] of ids.entries()) if (id !== undefined) byId.set(id, names[i]!);
  for (const link of wanted) {
    const ns = byId.get(link.linkNetnsId!);
    if (ns === undefined) continue;
    try {
      using other = Rtnetlink.open({ netns: ns });
      const peer = await other.getLink(link.link!);
      if (peer !== undefined) out.set(link.index, { name: peer.name, netns: ns });
    } catch {
      // The namespace went away meanwhile: the peer stays unnamed.
    }
  }
  return out;
}

/** Risk facts from an observation: links carrying a default route, the management addresses. */
export function hostFacts(obs: Observation, extraManagement: readonly string[]): HostFacts {
  const riskyLinks = new Map<string, string>();
  const riskyAddresses = new Map<string, string>();
  for (const r of obs.routes) {
    if (!r.destination.endsWith('/0') || r.table === 255) continue;
    const devs = [r.oif, ...(r.nexthops?.map((h) => h.ifindex) ?? [])].filter(
      (i): i is number => i !== undefined,
    );
    for (const index of devs) {
      const name = obs.byIndex.get(index)?.name;
      if (name !== undefined) riskyLinks.set(name, `carries the default route (${r.destination})`);
    }
  }
  for (const a of obs.addresses) {
    const link = obs.byIndex.get(a.index)?.name;
    if (link !== undefined && riskyLinks.has(link) && a.scope === 0)
      riskyAddresses.set(canonicalIp(a.address), `is on ${link}, which ${riskyLinks.get(link)}`);
  }
  const mgmt = managementAddresses(extraManagement);
  for (const ip of mgmt.server) {
    const a = obs.addresses.find((x) => canonicalIp(x.address) === ip);
    if (a === undefined) continue;
    const link = obs.byIndex.get(a.index)?.name;
    riskyAddresses.set(ip, 'is the address of the management connection (SSH_CONNECTION)');
    if (link !== undefined) riskyLinks.set(link, `holds the management address ${ip}`);
  }
  return { riskyLinks, riskyAddresses, sshClient: mgmt.client };
}
