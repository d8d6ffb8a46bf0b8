/**
 * The plugin's model: resource keys, normalisation of what the kernel reports into the section's
 * shape, and field-by-field comparison of a declared entry with an observed one.
 */
import {
  LIFETIME_FOREVER,
  canonicalIp,
  canonicalMac,
  constants,
  formatIp,
  netnsPath,
  networkBytes,
  tryParseCidr,
  tryParseIp,
  type Address,
  type Link,
  type Route,
} from '@opdbus/netlink';
import type { AddressEntry, LinkEntry, NetworkSection, NexthopEntry, RouteEntry } from './schema.js';

const { IFA_F, RTN, RTPROT, RT_SCOPE, RT_TABLE, RTNH_F } = constants;

export const scopeByName: Readonly<Record<string, number>> = {
  global: RT_SCOPE.UNIVERSE,
  site: RT_SCOPE.SITE,
  link: RT_SCOPE.LINK,
  host: RT_SCOPE.HOST,
  nowhere: RT_SCOPE.NOWHERE,
};
const scopeNames = new Map(Object.entries(scopeByName).map(([k, v]) => [v, k]));
export const routeTypeByName: Readonly<Record<string, number>> = {
  unicast: RTN.UNICAST,
  local: RTN.LOCAL,
  broadcast: RTN.BROADCAST,
  anycast: RTN.ANYCAST,
  multicast: RTN.MULTICAST,
  blackhole: RTN.BLACKHOLE,
  unreachable: RTN.UNREACHABLE,
  prohibit: RTN.PROHIBIT,
  throw: RTN.THROW,
};
const routeTypeNames = new Map(Object.entries(routeTypeByName).map(([k, v]) => [v, k]));
export const protocolByName: Readonly<Record<string, number>> = {
  redirect: RTPROT.REDIRECT,
  kernel: RTPROT.KERNEL,
  boot: RTPROT.BOOT,
  static: RTPROT.STATIC,
  ra: RTPROT.RA,
  dhcp: RTPROT.DHCP,
  bgp: RTPROT.BGP,
  ospf: RTPROT.OSPF,
};
const protocolNames = new Map(Object.entries(protocolByName).map(([k, v]) => [v, k]));
const tableByName: Readonly<Record<string, number>> = {
  main: RT_TABLE.MAIN,
  local: RT_TABLE.LOCAL,
  default: RT_TABLE.DEFAULT,
};
export const addressFlagBits: Readonly<Record<string, number>> = {
  nodad: IFA_F.NODAD,
  noprefixroute: IFA_F.NOPREFIXROUTE,
  homeaddress: IFA_F.HOMEADDRESS,
  managetempaddr: IFA_F.MANAGETEMPADDR,
  optimistic: IFA_F.OPTIMISTIC,
  autojoin: IFA_F.MCAUTOJOIN,
};
const macvlanModeNames = new Map([
  [1, 'private'],
  [2, 'vepa'],
  [4, 'bridge'],
  [8, 'passthru'],
  [16, 'source'],
] as const);
const bondModeNames = [
  'balance-rr',
  'active-backup',
  'balance-xor',
  'broadcast',
  '802.3ad',
  'balance-tlb',
  'balance-alb',
] as const;
const creatableKinds = new Set([
  'bridge',
  'veth',
  'vxlan',
  'macvlan',
  'macvtap',
  'dummy',
  'ifb',
  'vlan',
  'bond',
]);

/** A scope as a number. */
export function scopeNumber(scope: string | number): number {
  return typeof scope === 'number' ? scope : (scopeByName[scope] ?? 0);
}
/** A table as a number (default main). */
export function tableNumber(table: string | number | undefined): number {
  if (table === undefined) return RT_TABLE.MAIN;
  return typeof table === 'number' ? table : (tableByName[table] ?? RT_TABLE.MAIN);
}
/** A protocol as a number. */
export function protocolNumber(protocol: string | number): number {
  return typeof protocol === 'number' ? protocol : (protocolByName[protocol] ?? 0);
}

