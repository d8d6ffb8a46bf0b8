/**
 * Attribute sets and headers of rtnetlink messages (links, addresses, routes, neighbours), as
 * data for the generic codec. Names are the keys of decoded objects and of request objects.
 */
import type { AttributeSet } from './codec.js';
import { StructDef, defineAttributes, rd, type Writer } from './codec.js';
import { IFA, IFLA, NDA, RTA, RTAX } from './constants.js';
import { formatIp, parseIp } from './ip.js';
import type { OperState } from './types.js';

/** struct ifinfomsg. */
export const ifinfomsg = new StructDef('ifinfomsg', [
  ['family', 'u8'],
  ['pad', 'pad8'],
  ['type', 'u16'],
  ['index', 's32'],
  ['flags', 'u32'],
  ['change', 'u32'],
]);
/** ifinfomsg as decoded into a Link (family and change are not kept). */
export const ifinfomsgDecode = new StructDef('ifinfomsg', [
  ['family', 'pad8'],
  ['pad', 'pad8'],
  ['type', 'u16'],
  ['index', 's32'],
  ['flags', 'u32'],
]);

/** struct ifaddrmsg. */
export const ifaddrmsg = new StructDef('ifaddrmsg', [
  ['family', 'u8'],
  ['prefixLength', 'u8'],
  ['flags', 'u8'],
  ['scope', 'u8'],
  ['index', 'u32'],
]);

/** struct rtmsg. */
export const rtmsg = new StructDef('rtmsg', [
  ['family', 'u8'],
  ['dstLength', 'u8'],
  ['srcLength', 'u8'],
  ['tos', 'u8'],
  ['table', 'u8'],
  ['protocol', 'u8'],
  ['scope', 'u8'],
  ['type', 'u8'],
  ['flags', 'u32'],
]);

/** struct ndmsg. */
export const ndmsg = new StructDef('ndmsg', [
  ['family', 'u8'],
  ['pad1', 'pad8'],
  ['pad2', 'pad16'],
  ['index', 's32'],
  ['state', 'u16'],
  ['flags', 'u8'],
  ['type', 'u8'],
]);

/** struct rtgenmsg (RTM_GETNSID). */
export const rtgenmsg = new StructDef('rtgenmsg', [['family', 'u8']]);

/** struct ifa_cacheinfo. */
export const ifaCacheinfo = new StructDef('ifa_cacheinfo', [
  ['preferred', 'u32'],
  ['valid', 'u32'],
  ['created', 'u32'],
  ['updated', 'u32'],
]);

/** struct nda_cacheinfo. */
export const ndaCacheinfo = new StructDef('nda_cacheinfo', [
  ['confirmed', 'u32'],
  ['used', 'u32'],
  ['updated', 'u32'],
  ['refcnt', 'u32'],
]);

/** IFLA_INFO_DATA of bridges. */
export const bridgeAttrs: AttributeSet = defineAttributes('bridge', {
  forwardDelay: { type: 1, kind: 'u32' },
  helloTime: { type: 2, kind: 'u32' },
  maxAge: { type: 3, kind: 'u32' },
  ageingTime: { type: 4, kind: 'u32' },
  stpState: { type: 5, kind: 'u32' },
  priority: { type: 6, kind: 'u16' },
  vlanFiltering: { type: 7, kind: 'bool' },
  vlanProtocol: { type: 8, kind: 'be16' },
  mcastSnooping: { type: 23, kind: 'bool' },
  vlanDefaultPvid: { type: 39, kind: 'u16' },
});

/** IFLA_INFO_SLAVE_DATA of bridge ports. */
export const bridgePortAttrs: AttributeSet = defineAttributes('bridge_slave', {
  state: { type: 1, kind: 'u8' },
  priority: { type: 2, kind: 'u16' },
  cost: { type: 3, kind: 'u32' },
  mode: { type: 4, kind: 'bool' },
  guard: { type: 5, kind: 'bool' },
  protect: { type: 6, kind: 'bool' },
  fastLeave: { type: 7, kind: 'bool' },
  learning: { type: 8, kind: 'bool' },
  unicastFlood: { type: 9, kind: 'bool' },
  isolated: { type: 33, kind: 'bool' },
});

