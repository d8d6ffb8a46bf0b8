/**
 * nftables data types: how values of each type are written (`10.0.0.0/8`, `ssh`, `1000-2000`),
 * their bytes on the wire, and nft's datatype ids (set key types).
 */
import { formatIp, formatMac, networkBytes, parseMac, tryParseIp } from '@opdbus/netlink';
import { invalid } from '../errors.js';
import { LITTLE_ENDIAN } from '../tlv.js';
import type { Scalar } from './types.js';

/** A value's wire form: bytes, or an inclusive interval of bytes. */
export type WireValue = { kind: 'value'; bytes: Buffer } | { kind: 'interval'; from: Buffer; to: Buffer };

/** One of nft's data types. */
export interface DataType {
  /** nft's name (`ipv4_addr`). */
  name: string;
  /** nft's datatype id (NFTA_SET_KEY_TYPE). */
  id: number;
  /** Bytes on the wire. */
  len: number;
  /** Whether values are in host byte order (marks, interface indexes) rather than network order. */
  host: boolean;
  /** Whether ranges and prefixes are meaningful. */
  ranges: boolean;
  /** Whether prefixes (`a/n`) are written for aligned intervals. */
  prefixes?: boolean;
  /** Parse one value (not a range). */
  parse(v: Scalar): Buffer;
  /** Format one value. */
  format(b: Buffer): Scalar;
}

const PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  ipencap: 4,
  tcp: 6,
  egp: 8,
  udp: 17,
  ipv6: 41,
  'ipv6-route': 43,
  'ipv6-frag': 44,
  rsvp: 46,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  'ipv6-nonxt': 59,
  'ipv6-opts': 60,
  ospf: 89,
  pim: 103,
  vrrp: 112,
  l2tp: 115,
  sctp: 132,
  udplite: 136,
};
const PROTOCOL_ALIASES: Readonly<Record<string, number>> = { icmpv6: 58, 'ipv6-icmpv6': 58 };

const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  dns: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  pop3: 110,
  ntp: 123,
  imap: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  imaps: 993,
  pop3s: 995,
  openvpn: 1194,
  mysql: 3306,
  postgresql: 5432,
  wireguard: 51820,
};

const ICMP_TYPES: Readonly<Record<string, number>> = {
  'echo-reply': 0,
  'destination-unreachable': 3,
  'source-quench': 4,
  redirect: 5,
  'echo-request': 8,
  'router-advertisement': 9,
  'router-solicitation': 10,
  'time-exceeded': 11,
  'parameter-problem': 12,
  'timestamp-request': 13,
  'timestamp-reply': 14,
  'info-request': 15,
  'info-reply': 16,
  'address-mask-request': 17,
  'address-mask-reply': 18,
};
const ICMPV6_TYPES: Readonly<Record<string, number>> = {
  'destination-unreachable': 1,
  'packet-too-big': 2,
  'time-exceeded': 3,
  'parameter-problem': 4,
  'echo-request': 128,
  'echo-reply': 129,
  'mld-listener-query': 130,
  'mld-listener-report': 131,
  'mld-listener-done': 132,
  'nd-router-solicit': 133,
  'nd-router-advert': 134,
  'nd-neighbor-solicit': 135,
  'nd-neighbor-advert': 136,
  'nd-redirect': 137,
  'router-renumbering': 138,
  'ind-neighbor-solicit': 141,
  'ind-neighbor-advert': 142,
  'mld2-listener-report': 143,
};
const ICMPV6_ALIASES: Readonly<Record<string, number>> = { 'mld-listener-reduction': 132 };

/** Conntrack states (NF_CT_STATE_* bits), in nft's order. */
export const CT_STATES: Readonly<Record<string, number>> = {
  invalid: 1,
  established: 2,
  related: 4,
  new: 8,
  untracked: 64,
};