// ---- keys ----

/** `link/NAME`. */
export function linkKey(name: string): string {
  return `link/${name}`;
}

/** Canonical `ADDRESS/PREFIX` (address as written, canonical text). */
export function canonicalAddress(cidr: string): string {
  const c = tryParseCidr(cidr);
  return c === undefined ? cidr : `${formatIp(c.bytes, 0, c.bytes.length)}/${c.prefixLength}`;
}

/** `address/LINK/ADDRESS/PREFIX`. */
export function addressKey(a: Pick<AddressEntry, 'link' | 'address'>): string {
  return `address/${a.link}/${canonicalAddress(a.address)}`;
}

/** The family of a route entry's destination. */
export function routeFamily(r: Pick<RouteEntry, 'to' | 'via' | 'src' | 'nexthops'>): 4 | 6 {
  if (r.to !== 'default') return tryParseCidr(r.to)?.family ?? 4;
  const hint = r.via ?? r.src ?? r.nexthops?.find((h) => h.via !== undefined)?.via;
  return hint !== undefined && tryParseIp(hint)?.family === 6 ? 6 : 4;
}

/** Canonical destination network (`default` → `0.0.0.0/0` or `::/0`; a host address → /32, /128). */
export function canonicalDestination(r: Pick<RouteEntry, 'to' | 'via' | 'src' | 'nexthops'>): string {
  if (r.to === 'default') return routeFamily(r) === 6 ? '::/0' : '0.0.0.0/0';
  const c = tryParseCidr(r.to);
  if (c === undefined) return r.to;
  return `${formatIp(networkBytes(c.bytes, c.prefixLength), 0, c.bytes.length)}/${c.prefixLength}`;
}

/** The metric of a route entry (the kernel's default when omitted: 0 for IPv4, 1024 for IPv6). */
export function routeMetric(r: Pick<RouteEntry, 'to' | 'via' | 'src' | 'nexthops' | 'metric'>): number {
  return r.metric ?? (routeFamily(r) === 6 ? 1024 : 0);
}

/** `route/TABLE/DESTINATION/METRIC`: how the kernel identifies a route. */
export function routeKey(
  r: Pick<RouteEntry, 'to' | 'via' | 'src' | 'nexthops' | 'metric' | 'table'>,
): string {
  return `route/${tableNumber(r.table)}/${canonicalDestination(r)}/${routeMetric(r)}`;
}

// ---- normalisation of observed objects ----

/** Resolves names of things the dumps refer to by number. */
export interface NameResolver {
  /** Link name by ifindex in this namespace. */
  linkName(index: number): string | undefined;
  /** The peer of a veth in another namespace, when it can be found. */
  foreignPeer(link: Link): { name: string; netns: string } | undefined;
}

function isMulticast(ip: string): boolean {
  const p = tryParseIp(ip);
  if (p === undefined) return false;
  return p.family === 4 ? (p.bytes[0]! & 0xf0) === 0xe0 : p.bytes[0] === 0xff;
}

/** The section kind of a kernel link (undefined for a device the plugin cannot create, e.g. a NIC or lo). */
export function entryKind(link: Link): LinkEntry['kind'] {
  if (link.kind === 'tun') return link.tun?.type === 2 ? 'tap' : 'tun';
  return link.kind !== undefined && creatableKinds.has(link.kind)
    ? (link.kind as LinkEntry['kind'])
    : undefined;
}

