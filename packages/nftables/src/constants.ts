/**
 * Numbers from the Linux UAPI headers linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h,
 * linux/netfilter.h and linux/netfilter/nf_nat.h, and from libnftnl's udata.h (the TLVs `nft`
 * keeps in NFTA_*_USERDATA).
 */

/** The nfnetlink subsystem id of nf_tables (NFNL_SUBSYS_NFTABLES). */
export const NFNL_SUBSYS_NFTABLES = 10;
/** nfnetlink batch delimiters (NFNL_MSG_BATCH_BEGIN / END = NLMSG_MIN_TYPE, +1). */
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
/** The batch attribute carrying the generation the batch was computed from. */
export const NFNL_BATCH_GENID = 1;
/** The nf_tables multicast group (NFNLGRP_NFTABLES). */
export const NFNLGRP_NFTABLES = 7;
/** nfgenmsg.version. */
export const NFNETLINK_V0 = 0;

/** nf_tables message types (NFT_MSG_*); the nlmsg_type is `NFNL_SUBSYS_NFTABLES << 8 | type`. */
export const NFT_MSG = {
  NEWTABLE: 0,
  GETTABLE: 1,
  DELTABLE: 2,
  NEWCHAIN: 3,
  GETCHAIN: 4,
  DELCHAIN: 5,
  NEWRULE: 6,
  GETRULE: 7,
  DELRULE: 8,
  NEWSET: 9,
  GETSET: 10,
  DELSET: 11,
  NEWSETELEM: 12,
  GETSETELEM: 13,
  DELSETELEM: 14,
  NEWGEN: 15,
  GETGEN: 16,
  TRACE: 17,
  NEWOBJ: 18,
  GETOBJ: 19,
  DELOBJ: 20,
  GETOBJ_RESET: 21,
  NEWFLOWTABLE: 22,
  GETFLOWTABLE: 23,
  DELFLOWTABLE: 24,
  GETRULE_RESET: 25,
  DESTROYTABLE: 26,
  DESTROYCHAIN: 27,
  DESTROYRULE: 28,
  DESTROYSET: 29,
  DESTROYSETELEM: 30,
  DESTROYOBJ: 31,
  DESTROYFLOWTABLE: 32,
  GETSETELEM_RESET: 33,
} as const;

/** The names of the message types, for errors and events. */
export const NFT_MSG_NAME: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(NFT_MSG).map(([k, v]) => [v, `NFT_MSG_${k}`]),
);

/** Netfilter protocol families (NFPROTO_*), as nfgenmsg.nfgen_family. */
export const NFPROTO = { UNSPEC: 0, INET: 1, IPV4: 2, ARP: 3, NETDEV: 5, BRIDGE: 7, IPV6: 10 } as const;

/** NFTA_LIST_*. */
export const NFTA_LIST_ELEM = 1;

export const NFTA_TABLE = { NAME: 1, FLAGS: 2, USE: 3, HANDLE: 4, PAD: 5, USERDATA: 6, OWNER: 7 } as const;
/** Table flags. */
export const NFT_TABLE_F = { DORMANT: 1, OWNER: 2, PERSIST: 4 } as const;

export const NFTA_CHAIN = {
  TABLE: 1,
  HANDLE: 2,
  NAME: 3,
  HOOK: 4,
  POLICY: 5,
  USE: 6,
  TYPE: 7,
  COUNTERS: 8,
  PAD: 9,
  FLAGS: 10,
  ID: 11,
  USERDATA: 12,
} as const;
export const NFTA_HOOK = { HOOKNUM: 1, PRIORITY: 2, DEV: 3, DEVS: 4 } as const;
export const NFTA_DEVICE_NAME = 1;
/** Chain flags. */
export const NFT_CHAIN_F = { BASE: 1, HW_OFFLOAD: 2, BINDING: 4 } as const;

export const NFTA_RULE = {
  TABLE: 1,
  CHAIN: 2,
  HANDLE: 3,
  EXPRESSIONS: 4,
  COMPAT: 5,
  POSITION: 6,
  USERDATA: 7,
  PAD: 8,
  ID: 9,
  POSITION_ID: 10,
  CHAIN_ID: 11,
} as const;

