/**
 * Numbers from the Linux UAPI headers (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h,
 * neighbour.h, genetlink.h, if_tun.h). Values were taken from the headers by compiling a program
 * against them, not typed from memory.
 */

/** Netlink protocol families (socket(2) protocol argument). */
export const NETLINK = { ROUTE: 0, NETFILTER: 12, GENERIC: 16 } as const;

/** nlmsghdr flags. */
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  NONREC: 0x100,
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

/** Control message types. */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

/** Extended-ack attributes of an NLMSG_ERROR. */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

/** Socket options at level SOL_NETLINK. */
export const SOL_NETLINK = 270;
/** setsockopt names at SOL_NETLINK. */
export const NETLINK_OPT = {
  ADD_MEMBERSHIP: 1,
  DROP_MEMBERSHIP: 2,
  NO_ENOBUFS: 5,
  LISTEN_ALL_NSID: 8,
  CAP_ACK: 10,
  EXT_ACK: 11,
  GET_STRICT_CHK: 12,
} as const;
/** SOL_SOCKET and the buffer options used here. */
export const SOL_SOCKET = 1;
/** Socket buffer options at SOL_SOCKET. */
export const SO = { SNDBUF: 7, RCVBUF: 8, SNDBUFFORCE: 32, RCVBUFFORCE: 33 } as const;

/** Attribute header flags. */
export const NLA_F_NESTED = 1 << 15;
/** Attribute header flag: payload in network byte order. */
export const NLA_F_NET_BYTEORDER = 1 << 14;
/** Mask of the attribute type bits. */
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** rtnetlink message types. */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
  NEWNSID: 88,
  DELNSID: 89,
  GETNSID: 90,
} as const;

/** rtnetlink multicast groups (the bit number, as NETLINK_ADD_MEMBERSHIP takes it). */
export const RTNLGRP = {
  LINK: 1,
  NEIGH: 3,
  IPV4_IFADDR: 5,
  IPV4_ROUTE: 7,
  IPV4_RULE: 8,
  IPV6_IFADDR: 9,
  IPV6_ROUTE: 11,
  NSID: 28,
} as const;

/** Address families. */
export const AF = { UNSPEC: 0, INET: 2, BRIDGE: 7, INET6: 10 } as const;

/** Interface flags (net/if.h). */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  DEBUG: 0x4,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  NOARP: 0x80,
  PROMISC: 0x100,
  ALLMULTI: 0x200,
  MULTICAST: 0x1000,
  LOWER_UP: 0x10000,
  DORMANT: 0x20000,
} as const;

/** IFLA_* link attributes. */
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  QDISC: 6,
  MASTER: 10,
  TXQLEN: 13,
  OPERSTATE: 16,
  LINKMODE: 17,
  LINKINFO: 18,
  NET_NS_PID: 19,
  IFALIAS: 20,
  STATS64: 23,
  AF_SPEC: 26,
  GROUP: 27,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  PROMISCUITY: 30,
  NUM_TX_QUEUES: 31,
  NUM_RX_QUEUES: 32,
  CARRIER: 33,
  CARRIER_CHANGES: 35,
  LINK_NETNSID: 37,
  PROTO_DOWN: 39,
  NEW_NETNSID: 45,
  TARGET_NETNSID: 46,
  MIN_MTU: 50,
  MAX_MTU: 51,
  PROP_LIST: 52,
  ALT_IFNAME: 53,
  PERM_ADDRESS: 54,
  PARENT_DEV_NAME: 56,
} as const;

/** IFLA_EXT_MASK bits. */
export const RTEXT_FILTER = { VF: 1, BRVLAN: 2, BRVLAN_COMPRESSED: 4, SKIP_STATS: 8 } as const;

/** tun/tap ioctl flags (linux/if_tun.h). */
export const IFF_TUN_FLAGS = {
  TUN: 0x1,
  TAP: 0x2,
  NO_PI: 0x1000,
  MULTI_QUEUE: 0x100,
  VNET_HDR: 0x4000,
} as const;