/** IFLA_INFO_DATA of vxlan. */
export const vxlanAttrs: AttributeSet = defineAttributes('vxlan', {
  id: { type: 1, kind: 'u32' },
  group: { type: 2, kind: 'ip' },
  link: { type: 3, kind: 'u32' },
  local: { type: 4, kind: 'ip' },
  ttl: { type: 5, kind: 'u8' },
  tos: { type: 6, kind: 'u8' },
  learning: { type: 7, kind: 'bool' },
  ageing: { type: 8, kind: 'u32' },
  limit: { type: 9, kind: 'u32' },
  port: { type: 15, kind: 'be16' },
  group6: { type: 16, kind: 'ip' },
  local6: { type: 17, kind: 'ip' },
  udpCsum: { type: 18, kind: 'bool' },
  collectMetadata: { type: 25, kind: 'bool' },
});

/** IFLA_INFO_DATA of veth: the peer is an ifinfomsg followed by link attributes. */
export const vethAttrs: AttributeSet = defineAttributes('veth', {
  peer: { type: 1, kind: 'message', header: ifinfomsg, set: () => linkAttrs },
});

/** IFLA_INFO_DATA of macvlan and macvtap. */
export const macvlanAttrs: AttributeSet = defineAttributes('macvlan', {
  mode: { type: 1, kind: 'u32' },
  flags: { type: 2, kind: 'u16' },
});

/** IFLA_INFO_DATA of vlan. */
export const vlanAttrs: AttributeSet = defineAttributes('vlan', {
  id: { type: 1, kind: 'u16' },
  flags: {
    type: 2,
    kind: 'struct',
    struct: new StructDef('ifla_vlan_flags', [
      ['flags', 'u32'],
      ['mask', 'u32'],
    ]),
  },
  protocol: { type: 5, kind: 'be16' },
});

/** IFLA_INFO_DATA of bond. */
export const bondAttrs: AttributeSet = defineAttributes('bond', {
  mode: { type: 1, kind: 'u8' },
  activeSlave: { type: 2, kind: 'u32' },
  miimon: { type: 3, kind: 'u32' },
  updelay: { type: 4, kind: 'u32' },
  downdelay: { type: 5, kind: 'u32' },
  xmitHashPolicy: { type: 14, kind: 'u8' },
  adLacpRate: { type: 21, kind: 'u8' },
});

/** IFLA_INFO_DATA of tun/tap (read only: they are created through /dev/net/tun). */
export const tunAttrs: AttributeSet = defineAttributes('tun', {
  owner: { type: 1, kind: 'u32' },
  group: { type: 2, kind: 'u32' },
  type: { type: 3, kind: 'u8' },
  pi: { type: 4, kind: 'bool' },
  vnetHdr: { type: 5, kind: 'bool' },
  persist: { type: 6, kind: 'bool' },
  multiQueue: { type: 7, kind: 'bool' },
  numQueues: { type: 8, kind: 'u32' },
  numDisabledQueues: { type: 9, kind: 'u32' },
});

/** The kind-specific attribute sets IFLA_INFO_DATA is decoded and encoded with, by IFLA_INFO_KIND. */
export const kindAttrs: Readonly<Record<string, () => AttributeSet>> = {
  bridge: () => bridgeAttrs,
  vxlan: () => vxlanAttrs,
  veth: () => vethAttrs,
  macvlan: () => macvlanAttrs,
  macvtap: () => macvlanAttrs,
  vlan: () => vlanAttrs,
  bond: () => bondAttrs,
  tun: () => tunAttrs,
};

/** The kind-specific port attribute sets IFLA_INFO_SLAVE_DATA is decoded with, by IFLA_INFO_SLAVE_KIND. */
export const slaveKindAttrs: Readonly<Record<string, () => AttributeSet>> = {
  bridge: () => bridgePortAttrs,
};

/** IFLA_LINKINFO: kind, its data (by kind), the port kind and its data (by port kind). */
export const linkInfoAttrs: AttributeSet = defineAttributes('linkinfo', {
  kind: { type: 1, kind: 'string' },
  data: { type: 2, kind: 'select', by: 'kind', sets: kindAttrs },
  slaveKind: { type: 4, kind: 'string' },
  slaveData: { type: 5, kind: 'select', by: 'slaveKind', sets: slaveKindAttrs },
});

/** Where each kind's IFLA_INFO_DATA lands on a decoded link (`link.vxlan`, `link.bridge` ...). */
export const kindKeys: Readonly<Record<string, string>> = {
  bridge: 'bridge',
  vxlan: 'vxlan',
  veth: 'veth',
  macvlan: 'macvlan',
  macvtap: 'macvlan',
  vlan: 'vlan',
  bond: 'bond',
  tun: 'tun',
};

