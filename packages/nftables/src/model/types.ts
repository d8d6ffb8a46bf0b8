/**
 * The readable form of an nftables ruleset: what a person writes in an `nft -f` file, as typed
 * data. Values are written as `nft` writes them: `10.0.0.0/8`, `10.0.0.1-10.0.0.9`, `22`,
 * `1000-2000`, `eth*`, `established,related`; a list is an anonymous set (`{ 80, 443 }`), a
 * string starting with `@` a named set, `{ not: … }` a negation (`!=`).
 */
import type { NftExpr } from '../expr.js';
import type { NftFamily } from '../wire.js';

/** A single value as `nft` writes it. */
export type Scalar = string | number;

/**
 * The right-hand side of a match: a value (also a prefix `a/n`, a range `a-b`, an interface
 * wildcard `eth*`, ct state flags `a,b`), a list (an anonymous set), `@name` (a named set), or
 * `{ not: … }` of any of these.
 */
export type MatchValue = Scalar | Scalar[] | { not: Scalar | Scalar[] };

/** Matches on the IPv4 header. */
export interface IpMatch {
  saddr?: MatchValue;
  daddr?: MatchValue;
  /** The protocol field (`tcp`, `udp`, `icmp`, a number). */
  protocol?: MatchValue;
}

/** Matches on the IPv6 header. */
export interface Ip6Match {
  saddr?: MatchValue;
  daddr?: MatchValue;
  nexthdr?: MatchValue;
}

/** Matches on TCP or UDP ports. */
export interface PortMatch {
  sport?: MatchValue;
  dport?: MatchValue;
}

/** Matches on the ICMP or ICMPv6 type. */
export interface IcmpMatch {
  type?: MatchValue;
}

/** Matches on connection tracking. */
export interface CtMatch {
  /** `established,related` (any of these flags), a list (a set), or `{ not: invalid }`. */
  state?: MatchValue;
  /** `dnat`, `snat`, `assured` … (any of these flags), a list, or `{ not: … }`. */
  status?: MatchValue;
  mark?: MatchValue;
}

/**
 * What a rule matches: every condition must hold (AND). On the wire they come in this order,
 * each with the protocol dependency `nft` would add (`meta nfproto ipv4` before `ip saddr` in an
 * inet table, `meta l4proto tcp` before `tcp dport`).
 */
export interface RuleMatch {
  /** Input interface, by name (resolved to its index when the rule is written, as `nft` does). */
  iif?: MatchValue;
  /** Input interface name (`eth0`, or a prefix `eth*`); the interface need not exist. */
  iifname?: MatchValue;
  oif?: MatchValue;
  oifname?: MatchValue;
  /** `ipv4` or `ipv6` (meta nfproto). */
  nfproto?: MatchValue;
  /** The layer 4 protocol (meta l4proto): `tcp`, `udp`, `icmp`, `ipv6-icmp`, a number. */
  l4proto?: MatchValue;
  /** The packet mark (meta mark). */
  mark?: MatchValue;
  ip?: IpMatch;
  ip6?: Ip6Match;
  tcp?: PortMatch;
  udp?: PortMatch;
  icmp?: IcmpMatch;
  icmpv6?: IcmpMatch;
  ct?: CtMatch;
}

/** Kernel log levels, as `nft` names them. */
export type LogLevel = 'emerg' | 'alert' | 'crit' | 'err' | 'warn' | 'notice' | 'info' | 'debug' | 'audit';

/** A statement of a rule, applied in order after the matches. */
export type Statement =
  | 'counter'
  | 'log'
  | { log: { prefix?: string; level?: LogLevel; group?: number; snaplen?: number; queueThreshold?: number } }
  | {
      limit: {
        rate: number;
        per: 'second' | 'minute' | 'hour' | 'day' | 'week';
        /** `packets` (default) or a byte unit. */
        unit?: 'packets' | 'bytes' | 'kbytes' | 'mbytes';
        burst?: number;
        /** Match when OVER the rate (`limit rate over`). */
        over?: boolean;
      };
    }
  | 'masquerade'
  | { masquerade: NatOptions & { port?: Scalar } }
  | { snat: NatOptions & { to: string; family?: 'ip' | 'ip6' } }
  | { dnat: NatOptions & { to: string; family?: 'ip' | 'ip6' } }
  | { redirect: NatOptions & { port?: Scalar } }
  | { mark: { set: Scalar } };