function named(
  table: Readonly<Record<string, number>>,
  aliases: Readonly<Record<string, number>>,
  what: string,
  max: number,
) {
  const byNumber = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) if (!byNumber.has(v)) byNumber.set(v, k);
  return {
    parse(v: Scalar): number {
      if (typeof v === 'number' || /^\d+$/.test(v)) {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > max)
          throw invalid(`${v} is not a valid ${what} (0-${max}).`);
        return n;
      }
      const n = table[v] ?? aliases[v];
      if (n === undefined)
        throw invalid(
          `"${v}" is not a known ${what}; use one of ${Object.keys(table).join(', ')}, or a number.`,
        );
      return n;
    },
    format(n: number): Scalar {
      return byNumber.get(n) ?? n;
    },
  };
}

const protocols = named(PROTOCOLS, PROTOCOL_ALIASES, 'protocol', 255);
const services = named(SERVICES, {}, 'port or service name', 65535);
const icmpTypes = named(ICMP_TYPES, {}, 'ICMP type', 255);
const icmpv6Types = named(ICMPV6_TYPES, ICMPV6_ALIASES, 'ICMPv6 type', 255);

function u8(n: number): Buffer {
  return Buffer.from([n]);
}
function be16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
/** A u32 in host byte order. */
export function hostU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LITTLE_ENDIAN) b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return b;
}
/** Read a host-order u32. */
export function readHostU32(b: Buffer): number {
  return LITTLE_ENDIAN ? b.readUInt32LE(0) : b.readUInt32BE(0);
}

function parseNumber(v: Scalar, what: string, max = 0xffffffff): number {
  const n =
    typeof v === 'number'
      ? v
      : /^0x[0-9a-f]+$/i.test(v)
        ? parseInt(v, 16)
        : /^\d+$/.test(v)
          ? Number(v)
          : NaN;
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw invalid(`"${v}" is not a valid ${what} (a number 0-${max}).`);
  return n;
}

function ipParser(family: 4 | 6) {
  return (v: Scalar): Buffer => {
    const p = typeof v === 'string' ? tryParseIp(v) : undefined;
    if (p === undefined || p.family !== family)
      throw invalid(`"${v}" is not an ${family === 4 ? 'IPv4' : 'IPv6'} address.`, { value: v });
    return Buffer.from(p.bytes);
  };
}

/** Interface names are 16 bytes, NUL-padded (IFNAMSIZ). */
export function ifnameBytes(v: Scalar): Buffer {
  const s = String(v);
  if (s.length === 0 || Buffer.byteLength(s) > 15)
    throw invalid(`"${s}" is not an interface name (1-15 bytes).`);
  const b = Buffer.alloc(16);
  b.write(s);
  return b;
}

function ifnameFormat(b: Buffer): string {
  let e = b.length;
  while (e > 0 && b[e - 1] === 0) e--;
  return b.toString('utf8', 0, e);
}