/**
 * IFLA_LINKINFO on the wire is a nested set; decoded links carry its parts flat (`kind`,
 * `slaveKind`, and the data under `kindKeys[kind]`, the port data under `bridgePort`).
 */
const linkInfoFlat = {
  kind: 'custom' as const,
  nested: true,
  decode(buf: Buffer, start: number, end: number, parent: Record<string, unknown>): undefined {
    const info = linkInfoAttrs.decode(buf, start, end);
    if (typeof info.kind === 'string') {
      parent.kind = info.kind;
      const key = kindKeys[info.kind];
      if (key !== undefined && info.data !== undefined) parent[key] = info.data;
    }
    if (typeof info.slaveKind === 'string') {
      parent.slaveKind = info.slaveKind;
      if (info.slaveKind === 'bridge' && info.slaveData !== undefined) parent.bridgePort = info.slaveData;
    }
    return undefined;
  },
  encode(value: unknown, w: Writer): void {
    linkInfoAttrs.encode(value as Record<string, unknown>, w);
  },
};

const operStates: readonly OperState[] = [
  'unknown',
  'notpresent',
  'down',
  'lowerlayerdown',
  'testing',
  'dormant',
  'up',
];

/** IFLA_OPERSTATE as its RFC 2863 name. */
const operStateAttr = {
  kind: 'custom' as const,
  decode(buf: Buffer, start: number, end: number): OperState | undefined {
    return end > start ? (operStates[buf[start]!] ?? 'unknown') : undefined;
  },
  encode(value: unknown, w: Writer): void {
    w.u8(Math.max(0, operStates.indexOf(value as OperState)));
  },
};

/** IFLA_* link attributes. */
export const linkAttrs: AttributeSet = defineAttributes('link', {
  address: { type: IFLA.ADDRESS, kind: 'mac' },
  broadcast: { type: IFLA.BROADCAST, kind: 'mac' },
  name: { type: IFLA.IFNAME, kind: 'string' },
  mtu: { type: IFLA.MTU, kind: 'u32' },
  link: { type: IFLA.LINK, kind: 'u32' },
  qdisc: { type: IFLA.QDISC, kind: 'string' },
  master: { type: IFLA.MASTER, kind: 'u32' },
  txQueueLength: { type: IFLA.TXQLEN, kind: 'u32' },
  operState: { type: IFLA.OPERSTATE, ...operStateAttr },
  linkMode: { type: IFLA.LINKMODE, kind: 'u8' },
  linkinfo: { type: IFLA.LINKINFO, ...linkInfoFlat },
  alias: { type: IFLA.IFALIAS, kind: 'string' },
  group: { type: IFLA.GROUP, kind: 'u32' },
  netnsFd: { type: IFLA.NET_NS_FD, kind: 'u32' },
  netnsPid: { type: IFLA.NET_NS_PID, kind: 'u32' },
  extMask: { type: IFLA.EXT_MASK, kind: 'u32' },
  promiscuity: { type: IFLA.PROMISCUITY, kind: 'u32' },
  txQueues: { type: IFLA.NUM_TX_QUEUES, kind: 'u32' },
  rxQueues: { type: IFLA.NUM_RX_QUEUES, kind: 'u32' },
  carrier: { type: IFLA.CARRIER, kind: 'bool' },
  carrierChanges: { type: IFLA.CARRIER_CHANGES, kind: 'u32' },
  linkNetnsId: { type: IFLA.LINK_NETNSID, kind: 's32' },
  protoDown: { type: IFLA.PROTO_DOWN, kind: 'bool' },
  targetNetnsId: { type: IFLA.TARGET_NETNSID, kind: 's32' },
  minMtu: { type: IFLA.MIN_MTU, kind: 'u32' },
  maxMtu: { type: IFLA.MAX_MTU, kind: 'u32' },
  permAddress: { type: IFLA.PERM_ADDRESS, kind: 'mac' },
  parentDevName: { type: IFLA.PARENT_DEV_NAME, kind: 'string' },
});