export const NFTA_SET = {
  TABLE: 1,
  NAME: 2,
  FLAGS: 3,
  KEY_TYPE: 4,
  KEY_LEN: 5,
  DATA_TYPE: 6,
  DATA_LEN: 7,
  POLICY: 8,
  DESC: 9,
  ID: 10,
  TIMEOUT: 11,
  GC_INTERVAL: 12,
  USERDATA: 13,
  PAD: 14,
  OBJ_TYPE: 15,
  HANDLE: 16,
  EXPR: 17,
  EXPRESSIONS: 18,
} as const;
export const NFTA_SET_DESC = { SIZE: 1, CONCAT: 2 } as const;
export const NFTA_SET_FIELD_LEN = 1;
/** Set flags. */
export const NFT_SET_F = {
  ANONYMOUS: 0x1,
  CONSTANT: 0x2,
  INTERVAL: 0x4,
  MAP: 0x8,
  TIMEOUT: 0x10,
  EVAL: 0x20,
  OBJECT: 0x40,
  CONCAT: 0x80,
  EXPR: 0x100,
} as const;
/** Set policies. */
export const NFT_SET_POL = { PERFORMANCE: 0, MEMORY: 1 } as const;

export const NFTA_SET_ELEM_LIST = { TABLE: 1, SET: 2, ELEMENTS: 3, SET_ID: 4 } as const;
export const NFTA_SET_ELEM = {
  KEY: 1,
  DATA: 2,
  FLAGS: 3,
  TIMEOUT: 4,
  EXPIRATION: 5,
  USERDATA: 6,
  EXPR: 7,
  PAD: 8,
  OBJREF: 9,
  KEY_END: 10,
  EXPRESSIONS: 11,
} as const;
/** Set element flags. */
export const NFT_SET_ELEM_F = { INTERVAL_END: 1, CATCHALL: 2 } as const;

export const NFTA_DATA = { VALUE: 1, VERDICT: 2 } as const;
/** NFTA_SET_DATA_TYPE of a verdict map. */
export const NFT_DATA_VERDICT = 0xffffff00;
export const NFTA_VERDICT = { CODE: 1, CHAIN: 2, CHAIN_ID: 3 } as const;
/** Verdict codes (NF_DROP, NF_ACCEPT … and nf_tables' own negative ones). */
export const VERDICT_CODE = {
  drop: 0,
  accept: 1,
  stolen: 2,
  queue: 3,
  repeat: 4,
  continue: -1,
  break: -2,
  jump: -3,
  goto: -4,
  return: -5,
} as const;

export const NFTA_EXPR = { NAME: 1, DATA: 2 } as const;

export const NFTA_GEN = { ID: 1, PROC_PID: 2, PROC_NAME: 3 } as const;

/** Hook numbers (NF_INET_*, NF_NETDEV_*, NF_ARP_*; bridge uses the inet numbers). */
export const NF_INET_HOOK = {
  prerouting: 0,
  input: 1,
  forward: 2,
  output: 3,
  postrouting: 4,
  ingress: 5,
} as const;
export const NF_NETDEV_HOOK = { ingress: 0, egress: 1 } as const;
export const NF_ARP_HOOK = { input: 0, output: 1, forward: 2 } as const;

/** Netfilter verdicts used as chain policies. */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;

/** NF_NAT_RANGE_* flags of the nat, masq and redir expressions. */
export const NF_NAT_RANGE = {
  MAP_IPS: 0x1,
  PROTO_SPECIFIED: 0x2,
  PROTO_RANDOM: 0x4,
  PERSISTENT: 0x8,
  PROTO_RANDOM_FULLY: 0x10,
  PROTO_OFFSET: 0x20,
  NETMAP: 0x40,
} as const;

/** libnftnl udata TLV types, per object (what `nft` stores in NFTA_*_USERDATA). */
export const UDATA = {
  TABLE_COMMENT: 0,
  CHAIN_COMMENT: 0,
  RULE_COMMENT: 0,
  SET_KEYBYTEORDER: 0,
  SET_DATABYTEORDER: 1,
  SET_MERGE_ELEMENTS: 2,
  SET_KEY_TYPEOF: 3,
  SET_DATA_TYPEOF: 4,
  SET_EXPR: 5,
  SET_DATA_INTERVAL: 6,
  SET_COMMENT: 7,
  SET_ELEM_COMMENT: 0,
  SET_ELEM_FLAGS: 1,
} as const;

/** Byte orders as `nft` records them in set userdata (enum byteorder). */
export const BYTEORDER = { INVALID: 0, HOST: 1, BIG: 2 } as const;