/** IFA_* address attributes. */
export const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  BROADCAST: 4,
  ANYCAST: 5,
  CACHEINFO: 6,
  MULTICAST: 7,
  FLAGS: 8,
  RT_PRIORITY: 9,
  TARGET_NETNSID: 10,
  PROTO: 11,
} as const;

/** IFA_F_* address flags. */
export const IFA_F = {
  SECONDARY: 0x1,
  NODAD: 0x2,
  OPTIMISTIC: 0x4,
  DADFAILED: 0x8,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
  MCAUTOJOIN: 0x400,
  STABLE_PRIVACY: 0x800,
} as const;

/** RTA_* route attributes. */
export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  MULTIPATH: 9,
  FLOW: 11,
  CACHEINFO: 12,
  TABLE: 15,
  MARK: 16,
  VIA: 18,
  PREF: 20,
  ENCAP_TYPE: 21,
  ENCAP: 22,
  EXPIRES: 23,
  UID: 25,
  NH_ID: 30,
} as const;

/** RTAX_* route metrics (inside RTA_METRICS). */
export const RTAX = {
  LOCK: 1,
  MTU: 2,
  WINDOW: 3,
  RTT: 4,
  RTTVAR: 5,
  SSTHRESH: 6,
  CWND: 7,
  ADVMSS: 8,
  REORDERING: 9,
  HOPLIMIT: 10,
  INITCWND: 11,
  FEATURES: 12,
  RTO_MIN: 13,
  INITRWND: 14,
  QUICKACK: 15,
  CC_ALGO: 16,
  FASTOPEN_NO_COOKIE: 17,
} as const;

/** Route types. */
export const RTN = {
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
  NAT: 10,
  XRESOLVE: 11,
} as const;

/** Route protocols (who installed the route). */
export const RTPROT = {
  UNSPEC: 0,
  REDIRECT: 1,
  KERNEL: 2,
  BOOT: 3,
  STATIC: 4,
  RA: 9,
  DHCP: 16,
  BGP: 186,
  OSPF: 188,
} as const;

/** Route and address scopes. */
export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;

/** Reserved routing tables. */
export const RT_TABLE = { UNSPEC: 0, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;

/** rtmsg flags. */
export const RTM_F = { NOTIFY: 0x100, CLONED: 0x200, EQUALIZE: 0x400, PREFIX: 0x800 } as const;

/** rtnexthop flags. */
export const RTNH_F = { DEAD: 1, PERVASIVE: 2, ONLINK: 4, OFFLOAD: 8, LINKDOWN: 16, UNRESOLVED: 32 } as const;

/** NDA_* neighbour attributes. */
export const NDA = {
  DST: 1,
  LLADDR: 2,
  CACHEINFO: 3,
  PROBES: 4,
  VLAN: 5,
  PORT: 6,
  VNI: 7,
  IFINDEX: 8,
  MASTER: 9,
  LINK_NETNSID: 10,
  SRC_VNI: 11,
  PROTOCOL: 12,
} as const;

/** Neighbour states. */
export const NUD = {
  NONE: 0,
  INCOMPLETE: 0x1,
  REACHABLE: 0x2,
  STALE: 0x4,
  DELAY: 0x8,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;

/** Neighbour flags. */
export const NTF = {
  USE: 0x1,
  SELF: 0x2,
  MASTER: 0x4,
  PROXY: 0x8,
  EXT_LEARNED: 0x10,
  OFFLOADED: 0x20,
  STICKY: 0x40,
  ROUTER: 0x80,
} as const;

/** NETNSA_* attributes of RTM_GETNSID. */
export const NETNSA = { NSID: 1, PID: 2, FD: 3, TARGET_NSID: 4, CURRENT_NSID: 5 } as const;

/** The generic netlink controller. */
export const GENL_ID_CTRL = 16;
/** Controller commands. */
export const CTRL_CMD = { NEWFAMILY: 1, DELFAMILY: 2, GETFAMILY: 3 } as const;

/** ARPHRD_* link types (if_arp.h) that show up in practice. */
export const ARPHRD = { ETHER: 1, LOOPBACK: 772, NONE: 0xfffe, IPGRE: 778, SIT: 776, TUNNEL: 768 } as const;