/** IFA_* address attributes. */
export const addressAttrs: AttributeSet = defineAttributes('address', {
  address: { type: IFA.ADDRESS, kind: 'ip' },
  local: { type: IFA.LOCAL, kind: 'ip' },
  label: { type: IFA.LABEL, kind: 'string' },
  broadcast: { type: IFA.BROADCAST, kind: 'ip' },
  anycast: { type: IFA.ANYCAST, kind: 'ip' },
  cacheinfo: { type: IFA.CACHEINFO, kind: 'struct', struct: ifaCacheinfo },
  multicast: { type: IFA.MULTICAST, kind: 'ip' },
  flags32: { type: IFA.FLAGS, kind: 'u32' },
  routePriority: { type: IFA.RT_PRIORITY, kind: 'u32' },
  protocol: { type: IFA.PROTO, kind: 'u8' },
});

/** RTA_METRICS. */
export const metricsAttrs: AttributeSet = defineAttributes('metrics', {
  lock: { type: RTAX.LOCK, kind: 'u32' },
  mtu: { type: RTAX.MTU, kind: 'u32' },
  window: { type: RTAX.WINDOW, kind: 'u32' },
  rtt: { type: RTAX.RTT, kind: 'u32' },
  rttvar: { type: RTAX.RTTVAR, kind: 'u32' },
  ssthresh: { type: RTAX.SSTHRESH, kind: 'u32' },
  cwnd: { type: RTAX.CWND, kind: 'u32' },
  advmss: { type: RTAX.ADVMSS, kind: 'u32' },
  reordering: { type: RTAX.REORDERING, kind: 'u32' },
  hoplimit: { type: RTAX.HOPLIMIT, kind: 'u32' },
  initcwnd: { type: RTAX.INITCWND, kind: 'u32' },
  features: { type: RTAX.FEATURES, kind: 'u32' },
  rtoMin: { type: RTAX.RTO_MIN, kind: 'u32' },
  initrwnd: { type: RTAX.INITRWND, kind: 'u32' },
  quickack: { type: RTAX.QUICKACK, kind: 'u32' },
  congestionControl: { type: RTAX.CC_ALGO, kind: 'string' },
  fastopenNoCookie: { type: RTAX.FASTOPEN_NO_COOKIE, kind: 'u32' },
});

/** RTA_VIA: `struct rtvia { family u16; addr[] }`. */
const viaAttr = {
  kind: 'custom' as const,
  decode(buf: Buffer, start: number, end: number): string | undefined {
    return end - start > 2 ? formatIp(buf, start + 2, end - start - 2) : undefined;
  },
  encode(value: unknown, w: Writer): void {
    const ip = parseIp(value as string);
    w.u16(ip.family === 4 ? 2 : 10);
    w.bytes(ip.bytes);
  },
};

/** One next hop of a multipath route, as decoded. */
export interface RawNexthop {
  flags: number;
  weight: number;
  ifindex: number;
  gateway?: string;
  via?: string;
}

const nexthopAttrs = defineAttributes('nexthop', {
  gateway: { type: RTA.GATEWAY, kind: 'ip' },
  via: { type: RTA.VIA, ...viaAttr },
});

/** RTA_MULTIPATH: `struct rtnexthop { len u16; flags u8; hops u8; ifindex s32 }` each followed by attributes. */
const multipathAttr = {
  kind: 'custom' as const,
  decode(buf: Buffer, start: number, end: number): RawNexthop[] {
    const out: RawNexthop[] = [];
    let off = start;
    while (off + 8 <= end) {
      const len = rd.u16(buf, off);
      if (len < 8 || off + len > end) break;
      const hop: RawNexthop = {
        flags: buf[off + 2]!,
        weight: buf[off + 3]! + 1,
        ifindex: rd.s32(buf, off + 4),
      };
      nexthopAttrs.decode(buf, off + 8, off + len, hop as unknown as Record<string, unknown>);
      out.push(hop);
      off += (len + 3) & ~3;
    }
    return out;
  },
  encode(value: unknown, w: Writer): void {
    for (const hop of value as readonly RawNexthop[]) {
      w.align();
      const start = w.pos;
      w.u16(0);
      w.u8(hop.flags);
      w.u8(Math.max(0, Math.min(255, hop.weight - 1)));
      w.s32(hop.ifindex);
      nexthopAttrs.encode(hop as unknown as Record<string, unknown>, w);
      w.patchU16(start, w.pos - start);
      w.align();
    }
  },
};