/** nft's data types, by name. */
export const DATATYPES = {
  verdict: {
    name: 'verdict',
    id: 1,
    len: 16,
    host: false,
    ranges: false,
    parse: () => Buffer.alloc(0),
    format: () => '',
  },
  nfproto: {
    name: 'nfproto',
    id: 2,
    len: 1,
    host: false,
    ranges: false,
    parse: (v: Scalar) => {
      if (v === 'ipv4') return u8(2);
      if (v === 'ipv6') return u8(10);
      throw invalid(`"${v}" is not a layer 3 protocol; use ipv4 or ipv6.`);
    },
    format: (b: Buffer) => (b[0] === 2 ? 'ipv4' : b[0] === 10 ? 'ipv6' : b[0]!),
  },
  ipv4_addr: {
    name: 'ipv4_addr',
    id: 7,
    len: 4,
    host: false,
    ranges: true,
    prefixes: true,
    parse: ipParser(4),
    format: (b: Buffer) => formatIp(b, 0, 4),
  },
  ipv6_addr: {
    name: 'ipv6_addr',
    id: 8,
    len: 16,
    host: false,
    ranges: true,
    prefixes: true,
    parse: ipParser(6),
    format: (b: Buffer) => formatIp(b, 0, 16),
  },
  ether_addr: {
    name: 'ether_addr',
    id: 9,
    len: 6,
    host: false,
    ranges: true,
    parse: (v: Scalar) => Buffer.from(parseMac(String(v))),
    format: (b: Buffer) => formatMac(b, 0, 6),
  },
  inet_proto: {
    name: 'inet_proto',
    id: 12,
    len: 1,
    host: false,
    ranges: true,
    parse: (v: Scalar) => u8(protocols.parse(v)),
    format: (b: Buffer) => protocols.format(b[0]!),
  },
  inet_service: {
    name: 'inet_service',
    id: 13,
    len: 2,
    host: false,
    ranges: true,
    parse: (v: Scalar) => be16(services.parse(v)),
    format: (b: Buffer) => b.readUInt16BE(0),
  },
  icmp_type: {
    name: 'icmp_type',
    id: 14,
    len: 1,
    host: false,
    ranges: true,
    parse: (v: Scalar) => u8(icmpTypes.parse(v)),
    format: (b: Buffer) => icmpTypes.format(b[0]!),
  },
  mark: {
    name: 'mark',
    id: 19,
    len: 4,
    host: true,
    ranges: true,
    parse: (v: Scalar) => hostU32(parseNumber(v, 'mark')),
    format: (b: Buffer) => readHostU32(b),
  },
  iface_index: {
    name: 'iface_index',
    id: 20,
    len: 4,
    host: true,
    ranges: false,
    parse: (v: Scalar) => hostU32(parseNumber(v, 'interface index')),
    format: (b: Buffer) => readHostU32(b),
  },
  ct_state: {
    name: 'ct_state',
    id: 26,
    len: 4,
    host: true,
    ranges: false,
    parse: (v: Scalar) => hostU32(parseCtState(v)),
    format: (b: Buffer) => formatCtState(readHostU32(b)),
  },
  ct_status: {
    name: 'ct_status',
    id: 28,
    len: 4,
    host: true,
    ranges: false,
    parse: (v: Scalar) => hostU32(parseCtStatus(v)),
    format: (b: Buffer) => formatCtStatus(readHostU32(b)),
  },
  icmpv6_type: {
    name: 'icmpv6_type',
    id: 29,
    len: 1,
    host: false,
    ranges: true,
    parse: (v: Scalar) => u8(icmpv6Types.parse(v)),
    format: (b: Buffer) => icmpv6Types.format(b[0]!),
  },
  ifname: {
    name: 'ifname',
    id: 41,
    len: 16,
    host: false,
    ranges: false,
    parse: ifnameBytes,
    format: ifnameFormat,
  },
} as const satisfies Record<string, DataType>;

/** A data type's name. */
export type DataTypeName = keyof typeof DATATYPES;

const byId = new Map<number, DataType>(Object.values(DATATYPES).map((d) => [d.id, d]));

/** The data type with nft's id `id`. */
export function dataTypeById(id: number): DataType | undefined {
  return byId.get(id);
}

/** nft combines the ids of a concatenation's types, 6 bits each (TYPE_BITS). */
export const TYPE_BITS = 6;

/** The NFTA_SET_KEY_TYPE of a key of these types. */
export function concatTypeId(types: readonly DataType[]): number {
  let id = 0;
  for (const t of types) id = (id << TYPE_BITS) | t.id;
  return id >>> 0;
}

/** Split a concatenation's type id into its types (undefined: a type this module does not know). */
export function concatTypes(id: number, count: number): DataType[] | undefined {
  const out: DataType[] = [];
  for (let i = 0; i < count; i++) {
    const t = byId.get((id >>> (TYPE_BITS * (count - 1 - i))) & ((1 << TYPE_BITS) - 1));
    if (t === undefined) return undefined;
    out.push(t);
  }
  return out;
}

/** Conntrack status bits (IPS_*) nft names, in nft's order. */
export const CT_STATUS: Readonly<Record<string, number>> = {
  expected: 1,
  'seen-reply': 2,
  assured: 4,
  confirmed: 8,
  snat: 16,
  dnat: 32,
  dying: 512,
};

function parseFlags(table: Readonly<Record<string, number>>, what: string, v: Scalar): number {
  let bits = 0;
  for (const part of String(v).split(',')) {
    const name = part.trim();
    const bit = table[name];
    if (bit === undefined) throw invalid(`"${name}" is not a ${what}; use ${Object.keys(table).join(', ')}.`);
    bits |= bit;
  }
  return bits;
}