/** A kernel link as a section entry, with every field the plugin manages. */
export function linkEntry(link: Link, names: NameResolver): LinkEntry {
  const e: LinkEntry = { name: link.name };
  const kind = entryKind(link);
  if (kind !== undefined) e.kind = kind;
  e.state = link.up ? 'up' : 'down';
  e.mtu = link.mtu;
  if (link.address !== undefined && link.address.split(':').length === 6) e.mac = link.address;
  e.master = link.master === undefined ? null : (names.linkName(link.master) ?? null);
  if (
    (kind === 'vlan' || kind === 'macvlan' || kind === 'macvtap') &&
    link.link !== undefined &&
    link.linkNetnsId === undefined
  ) {
    const parent = names.linkName(link.link);
    if (parent !== undefined) e.parent = parent;
  }
  if (kind === 'veth' && link.link !== undefined) {
    if (link.linkNetnsId === undefined) {
      const peer = names.linkName(link.link);
      if (peer !== undefined) e.peer = peer;
    } else {
      const peer = names.foreignPeer(link);
      if (peer !== undefined) e.peer = peer;
    }
  }
  if (kind === 'bridge' && link.bridge !== undefined) {
    const b = link.bridge;
    e.bridge = {};
    if (b.stpState !== undefined) e.bridge.stp = b.stpState !== 0;
    if (b.vlanFiltering !== undefined) e.bridge.vlanFiltering = b.vlanFiltering;
    if (b.forwardDelay !== undefined) e.bridge.forwardDelay = b.forwardDelay / 100;
    if (b.priority !== undefined) e.bridge.priority = b.priority;
  }
  if (kind === 'vxlan' && link.vxlan !== undefined) {
    const v = link.vxlan;
    const vx: NonNullable<LinkEntry['vxlan']> = { id: v.id ?? 0 };
    const local = v.local ?? v.local6;
    if (local !== undefined) vx.local = local;
    const remote = v.group ?? v.group6;
    if (remote !== undefined) {
      if (isMulticast(remote)) vx.group = remote;
      else vx.remote = remote;
    }
    if (v.port !== undefined) vx.port = v.port;
    if (v.link !== undefined && v.link !== 0) {
      const dev = names.linkName(v.link);
      if (dev !== undefined) vx.dev = dev;
    }
    if (v.ttl !== undefined) vx.ttl = v.ttl;
    if (v.learning !== undefined) vx.learning = v.learning;
    e.vxlan = vx;
  }
  if ((kind === 'macvlan' || kind === 'macvtap') && link.macvlan?.mode !== undefined) {
    const mode = macvlanModeNames.get(link.macvlan.mode as 1 | 2 | 4 | 8 | 16);
    if (mode !== undefined) e.macvlan = { mode };
  }
  if (kind === 'vlan' && link.vlan?.id !== undefined) {
    e.vlan = { id: link.vlan.id, protocol: link.vlan.protocol === 0x88a8 ? '802.1ad' : '802.1Q' };
  }
  if (kind === 'bond' && link.bond?.mode !== undefined) {
    const mode = bondModeNames[link.bond.mode];
    if (mode !== undefined) {
      e.bond = { mode };
      if (link.bond.miimon !== undefined) e.bond.miimon = link.bond.miimon;
    }
  }
  if ((kind === 'tap' || kind === 'tun') && link.tun !== undefined) {
    const t: NonNullable<LinkEntry['tap']> = {};
    if (link.tun.owner !== undefined) t.owner = link.tun.owner;
    if (link.tun.group !== undefined) t.group = link.tun.group;
    if (link.tun.multiQueue !== undefined) t.multiQueue = link.tun.multiQueue;
    e.tap = t;
  }
  return e;
}

/** Addresses the kernel made by itself (loopback, SLAAC, link-local): IFA_PROTO kernel_lo/ra/ll. */
export function isKernelAddress(a: Address): boolean {
  return a.protocol === 1 || a.protocol === 2 || a.protocol === 3;
}