/** RTA_* route attributes. */
export const routeAttrs: AttributeSet = defineAttributes('route', {
  dst: { type: RTA.DST, kind: 'ip' },
  src: { type: RTA.SRC, kind: 'ip' },
  iif: { type: RTA.IIF, kind: 'u32' },
  oif: { type: RTA.OIF, kind: 'u32' },
  gateway: { type: RTA.GATEWAY, kind: 'ip' },
  priority: { type: RTA.PRIORITY, kind: 'u32' },
  prefsrc: { type: RTA.PREFSRC, kind: 'ip' },
  metrics: { type: RTA.METRICS, kind: 'nested', set: () => metricsAttrs },
  multipath: { type: RTA.MULTIPATH, ...multipathAttr },
  flow: { type: RTA.FLOW, kind: 'u32' },
  table32: { type: RTA.TABLE, kind: 'u32' },
  mark: { type: RTA.MARK, kind: 'u32' },
  via: { type: RTA.VIA, ...viaAttr },
  pref: { type: RTA.PREF, kind: 'u8' },
  encapType: { type: RTA.ENCAP_TYPE, kind: 'u16' },
  uid: { type: RTA.UID, kind: 'u32' },
  nhId: { type: RTA.NH_ID, kind: 'u32' },
});

/** The prefix lengths of the route being decoded (from its rtmsg), for {@link routeFields}. */
export const routeDecodeState = { dstLength: 0, srcLength: 0 };

/**
 * RTA_* decoded straight into a `Route`: RTA_DST and RTA_SRC become `destination` and `source`
 * with their prefix lengths, RTA_TABLE overrides the header's table, RTA_MULTIPATH becomes
 * `nexthops`. Only for decoding (requests are encoded with {@link routeAttrs}).
 */
export const routeFields: AttributeSet = defineAttributes('route-fields', {
  destination: {
    type: RTA.DST,
    kind: 'custom',
    decode: (buf, start, end, parent) => {
      parent.destination = `${formatIp(buf, start, end - start)}/${routeDecodeState.dstLength}`;
      return undefined;
    },
    encode: () => undefined,
  },
  source: {
    type: RTA.SRC,
    kind: 'custom',
    decode: (buf, start, end, parent) => {
      parent.source = `${formatIp(buf, start, end - start)}/${routeDecodeState.srcLength}`;
      return undefined;
    },
    encode: () => undefined,
  },
  iif: { type: RTA.IIF, kind: 'u32' },
  oif: { type: RTA.OIF, kind: 'u32' },
  gateway: { type: RTA.GATEWAY, kind: 'ip' },
  priority: { type: RTA.PRIORITY, kind: 'u32' },
  prefsrc: { type: RTA.PREFSRC, kind: 'ip' },
  metrics: { type: RTA.METRICS, kind: 'nested', set: () => metricsAttrs },
  nexthops: { type: RTA.MULTIPATH, ...multipathAttr },
  flow: { type: RTA.FLOW, kind: 'u32' },
  table: { type: RTA.TABLE, kind: 'u32' },
  mark: { type: RTA.MARK, kind: 'u32' },
  via: { type: RTA.VIA, ...viaAttr },
  pref: { type: RTA.PREF, kind: 'u8' },
  encapType: { type: RTA.ENCAP_TYPE, kind: 'u16' },
  nhId: { type: RTA.NH_ID, kind: 'u32' },
});

/** NDA_* neighbour attributes. */
export const neighbourAttrs: AttributeSet = defineAttributes('neighbour', {
  destination: { type: NDA.DST, kind: 'ip' },
  lladdr: { type: NDA.LLADDR, kind: 'mac' },
  cacheinfo: { type: NDA.CACHEINFO, kind: 'struct', struct: ndaCacheinfo },
  probes: { type: NDA.PROBES, kind: 'u32' },
  vlan: { type: NDA.VLAN, kind: 'u16' },
  port: { type: NDA.PORT, kind: 'be16' },
  vni: { type: NDA.VNI, kind: 'u32' },
  ifindex: { type: NDA.IFINDEX, kind: 'u32' },
  master: { type: NDA.MASTER, kind: 'u32' },
  linkNetnsId: { type: NDA.LINK_NETNSID, kind: 's32' },
  protocol: { type: NDA.PROTOCOL, kind: 'u8' },
});

/** NETNSA_* attributes. */
export const nsidAttrs: AttributeSet = defineAttributes('nsid', {
  nsid: { type: 1, kind: 's32' },
  pid: { type: 2, kind: 'u32' },
  fd: { type: 3, kind: 'u32' },
  targetNsid: { type: 4, kind: 's32' },
  currentNsid: { type: 5, kind: 's32' },
});