function formatFlags(table: Readonly<Record<string, number>>, bits: number): string {
  const names = Object.entries(table)
    .filter(([, bit]) => (bits & bit) !== 0)
    .map(([name]) => name);
  let rest = bits;
  for (const bit of Object.values(table)) rest &= ~bit;
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names.join(',');
}

/** Parse a ct state flag list (`established,related`) into its bits. */
export const parseCtState = (v: Scalar): number => parseFlags(CT_STATES, 'conntrack state', v);
/** Format ct state bits as nft does (`established,related`). */
export const formatCtState = (bits: number): string => formatFlags(CT_STATES, bits);
/** Parse a ct status flag list (`dnat`, `snat,assured`). */
export const parseCtStatus = (v: Scalar): number => parseFlags(CT_STATUS, 'conntrack status', v);
/** Format ct status bits as nft does. */
export const formatCtStatus = (bits: number): string => formatFlags(CT_STATUS, bits);

/** Parse a value that may be a range (`a-b`) or a prefix (`a/n`) into its wire form. */
export function parseValue(type: DataType, v: Scalar): WireValue {
  if (typeof v === 'string' && type.prefixes === true && v.includes('/')) {
    const [addr = '', lenText = ''] = v.split('/');
    const bytes = type.parse(addr);
    const bits = Number(lenText);
    if (!/^\d+$/.test(lenText) || bits > bytes.length * 8)
      throw invalid(`"${v}" has an invalid prefix length (0-${bytes.length * 8}).`, { value: v });
    const from = Buffer.from(networkBytes(bytes, bits));
    const to = Buffer.from(from);
    for (let i = 0; i < to.length; i++) {
      const keep = Math.max(0, Math.min(8, bits - i * 8));
      to[i] = to[i]! | (0xff >> keep);
    }
    return from.equals(to) ? { kind: 'value', bytes: from } : { kind: 'interval', from, to };
  }
  if (typeof v === 'string' && type.ranges && v.includes('-')) {
    // Names contain dashes too (echo-request, ipv6-icmp): a whole value wins over a range.
    let whole: Buffer | undefined;
    try {
      whole = type.parse(v);
    } catch {
      whole = undefined;
    }
    if (whole !== undefined) return { kind: 'value', bytes: whole };
    for (let i = v.indexOf('-'); i > 0; i = v.indexOf('-', i + 1)) {
      let from: Buffer;
      let to: Buffer;
      try {
        from = type.parse(v.slice(0, i).trim());
        to = type.parse(v.slice(i + 1).trim());
      } catch {
        continue;
      }
      if (compareBytes(type, from, to) > 0)
        throw invalid(`The range "${v}" ends before it starts.`, { value: v });
      return from.equals(to) ? { kind: 'value', bytes: from } : { kind: 'interval', from, to };
    }
  }
  return { kind: 'value', bytes: type.parse(v) };
}

/** Compare two values of a type numerically (host-order types compare as numbers). */
export function compareBytes(type: Pick<DataType, 'host'>, a: Buffer, b: Buffer): number {
  if (type.host && a.length === 4) return readHostU32(a) - readHostU32(b);
  return Buffer.compare(a, b);
}

/** Format an interval as nft does: a single value, a prefix when aligned (addresses), else `a-b`. */
export function formatInterval(type: DataType, from: Buffer, to: Buffer): Scalar {
  if (from.equals(to)) return type.format(from);
  if (type.prefixes === true) {
    const len = prefixLength(from, to);
    if (len !== undefined) return `${String(type.format(from))}/${len}`;
  }
  return `${String(type.format(from))}-${String(type.format(to))}`;
}

/** The prefix length when [from, to] is exactly one prefix. */
export function prefixLength(from: Buffer, to: Buffer): number | undefined {
  let bits = 0;
  let i = 0;
  for (; i < from.length && from[i] === to[i]; i++) bits += 8;
  if (i < from.length) {
    const x = from[i]! ^ to[i]!;
    // x must be 0b0..01..1 with `from` having zeros and `to` ones there.
    if (((x + 1) & x) !== 0 || (from[i]! & x) !== 0) return undefined;
    bits += 8 - Math.log2(x + 1);
    for (let j = i + 1; j < from.length; j++) if (from[j] !== 0 || to[j] !== 0xff) return undefined;
  }
  return bits;
}