/** A kernel address as a section entry. */
export function addressEntry(a: Address, linkName: string): AddressEntry {
  const e: AddressEntry = { link: linkName, address: `${a.address}/${a.prefixLength}` };
  e.scope = (scopeNames.get(a.scope) as AddressEntry['scope']) ?? a.scope;
  if (a.peer !== undefined) e.peer = a.peer;
  if (a.broadcast !== undefined) e.broadcast = a.broadcast;
  if (a.family === 4 && a.label !== undefined && a.label !== linkName) e.label = a.label;
  const flags = (Object.keys(addressFlagBits) as NonNullable<AddressEntry['flags']>).filter(
    (f) => (a.flags & addressFlagBits[f]!) !== 0,
  );
  if (flags.length > 0) e.flags = flags;
  if (a.validLifetime !== LIFETIME_FOREVER) e.validLifetime = a.validLifetime;
  if (a.preferredLifetime !== LIFETIME_FOREVER) e.preferredLifetime = a.preferredLifetime;
  if (a.routePriority !== undefined && a.routePriority !== 0) e.metric = a.routePriority;
  return e;
}

/** The scope the plugin (like iproute2) gives a route that does not name one. */
export function defaultRouteScope(type: number, hasGateway: boolean): number {
  if (type === RTN.LOCAL) return RT_SCOPE.HOST;
  if (type === RTN.BROADCAST || type === RTN.MULTICAST || type === RTN.ANYCAST) return RT_SCOPE.LINK;
  if (type === RTN.UNICAST && !hasGateway) return RT_SCOPE.LINK;
  return RT_SCOPE.UNIVERSE;
}

/** Routes the full query leaves out: the local table, and routes the kernel made (kernel, ra, redirect). */
export function isManagedRoute(r: Route): boolean {
  if (r.table === RT_TABLE.LOCAL) return false;
  if (r.protocol === RTPROT.KERNEL || r.protocol === RTPROT.RA || r.protocol === RTPROT.REDIRECT)
    return false;
  return (
    routeTypeNames.has(r.type) &&
    r.type !== RTN.LOCAL &&
    r.type !== RTN.BROADCAST &&
    r.type !== RTN.MULTICAST &&
    r.type !== RTN.ANYCAST
  );
}

/** A kernel route as a section entry. */
export function routeEntry(r: Route, names: NameResolver): RouteEntry {
  const e: RouteEntry = { to: r.destination };
  if (r.gateway !== undefined) e.via = r.gateway;
  else if (r.via !== undefined) e.via = r.via;
  if (r.oif !== undefined) {
    const dev = names.linkName(r.oif);
    if (dev !== undefined) e.dev = dev;
  }
  e.metric = r.priority;
  if (r.table !== RT_TABLE.MAIN)
    e.table = r.table === RT_TABLE.LOCAL ? 'local' : r.table === RT_TABLE.DEFAULT ? 'default' : r.table;
  const hasGateway =
    e.via !== undefined || (r.nexthops?.some((h) => h.gateway !== undefined || h.via !== undefined) ?? false);
  if (r.scope !== defaultRouteScope(r.type, hasGateway))
    e.scope = (scopeNames.get(r.scope) as RouteEntry['scope']) ?? r.scope;
  if (r.type !== RTN.UNICAST) e.type = (routeTypeNames.get(r.type) as RouteEntry['type']) ?? 'unicast';
  e.protocol = (protocolNames.get(r.protocol) as RouteEntry['protocol']) ?? r.protocol;
  if (r.prefsrc !== undefined) e.src = r.prefsrc;
  if ((r.flags & RTNH_F.ONLINK) !== 0) e.onlink = true;
  if (r.nexthops !== undefined) {
    e.nexthops = r.nexthops.map((h) => {
      const n: NexthopEntry = {};
      const via = h.gateway ?? h.via;
      if (via !== undefined) n.via = via;
      const dev = names.linkName(h.ifindex);
      if (dev !== undefined) n.dev = dev;
      if (h.weight !== 1) n.weight = h.weight;
      if ((h.flags & RTNH_F.ONLINK) !== 0) n.onlink = true;
      return n;
    });
  }
  if (r.metrics?.mtu !== undefined) e.mtu = r.metrics.mtu;
  if (r.metrics?.advmss !== undefined) e.advmss = r.metrics.advmss;
  return e;
}