/** NAT flags. */
export interface NatOptions {
  random?: boolean;
  fullyRandom?: boolean;
  persistent?: boolean;
}

/** How a rule ends. */
export type Verdict =
  | 'accept'
  | 'drop'
  | 'return'
  | 'continue'
  | 'reject'
  | { jump: string }
  | { goto: string }
  | {
      reject: {
        /** `tcp-reset`, or an ICMP error of `icmp`, `icmpv6` or `icmpx` (both families) with a code. */
        type: 'tcp-reset' | 'icmp' | 'icmpv6' | 'icmpx';
        code?: string | number;
      };
    };

/** A rule in readable form. */
export interface Rule {
  /**
   * The rule's stable name within its chain, stored as its comment (`nft list` shows `comment
   * "NAME"`); it keeps the rule's identity across edits so that diffs are minimal.
   */
  name?: string;
  match?: RuleMatch;
  statements?: Statement[];
  verdict?: Verdict;
  /**
   * The rule's exact nf_tables expressions, for what the readable form does not cover (`fib`,
   * `exthdr`, verdict maps …); then `match`, `statements` and `verdict` are absent.
   */
  expr?: NftExpr[];
}

/** Key types of sets (nft's datatype names). */
export type SetKeyType =
  'ipv4_addr' | 'ipv6_addr' | 'ether_addr' | 'inet_proto' | 'inet_service' | 'mark' | 'ifname';

/** Data types of maps: a key type or `verdict`. */
export type MapDataType = SetKeyType | 'verdict';

/** Set flags. */
export type SetFlag = 'constant' | 'interval' | 'timeout' | 'dynamic';

/** One set element: a key, or a key with a value (maps), a timeout or a comment. */
export type SetElement =
  | Scalar
  | Scalar[]
  | {
      key: Scalar | Scalar[];
      /** A map's value: a value of its data type, or a verdict (`accept`, `{ jump: CHAIN }` …). */
      value?: Scalar | Exclude<Verdict, string>;
      /** `30s`, `1h`, `2d3h`. */
      timeout?: string;
      comment?: string;
    };

/** A named set or map. */
export interface SetSpec {
  name: string;
  /** The key type, or several for a concatenation (`[ipv4_addr, inet_service]`). */
  type: SetKeyType | SetKeyType[];
  /** When set, a map to values of this type. */
  map?: MapDataType;
  flags?: SetFlag[];
  /** Default element timeout (`1h`). */
  timeout?: string;
  gcInterval?: string;
  size?: number;
  policy?: 'performance' | 'memory';
  comment?: string;
  /** The elements, in nft's notation for the key type. */
  elements?: SetElement[];
}

/** Hook names of base chains. */
export type HookName = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';

/** A chain: a base chain (type, hook, priority, policy) or a regular chain (none of these). */
export interface ChainSpec {
  name: string;
  type?: 'filter' | 'nat' | 'route';
  hook?: HookName;
  /** A number, or a standard name (`filter`, `raw`, `mangle`, `dstnat`, `srcnat`, `security`). */
  priority?: number | string;
  policy?: 'accept' | 'drop';
  /** The devices of a netdev (or inet ingress) chain. */
  devices?: string[];
  comment?: string;
  /** The rules, in order. */
  rules?: Rule[];
}

/** A table with its chains and sets. */
export interface TableSpec {
  family: NftFamily;
  name: string;
  comment?: string;
  /** A dormant table's chains are not hooked (flag `dormant`). */
  dormant?: boolean;
  chains?: ChainSpec[];
  sets?: SetSpec[];
}