/** Add one to a big-endian byte string (for the end element of an interval); undefined on overflow. */
export function increment(b: Buffer, host = false): Buffer | undefined {
  if (host && b.length === 4) {
    const n = readHostU32(b);
    return n === 0xffffffff ? undefined : hostU32(n + 1);
  }
  const out = Buffer.from(b);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i] = out[i]! + 1;
      return out;
    }
    out[i] = 0;
  }
  return undefined;
}

/** Subtract one (the inverse of {@link increment}). */
export function decrement(b: Buffer, host = false): Buffer {
  if (host && b.length === 4) return hostU32(readHostU32(b) - 1);
  const out = Buffer.from(b);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! > 0) {
      out[i] = out[i]! - 1;
      return out;
    }
    out[i] = 0xff;
  }
  return out;
}

const UNITS: readonly [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/** Parse an nft duration (`1h30m`, `90s`, `500ms`, or a number of seconds) into milliseconds. */
export function parseDuration(v: string | number): number {
  if (typeof v === 'number') return v * 1000;
  const re = /(\d+)(ms|d|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    total += Number(m[1]) * UNITS.find(([u]) => u === m[2])![1];
    matched = re.lastIndex;
  }
  if (matched !== v.length || v.length === 0)
    throw invalid(`"${v}" is not a duration; write it as nft does, e.g. 30s, 5m, 1h30m, 2d.`, { value: v });
  return total;
}

/** Format milliseconds as nft does (`1h30m`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

/** Whether a scalar names a set (`@blocked`). */
export const isSetRef = (v: unknown): boolean => typeof v === 'string' && v.startsWith('@') && v.length > 1;

const IPV4_FORMS =
  /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2})|-(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}))?$/;

function octets(a: string, b: string, c: string, d: string): number | undefined {
  const n = [Number(a), Number(b), Number(c), Number(d)];
  if (n.some((x) => x > 255)) return undefined;
  return n[0]! * 16777216 + ((n[1]! << 16) | (n[2]! << 8) | n[3]!);
}

/**
 * A fast path for the numeric key types of big sets (IPv4 addresses, ports): the inclusive
 * interval a value denotes, as numbers; undefined when the text is not in a plain numeric form
 * (then the generic parser decides).
 */
export function numericInterval(type: DataType, v: Scalar): [number, number] | undefined {
  if (type.name === 'ipv4_addr') {
    if (typeof v !== 'string') return undefined;
    const m = IPV4_FORMS.exec(v);
    if (m === null) return undefined;
    const from = octets(m[1]!, m[2]!, m[3]!, m[4]!);
    if (from === undefined) return undefined;
    if (m[5] !== undefined) {
      const bits = Number(m[5]);
      if (bits > 32) return undefined;
      const size = 2 ** (32 - bits);
      const start = from - (from % size);
      return [start, start + size - 1];
    }
    if (m[6] !== undefined) {
      const to = octets(m[6], m[7]!, m[8]!, m[9]!);
      return to === undefined || to < from ? undefined : [from, to];
    }
    return [from, from];
  }
  if (type.name === 'inet_service') {
    if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 65535 ? [v, v] : undefined;
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v);
    if (m === null) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    return a > 65535 || b > 65535 || b < a ? undefined : [a, b];
  }
  return undefined;
}

/** Format a numeric interval of a numeric key type as nft does (prefixes for addresses). */
export function formatNumericInterval(type: DataType, from: number, to: number): Scalar {
  if (type.name === 'inet_service') return from === to ? from : `${from}-${to}`;
  const ip = (n: number): string =>
    `${Math.floor(n / 16777216)}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  if (from === to) return ip(from);
  const size = to - from + 1;
  const bits = Math.log2(size);
  if (Number.isInteger(bits) && from % size === 0) return `${ip(from)}/${32 - bits}`;
  return `${ip(from)}-${ip(to)}`;
}