// ---- comparison ----

/** One difference between a declared and an observed entry. */
export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function peerIdentity(peer: LinkEntry['peer']): string | undefined {
  if (peer === undefined) return undefined;
  if (typeof peer === 'string') return peer;
  return peer.netns === undefined ? peer.name : `${peer.name}@${netnsPath(peer.netns)}`;
}

function macEq(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  try {
    return canonicalMac(a) === canonicalMac(b);
  } catch {
    return a === b;
  }
}

function ipEq(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  try {
    return canonicalIp(a) === canonicalIp(b);
  } catch {
    return a === b;
  }
}

/** Fields whose change needs the link deleted and created again. */
export const immutableLinkFields = new Set([
  'kind',
  'peer',
  'parent',
  'vxlan.id',
  'vxlan.local',
  'vxlan.remote',
  'vxlan.group',
  'vxlan.port',
  'vxlan.dev',
  'vlan.id',
  'vlan.protocol',
  'bond.mode',
  'tap.owner',
  'tap.group',
  'tap.multiQueue',
]);

/** What differs between a declared link and the observed one (only fields the declaration names). */
export function compareLink(want: LinkEntry, have: LinkEntry): FieldChange[] {
  const out: FieldChange[] = [];
  const check = (
    field: string,
    to: unknown,
    from: unknown,
    eq: (a: never, b: never) => boolean = same,
  ): void => {
    if (to === undefined) return;
    if (!eq(to as never, from as never)) out.push({ field, from: from ?? null, to });
  };
  check('kind', want.kind, have.kind);
  if (want.state !== undefined && want.state !== 'absent') check('state', want.state, have.state);
  check('mtu', want.mtu, have.mtu);
  if (want.mac !== undefined) check('mac', want.mac, have.mac, macEq);
  if (want.master !== undefined) check('master', want.master, have.master ?? null);
  check('parent', want.parent, have.parent);
  if (want.peer !== undefined && peerIdentity(want.peer) !== peerIdentity(have.peer))
    out.push({ field: 'peer', from: have.peer ?? null, to: want.peer });
  for (const block of ['bridge', 'vxlan', 'macvlan', 'vlan', 'bond', 'tap'] as const) {
    const w = want[block] as Record<string, unknown> | undefined;
    if (w === undefined) continue;
    const h = (have[block] ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(w)) {
      if (v === undefined) continue;
      const eq =
        block === 'vxlan' && (k === 'local' || k === 'remote' || k === 'group') ? (ipEq as never) : same;
      check(`${block}.${k}`, v, h[k], eq);
    }
  }
  return out;
}

function lifetimeClass(v: number | 'forever' | undefined): string {
  return v === undefined || v === 'forever' ? 'forever' : 'finite';
}

/** What differs between a declared address and the observed one. */
export function compareAddress(want: AddressEntry, have: AddressEntry): FieldChange[] {
  const out: FieldChange[] = [];
  const push = (field: string, from: unknown, to: unknown): void => {
    out.push({ field, from: from ?? null, to });
  };
  if (want.scope !== undefined && scopeNumber(want.scope) !== scopeNumber(have.scope ?? 0))
    push('scope', have.scope, want.scope);
  if (want.broadcast !== undefined && !ipEq(want.broadcast, have.broadcast))
    push('broadcast', have.broadcast, want.broadcast);
  if (want.label !== undefined && want.label !== (have.label ?? want.link))
    push('label', have.label, want.label);
  if (want.peer !== undefined && !ipEq(want.peer, have.peer)) push('peer', have.peer, want.peer);
  if (want.flags !== undefined && !same([...want.flags].sort(), [...(have.flags ?? [])].sort()))
    push('flags', have.flags ?? [], want.flags);
  if (
    want.validLifetime !== undefined &&
    lifetimeClass(want.validLifetime) !== lifetimeClass(have.validLifetime)
  )
    push('validLifetime', have.validLifetime ?? 'forever', want.validLifetime);
  if (
    want.preferredLifetime !== undefined &&
    lifetimeClass(want.preferredLifetime) !== lifetimeClass(have.preferredLifetime)
  )
    push('preferredLifetime', have.preferredLifetime ?? 'forever', want.preferredLifetime);
  if (want.metric !== undefined && want.metric !== (have.metric ?? 0))
    push('metric', have.metric ?? 0, want.metric);
  return out;
}

