/** The typed objects of the rtnetlink client: what dumps return and what requests take. */

/** A link by name (`br0`) or interface index (`7`). */
export type LinkRef = string | number;

/** RFC 2863 operational state (IFLA_OPERSTATE). */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';

/** Bridge options (IFLA_BR_*); times are in hundredths of a second, as the kernel reports them. */
export interface BridgeInfo {
  forwardDelay?: number;
  helloTime?: number;
  maxAge?: number;
  ageingTime?: number;
  /** 0: off, 1: kernel STP, 2: user-space STP. */
  stpState?: number;
  priority?: number;
  vlanFiltering?: boolean;
  /** 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  vlanProtocol?: number;
  mcastSnooping?: boolean;
  vlanDefaultPvid?: number;
}

/** Bridge port options (IFLA_BRPORT_*) of a link enslaved to a bridge. */
export interface BridgePortInfo {
  /** 0 disabled, 1 listening, 2 learning, 3 forwarding, 4 blocking. */
  state?: number;
  priority?: number;
  cost?: number;
  mode?: boolean;
  guard?: boolean;
  protect?: boolean;
  fastLeave?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  isolated?: boolean;
}

/** VXLAN options (IFLA_VXLAN_*) as the kernel reports them. */
export interface VxlanInfo {
  id?: number;
  /** Remote (unicast) or multicast group, IPv4. */
  group?: string;
  /** Remote (unicast) or multicast group, IPv6. */
  group6?: string;
  /** Underlying device (ifindex). */
  link?: number;
  local?: string;
  local6?: string;
  ttl?: number;
  tos?: number;
  learning?: boolean;
  ageing?: number;
  limit?: number;
  /** Destination UDP port. */
  port?: number;
  udpCsum?: boolean;
  collectMetadata?: boolean;
}

/** veth has no options of its own in dumps; the peer is the link `link` (ifindex) points to. */
export type VethInfo = Record<string, never>;

/** macvlan/macvtap options. */
export interface MacvlanInfo {
  /** MACVLAN_MODE_*: 1 private, 2 vepa, 4 bridge, 8 passthru, 16 source. */
  mode?: number;
  flags?: number;
}

/** VLAN options. */
export interface VlanInfo {
  id?: number;
  /** 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  protocol?: number;
  flags?: { flags: number; mask: number };
}

/** Bond options. */
export interface BondInfo {
  /** 0 balance-rr, 1 active-backup, 2 balance-xor, 3 broadcast, 4 802.3ad, 5 balance-tlb, 6 balance-alb. */
  mode?: number;
  activeSlave?: number;
  miimon?: number;
  updelay?: number;
  downdelay?: number;
  xmitHashPolicy?: number;
  adLacpRate?: number;
}

/** tun/tap options. */
export interface TunInfo {
  owner?: number;
  group?: number;
  /** 1: tun, 2: tap. */
  type?: number;
  pi?: boolean;
  vnetHdr?: boolean;
  persist?: boolean;
  multiQueue?: boolean;
  numQueues?: number;
  numDisabledQueues?: number;
}

/** A network interface, as a link dump reports it. */
export interface Link {
  /** Interface index. */
  index: number;
  name: string;
  /** ARPHRD_* hardware type (1: Ethernet, 772: loopback). */
  type: number;
  /** IFF_* flags. */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Carrier present (IFF_LOWER_UP). */
  lowerUp: boolean;
  operState: OperState;
  mtu: number;
  /** Hardware address, lowercase hex with colons. */
  address?: string;
  broadcast?: string;
  permAddress?: string;
  /** The master (bridge, bond ...) by ifindex. */
  master?: number;
  /** The parent/peer link by ifindex (IFLA_LINK): a vlan's lower device, a veth's peer. */
  link?: number;
  /** The namespace of `link` when it is another one (its nsid as seen from here). */
  linkNetnsId?: number;
  group?: number;
  txQueueLength?: number;
  alias?: string;
  minMtu?: number;
  maxMtu?: number;
  carrier?: boolean;
  promiscuity?: number;
  qdisc?: string;
  parentDevName?: string;
  /** IFLA_INFO_KIND: bridge, veth, vxlan, macvlan, tun (also for tap), vlan, bond, dummy ... */
  kind?: string;
  /** The kind of the master this link is a port of (IFLA_INFO_SLAVE_KIND), e.g. bridge. */
  slaveKind?: string;
  bridge?: BridgeInfo;
  vxlan?: VxlanInfo;
  veth?: VethInfo;
  macvlan?: MacvlanInfo;
  vlan?: VlanInfo;
  bond?: BondInfo;
  tun?: TunInfo;
  bridgePort?: BridgePortInfo;
}

/** macvlan modes by name. */
export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';

/** bond modes by name. */
export type BondMode =
  'balance-rr' | 'active-backup' | 'balance-xor' | 'broadcast' | '802.3ad' | 'balance-tlb' | 'balance-alb';

/** VXLAN options of a create or set request. */
export interface VxlanOptions {
  /** VNI (0 – 16777215). Required on create. */
  id?: number;
  /** Local (source) address, IPv4 or IPv6. */
  local?: string;
  /** Unicast remote, IPv4 or IPv6. */
  remote?: string;
  /** Multicast group, IPv4 or IPv6 (needs `dev`). */
  group?: string;
  /** Destination UDP port (default: 4789, the IANA port). */
  port?: number;
  /** Underlying device. */
  dev?: LinkRef;
  ttl?: number;
  tos?: number;
  learning?: boolean;
  ageing?: number;
  udpCsum?: boolean;
}

/** The other end of a veth pair. */
export interface VethPeerRequest {
  name: string;
  /** Create the peer in this namespace (a name under /run/netns or a path). */
  netns?: string;
  mtu?: number;
  address?: string;
  up?: boolean;
}

/** tun/tap options of a create request. */
export interface TunOptions {
  /** Owner uid. */
  owner?: number;
  /** Owner gid. */
  group?: number;
  multiQueue?: boolean;
  vnetHdr?: boolean;
  /** Prepend packet information (default false: IFF_NO_PI). */
  pi?: boolean;
}

/** Kind-specific options that can also be changed after creation. */
export interface LinkKindOptions {
  bridge?: BridgeInfo;
  vxlan?: VxlanOptions;
  macvlan?: { mode?: MacvlanMode | number };
  vlan?: { id?: number; protocol?: '802.1Q' | '802.1ad' | number };
  bond?: { mode?: BondMode | number; miimon?: number; updelay?: number; downdelay?: number };
  bridgePort?: BridgePortInfo;
}

/** What {@link Rtnetlink.createLink} takes. */
export interface CreateLinkRequest extends LinkKindOptions {
  name: string;
  /** bridge, veth, vxlan, macvlan, macvtap, vlan, bond, dummy, ifb, tap, tun, or another kind the kernel knows. */
  kind: string;
  mtu?: number;
  /** Hardware address. */
  address?: string;
  master?: LinkRef;
  /** The lower device (vlan, macvlan) — IFLA_LINK. */
  parent?: LinkRef;
  /** Bring it up once created. */
  up?: boolean;
  txQueueLength?: number;
  group?: number;
  alias?: string;
  /** Create it in this namespace instead (a name under /run/netns or a path). */
  netns?: string;
  /** veth: the other end. */
  peer?: VethPeerRequest;
  /** tap/tun options. */
  tun?: TunOptions;
}

/** What {@link Rtnetlink.setLink} takes; only the fields given are changed. */
export interface SetLinkRequest extends LinkKindOptions {
  /** Rename. */
  name?: string;
  mtu?: number;
  address?: string;
  /** Enslave to this link, or release with null. */
  master?: LinkRef | null;
  up?: boolean;
  txQueueLength?: number;
  group?: number;
  alias?: string;
  /** Move the link to this namespace (a name under /run/netns or a path). */
  netns?: string;
}

/** Filter of {@link Rtnetlink.listLinks} (done by the kernel). */
export interface LinkFilter {
  kind?: string;
  master?: LinkRef;
}

/** `validLifetime` / `preferredLifetime` value meaning "forever". */
export const LIFETIME_FOREVER = 0xffffffff;

/** An interface address. */
export interface Address {
  family: 4 | 6;
  /** The interface index. */
  index: number;
  /** The address (IFA_LOCAL, or IFA_ADDRESS when there is no local). */
  address: string;
  prefixLength: number;
  /** The point-to-point peer, when IFA_ADDRESS differs from IFA_LOCAL. */
  peer?: string;
  broadcast?: string;
  anycast?: string;
  label?: string;
  /** IFA_F_* flags (32 bits). */
  flags: number;
  /** RT_SCOPE_*: 0 global, 200 site, 253 link, 254 host. */
  scope: number;
  /** Seconds left, or {@link LIFETIME_FOREVER}. */
  validLifetime: number;
  /** Seconds left, or {@link LIFETIME_FOREVER}. */
  preferredLifetime: number;
  /** Metric of the prefix route (IFA_RT_PRIORITY). */
  routePriority?: number;
  protocol?: number;
}

/** What {@link Rtnetlink.addAddress} takes. */
export interface AddressRequest {
  link: LinkRef;
  /** `10.0.0.1/24`, `fd00::1/64`; a bare address gets /32 or /128. */
  address: string;
  peer?: string;
  broadcast?: string;
  label?: string;
  /** RT_SCOPE_* number or name (default: host for 127.0.0.0/8, else global). */
  scope?: number | 'global' | 'site' | 'link' | 'host';
  /** IFA_F_* flags (e.g. IFA_F.NODAD | IFA_F.NOPREFIXROUTE). */
  flags?: number;
  /** Seconds, or {@link LIFETIME_FOREVER} (default forever). */
  validLifetime?: number;
  preferredLifetime?: number;
  /** Metric of the prefix route (IFA_RT_PRIORITY). */
  metric?: number;
  protocol?: number;
}

/** Filter of {@link Rtnetlink.listAddresses}. */
export interface AddressFilter {
  family?: 4 | 6;
  link?: LinkRef;
}

/** Route metrics (RTA_METRICS). */
export interface RouteMetrics {
  lock?: number;
  mtu?: number;
  window?: number;
  rtt?: number;
  rttvar?: number;
  ssthresh?: number;
  cwnd?: number;
  advmss?: number;
  reordering?: number;
  hoplimit?: number;
  initcwnd?: number;
  features?: number;
  rtoMin?: number;
  initrwnd?: number;
  quickack?: number;
  congestionControl?: string;
  fastopenNoCookie?: number;
}

/** One next hop of a multipath route. */
export interface Nexthop {
  /** Outgoing interface index. */
  ifindex: number;
  /** 1 – 256. */
  weight: number;
  /** RTNH_F_* flags. */
  flags: number;
  gateway?: string;
  /** A gateway of the other family (RTA_VIA). */
  via?: string;
}

/** A route. */
export interface Route {
  family: 4 | 6;
  /** Destination prefix, e.g. `10.0.0.0/24`, `0.0.0.0/0`, `::/0`. */
  destination: string;
  /** Source prefix (IPv6 source routing), when set. */
  source?: string;
  tos: number;
  /** Routing table id (254 main, 255 local). */
  table: number;
  /** RTPROT_* (2 kernel, 3 boot, 4 static ...). */
  protocol: number;
  /** RT_SCOPE_*. */
  scope: number;
  /** RTN_* (1 unicast, 2 local, 6 blackhole ...). */
  type: number;
  /** RTM_F_* and RTNH_F_* flags. */
  flags: number;
  /** The metric (RTA_PRIORITY); 0 when absent. */
  priority: number;
  gateway?: string;
  via?: string;
  /** Outgoing interface index. */
  oif?: number;
  iif?: number;
  /** Preferred source address. */
  prefsrc?: string;
  metrics?: RouteMetrics;
  nexthops?: Nexthop[];
  /** IPv6 router preference. */
  pref?: number;
  mark?: number;
  /** Routing realm (RTA_FLOW). */
  flow?: number;
  /** Lightweight tunnel encapsulation type (RTA_ENCAP_TYPE). */
  encapType?: number;
  /** The nexthop object this route uses (RTA_NH_ID). */
  nhId?: number;
}

/** One next hop of a route request. */
export interface NexthopRequest {
  via?: string;
  dev?: LinkRef;
  /** 1 – 256 (default 1). */
  weight?: number;
  onlink?: boolean;
}

/** What {@link Rtnetlink.addRoute} takes. */
export interface RouteRequest {
  /** `10.0.0.0/24`, `fd00::/64`, a host address, or `default`. */
  to: string;
  /** The family for `default` without `via` (default 4). */
  family?: 4 | 6;
  via?: string;
  dev?: LinkRef;
  /** Table id (default 254, main). */
  table?: number;
  /** RTA_PRIORITY (default: 0 for IPv4, 1024 for IPv6 — the kernel's). */
  metric?: number;
  /** RT_SCOPE_* (default as iproute2: link for a unicast route without gateway, host for local, else global). */
  scope?: number;
  /** RTPROT_* (default 4, static). */
  protocol?: number;
  /** RTN_* (default 1, unicast). */
  type?: number;
  tos?: number;
  /** Preferred source address. */
  src?: string;
  onlink?: boolean;
  nexthops?: readonly NexthopRequest[];
  metrics?: RouteMetrics;
}

/** Filter of {@link Rtnetlink.listRoutes}. */
export interface RouteFilter {
  family?: 4 | 6;
  table?: number;
  protocol?: number;
  type?: number;
  oif?: LinkRef;
}

/** A neighbour (ARP / NDP) entry. */
export interface Neighbour {
  family: 4 | 6 | 7;
  index: number;
  /** NUD_* state. */
  state: number;
  /** NTF_* flags. */
  flags: number;
  destination?: string;
  /** Link-layer address. */
  lladdr?: string;
  probes?: number;
  vlan?: number;
  master?: number;
  protocol?: number;
}

/** What {@link Rtnetlink.addNeighbour} takes. */
export interface NeighbourRequest {
  link: LinkRef;
  /** The IP address. */
  address: string;
  /** The link-layer address (omit for e.g. a `noarp` entry). */
  lladdr?: string;
  /** NUD_* (default NUD_PERMANENT). */
  state?: number;
  /** NTF_* flags. */
  flags?: number;
}

/** Filter of {@link Rtnetlink.listNeighbours}. */
export interface NeighbourFilter {
  family?: 4 | 6;
  link?: LinkRef;
}