/** Whether observed next hops match declared ones (as a set, by gateway; `dev` only when declared). */
function nexthopsMatch(want: readonly NexthopEntry[], have: readonly NexthopEntry[] | undefined): boolean {
  if (have === undefined || have.length !== want.length) return false;
  const key = (h: NexthopEntry): string => (h.via === undefined ? `dev:${h.dev ?? ''}` : canonicalIp(h.via));
  const byKey = new Map(have.map((h) => [key(h), h]));
  return want.every((w) => {
    const h = byKey.get(key(w));
    return (
      h !== undefined &&
      (w.dev === undefined || w.dev === h.dev) &&
      (w.weight ?? 1) === (h.weight ?? 1) &&
      (w.onlink === true) === (h.onlink === true)
    );
  });
}

/** What differs between a declared route and the observed one. */
export function compareRoute(want: RouteEntry, have: RouteEntry): FieldChange[] {
  const out: FieldChange[] = [];
  const push = (field: string, from: unknown, to: unknown): void => {
    out.push({ field, from: from ?? null, to });
  };
  if (want.via !== undefined && !ipEq(want.via, have.via)) push('via', have.via, want.via);
  if (want.dev !== undefined && want.dev !== have.dev) push('dev', have.dev, want.dev);
  const wantType = want.type ?? 'unicast';
  if (wantType !== (have.type ?? 'unicast')) push('type', have.type ?? 'unicast', wantType);
  if (want.scope !== undefined) {
    const hasGateway = have.via !== undefined || (have.nexthops?.some((h) => h.via !== undefined) ?? false);
    const haveScope =
      have.scope ?? defaultRouteScope(routeTypeByName[have.type ?? 'unicast'] ?? 1, hasGateway);
    if (scopeNumber(want.scope) !== scopeNumber(haveScope)) push('scope', have.scope, want.scope);
  }
  if (want.protocol !== undefined && protocolNumber(want.protocol) !== protocolNumber(have.protocol ?? 0))
    push('protocol', have.protocol, want.protocol);
  if (want.src !== undefined && !ipEq(want.src, have.src)) push('src', have.src, want.src);
  if (want.onlink !== undefined && want.onlink !== (have.onlink === true))
    push('onlink', have.onlink ?? false, want.onlink);
  if (want.nexthops !== undefined && !nexthopsMatch(want.nexthops, have.nexthops))
    push('nexthops', have.nexthops, want.nexthops);
  if (want.mtu !== undefined && want.mtu !== have.mtu) push('mtu', have.mtu, want.mtu);
  if (want.advmss !== undefined && want.advmss !== have.advmss) push('advmss', have.advmss, want.advmss);
  return out;
}

/** Whether an entry marks something absent (declared or observed). */
export function isAbsent(entry: { state?: string | undefined }): boolean {
  return entry.state === 'absent';
}

/** An empty section with the given parts. */
export function section(
  links: LinkEntry[] | undefined,
  addresses: AddressEntry[] | undefined,
  routes: RouteEntry[] | undefined,
): NetworkSection {
  const out: NetworkSection = {};
  if (links !== undefined) out.links = links;
  if (addresses !== undefined) out.addresses = addresses;
  if (routes !== undefined) out.routes = routes;
  return out;
}
