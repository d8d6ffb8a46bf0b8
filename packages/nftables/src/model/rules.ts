/**
 * Readable rules to nf_tables expressions and back, the way `nft` linearizes and delinearizes
 * them: protocol dependencies (`meta nfproto`, `meta l4proto`, `meta protocol`) are added before
 * the first match that needs them and hidden again when reading; prefixes on byte boundaries load
 * only the prefix bytes; ranges are `cmp gte` + `cmp lte` (`range neq` when negated); lists are
 * anonymous sets created with the rule.
 *
 * Reading is checked: a rule is shown in readable form only when writing that form back gives
 * the same expressions (up to the order of the matches); otherwise it is kept as its exact
 * expressions (`expr`), so nothing is ever misrepresented.
 */
import { NFT_SET_F, VERDICT_CODE } from '../constants.js';
import { invalid } from '../errors.js';
import { exprKey, type MasqExpr, type NftAnonymousSet, type NftExpr, type RedirExpr } from '../expr.js';
import type { NftFamily } from '../wire.js';
import { elementsFromNft } from './sets.js';
import type { MatchValue, Rule, RuleMatch, Scalar, Statement, Verdict } from './types.js';
import {
  CT_STATES,
  DATATYPES,
  compareBytes,
  hostU32,
  ifnameBytes,
  isSetRef,
  parseValue,
  prefixLength,
  readHostU32,
  type DataType,
} from './values.js';

/** Interface name ↔ index, for `iif`/`oif` (resolved when a rule is written, as `nft` does). */
export interface InterfaceResolver {
  index(name: string): number | undefined;
  name(index: number): string | undefined;
}

/** What compiling and reading rules needs besides the rule. */
export interface RuleContext {
  family: NftFamily;
  interfaces?: InterfaceResolver;
}

/**
 * A resolver that invents indexes for names and gives the names back: enough to put a rule in
 * canonical form ({@link normalizeRule}) without asking the kernel.
 */
export function syntheticInterfaces(): InterfaceResolver {
  const byName = new Map<string, number>();
  const byIndex = new Map<number, string>();
  return {
    index(name) {
      let i = byName.get(name);
      if (i === undefined) {
        i = 0x7fff0000 + byName.size;
        byName.set(name, i);
        byIndex.set(i, name);
      }
      return i;
    },
    name: (index) => byIndex.get(index),
  };
}

// ------------------------------------------------------------------ fields

type Load =
  | { type: 'meta'; key: string }
  | { type: 'payload'; base: 'network' | 'transport'; offset: number; len: number }
  | { type: 'ct'; key: string };

interface FieldDef {
  path: string;
  load: Load;
  type: DataType;
  /** Needs this layer 3 protocol. */
  l3?: 'ipv4' | 'ipv6';
  /** Needs this layer 4 protocol. */
  l4?: number;
}

const meta = (key: string): Load => ({ type: 'meta', key });
const nh = (offset: number, len: number): Load => ({ type: 'payload', base: 'network', offset, len });
const th = (offset: number, len: number): Load => ({ type: 'payload', base: 'transport', offset, len });

const T = DATATYPES;
/** The matches, in the order they are written. */
const FIELDS: readonly FieldDef[] = [
  { path: 'iif', load: meta('iif'), type: T.iface_index },
  { path: 'iifname', load: meta('iifname'), type: T.ifname },
  { path: 'oif', load: meta('oif'), type: T.iface_index },
  { path: 'oifname', load: meta('oifname'), type: T.ifname },
  { path: 'nfproto', load: meta('nfproto'), type: T.nfproto },
  { path: 'l4proto', load: meta('l4proto'), type: T.inet_proto },
  { path: 'mark', load: meta('mark'), type: T.mark },
  { path: 'ip.saddr', load: nh(12, 4), type: T.ipv4_addr, l3: 'ipv4' },
  { path: 'ip.daddr', load: nh(16, 4), type: T.ipv4_addr, l3: 'ipv4' },
  { path: 'ip.protocol', load: nh(9, 1), type: T.inet_proto, l3: 'ipv4' },
  { path: 'ip6.saddr', load: nh(8, 16), type: T.ipv6_addr, l3: 'ipv6' },
  { path: 'ip6.daddr', load: nh(24, 16), type: T.ipv6_addr, l3: 'ipv6' },
  { path: 'ip6.nexthdr', load: nh(6, 1), type: T.inet_proto, l3: 'ipv6' },
  { path: 'tcp.sport', load: th(0, 2), type: T.inet_service, l4: 6 },
  { path: 'tcp.dport', load: th(2, 2), type: T.inet_service, l4: 6 },
  { path: 'udp.sport', load: th(0, 2), type: T.inet_service, l4: 17 },
  { path: 'udp.dport', load: th(2, 2), type: T.inet_service, l4: 17 },
  { path: 'icmp.type', load: th(0, 1), type: T.icmp_type, l3: 'ipv4', l4: 1 },
  { path: 'icmpv6.type', load: th(0, 1), type: T.icmpv6_type, l3: 'ipv6', l4: 58 },
  { path: 'ct.state', load: { type: 'ct', key: 'state' }, type: T.ct_state },
  { path: 'ct.status', load: { type: 'ct', key: 'status' }, type: T.ct_status },
  { path: 'ct.mark', load: { type: 'ct', key: 'mark' }, type: T.mark },
];

function getPath(match: RuleMatch, path: string): MatchValue | undefined {
  const [a, b] = path.split('.') as [string, string | undefined];
  const v = (match as Record<string, unknown>)[a];
  if (b === undefined) return v as MatchValue | undefined;
  return (v as Record<string, MatchValue> | undefined)?.[b];
}

function setPath(match: RuleMatch, path: string, value: MatchValue): void {
  const [a, b] = path.split('.') as [string, string | undefined];
  const m = match as Record<string, unknown>;
  if (b === undefined) m[a] = value;
  else ((m[a] ??= {}) as Record<string, MatchValue>)[b] = value;
}

const L3_NUMBER = { ipv4: 2, ipv6: 10 } as const;
const ETHERTYPE = { ipv4: '0800', ipv6: '86dd' } as const;
const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug', 'audit'] as const;
const PERIODS = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800 } as const;
const BYTE_UNITS = { bytes: 1, kbytes: 1024, mbytes: 1048576 } as const;
const NAT_FLAG = { random: 0x4, persistent: 0x8, fullyRandom: 0x10 } as const;
const PROTO_SPECIFIED = 0x2;
const ICMP_CODES: Readonly<Record<string, number>> = {
  'net-unreachable': 0,
  'host-unreachable': 1,
  'prot-unreachable': 2,
  'port-unreachable': 3,
  'net-prohibited': 9,
  'host-prohibited': 10,
  'admin-prohibited': 13,
};
const ICMPV6_CODES: Readonly<Record<string, number>> = {
  'no-route': 0,
  'admin-prohibited': 1,
  'addr-unreachable': 3,
  'port-unreachable': 4,
  'policy-fail': 5,
  'reject-route': 6,
};
const ICMPX_CODES: Readonly<Record<string, number>> = {
  'no-route': 0,
  'port-unreachable': 1,
  'host-unreachable': 2,
  'admin-prohibited': 3,
};

// ------------------------------------------------------------------ compile

interface CompileState {
  out: NftExpr[];
  family: NftFamily;
  l3: 'ipv4' | 'ipv6' | undefined;
  l4: number | undefined;
  interfaces: InterfaceResolver | undefined;
}

const cmpEq = (data: Buffer | string): NftExpr => ({
  type: 'cmp',
  sreg: 1,
  op: 'eq',
  data: typeof data === 'string' ? data : data.toString('hex'),
});

function needL3(s: CompileState, l3: 'ipv4' | 'ipv6', what: string): void {
  if (s.family === 'ip' || s.family === 'ip6') {
    const have = s.family === 'ip' ? 'ipv4' : 'ipv6';
    if (have !== l3) throw invalid(`${what} needs ${l3}, but the table's family is ${s.family}.`);
    return;
  }
  if (s.family === 'arp') throw invalid(`${what} cannot be matched in an arp table.`);
  if (s.l3 === l3) return;
  if (s.l3 !== undefined) throw invalid(`${what} needs ${l3}, but the rule already matches ${s.l3}.`);
  if (s.family === 'inet') {
    s.out.push({ type: 'meta', key: 'nfproto', dreg: 1 }, cmpEq(Buffer.from([L3_NUMBER[l3]])));
  } else {
    s.out.push({ type: 'meta', key: 'protocol', dreg: 1 }, cmpEq(ETHERTYPE[l3]));
  }
  s.l3 = l3;
}

function needL4(s: CompileState, l4: number): void {
  if (s.l4 === l4) return;
  if (s.l4 !== undefined) throw invalid(`The rule matches two transport protocols (${s.l4} and ${l4}).`);
  s.out.push({ type: 'meta', key: 'l4proto', dreg: 1 }, cmpEq(Buffer.from([l4])));
  s.l4 = l4;
}

function loadExpr(load: Load, len?: number): NftExpr {
  if (load.type === 'payload')
    return { type: 'payload', base: load.base, offset: load.offset, len: len ?? load.len, dreg: 1 };
  if (load.type === 'ct') return { type: 'ct', key: load.key as 'state', dreg: 1 };
  return { type: 'meta', key: load.key as 'mark', dreg: 1 };
}

/** A scalar of a field to bytes (interface names resolve to indexes). */
function fieldValue(s: CompileState, f: FieldDef, v: Scalar) {
  if (f.type === T.iface_index && typeof v === 'string' && !/^\d+$/.test(v)) {
    const index = s.interfaces?.index(v);
    if (index === undefined)
      throw invalid(
        `${f.path} "${v}": there is no interface ${v} (use ${f.path}name to match an interface that may not exist yet).`,
        {
          interface: v,
        },
      );
    return { kind: 'value' as const, bytes: hostU32(index) };
  }
  return parseValue(f.type, v);
}

function anonymousSet(s: CompileState, f: FieldDef, values: readonly Scalar[]): NftAnonymousSet {
  if (values.length === 0)
    throw invalid(`${f.path}: an empty list matches nothing; remove the match or name values.`);
  const seen = new Map<string, { from: Buffer; to: Buffer }>();
  let interval = false;
  for (const v of values) {
    const p = fieldValue(s, f, v);
    const k = p.kind === 'value' ? { from: p.bytes, to: p.bytes } : { from: p.from, to: p.to };
    if (p.kind === 'interval') interval = true;
    seen.set(`${k.from.toString('hex')}-${k.to.toString('hex')}`, k);
  }
  const keys = [...seen.values()];
  const elements = interval
    ? intervalElements(f.type, keys)
    : keys.map((k) => ({ key: k.from.toString('hex') }));
  return { flags: interval ? NFT_SET_F.INTERVAL : 0, keyType: f.type.id, keyLen: f.type.len, elements };
}

/** Start/end elements of intervals (sorted, not overlapping). */
function intervalElements(type: DataType, keys: { from: Buffer; to: Buffer }[]) {
  const sorted = [...keys].sort((a, b) => compareBytes(type, a.from, b.from));
  for (let i = 1; i < sorted.length; i++)
    if (compareBytes(type, sorted[i]!.from, sorted[i - 1]!.to) <= 0)
      throw invalid(
        `The list has overlapping values (${type.format(sorted[i - 1]!.from)} and ${type.format(sorted[i]!.from)}).`,
      );
  const out: { key: string; flags?: number }[] = [];
  for (const k of sorted) {
    out.push({ key: k.from.toString('hex') });
    const end = incrementBytes(k.to, type.host);
    if (end !== undefined) out.push({ key: end.toString('hex'), flags: 1 });
  }
  return out;
}

function incrementBytes(b: Buffer, host: boolean): Buffer | undefined {
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

function compileMatch(s: CompileState, f: FieldDef, value: MatchValue): void {
  const negated = typeof value === 'object' && !Array.isArray(value);
  const inner = negated ? value.not : value;
  if (f.l3 !== undefined) needL3(s, f.l3, f.path);
  if (f.l4 !== undefined) needL4(s, f.l4);
  if (isSetRef(inner)) {
    s.out.push(loadExpr(f.load), {
      type: 'lookup',
      sreg: 1,
      set: String(inner).slice(1),
      ...(negated ? { inverted: true } : {}),
    });
    return;
  }
  if (Array.isArray(inner)) {
    s.out.push(loadExpr(f.load), {
      type: 'lookup',
      sreg: 1,
      set: '__set%d',
      ...(negated ? { inverted: true } : {}),
      anonymous: anonymousSet(s, f, inner),
    });
    return;
  }
  if (f.path === 'ct.state' || f.path === 'ct.status') {
    const bits = readHostU32(f.type.parse(inner));
    s.out.push(loadExpr(f.load));
    if (negated && String(inner).split(',').length === 1) {
      s.out.push({ type: 'cmp', sreg: 1, op: 'neq', data: hostU32(bits).toString('hex') });
      return;
    }
    s.out.push(
      { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: hostU32(bits).toString('hex'), xor: '00000000' },
      { type: 'cmp', sreg: 1, op: negated ? 'eq' : 'neq', data: '00000000' },
    );
    return;
  }
  if ((f.path === 'iifname' || f.path === 'oifname') && typeof inner === 'string' && inner.endsWith('*')) {
    const prefix = inner.slice(0, -1);
    if (Buffer.byteLength(prefix) > 15)
      throw invalid(`${f.path} "${inner}" is longer than an interface name.`);
    s.out.push(loadExpr(f.load), {
      type: 'cmp',
      sreg: 1,
      op: negated ? 'neq' : 'eq',
      data: Buffer.from(prefix).toString('hex'),
    });
    return;
  }
  const v = fieldValue(s, f, inner);
  const op = negated ? 'neq' : 'eq';
  if (v.kind === 'value') {
    s.out.push(loadExpr(f.load), { type: 'cmp', sreg: 1, op, data: v.bytes.toString('hex') });
    return;
  }
  const isPrefix = typeof inner === 'string' && inner.includes('/') && f.type.prefixes === true;
  if (isPrefix) {
    const bits = prefixLength(v.from, v.to)!;
    if (bits > 0 && bits % 8 === 0 && f.load.type === 'payload') {
      const bytes = bits / 8;
      s.out.push(loadExpr(f.load, bytes), {
        type: 'cmp',
        sreg: 1,
        op,
        data: v.from.subarray(0, bytes).toString('hex'),
      });
      return;
    }
    const mask = Buffer.alloc(v.from.length);
    for (let i = 0; i < mask.length; i++) mask[i] = (0xff00 >> Math.max(0, Math.min(8, bits - i * 8))) & 0xff;
    s.out.push(
      loadExpr(f.load),
      {
        type: 'bitwise',
        sreg: 1,
        dreg: 1,
        len: v.from.length,
        mask: mask.toString('hex'),
        xor: Buffer.alloc(v.from.length).toString('hex'),
      },
      { type: 'cmp', sreg: 1, op, data: v.from.toString('hex') },
    );
    return;
  }
  s.out.push(loadExpr(f.load));
  if (negated)
    s.out.push({ type: 'range', sreg: 1, op: 'neq', from: v.from.toString('hex'), to: v.to.toString('hex') });
  else
    s.out.push(
      { type: 'cmp', sreg: 1, op: 'gte', data: v.from.toString('hex') },
      { type: 'cmp', sreg: 1, op: 'lte', data: v.to.toString('hex') },
    );
}

/** Parse a NAT target `addr[-addr][:port[-port]]` (IPv6 in brackets when a port follows). */
function parseNatTarget(to: string, what: string) {
  let addr = to;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.+))?$/.exec(to);
  if (bracket !== null) {
    addr = bracket[1]!;
    port = bracket[2];
  } else if (to.startsWith(':')) {
    addr = '';
    port = to.slice(1);
  } else if ((to.match(/:/g) ?? []).length === 1) {
    [addr, port] = to.split(':') as [string, string];
  }
  let family: 'ipv4' | 'ipv6' | undefined;
  let addrMin: Buffer | undefined;
  let addrMax: Buffer | undefined;
  if (addr !== '') {
    const type = addr.includes(':') ? T.ipv6_addr : T.ipv4_addr;
    family = type === T.ipv6_addr ? 'ipv6' : 'ipv4';
    const v = parseValue(type, addr);
    if (v.kind === 'value') addrMin = v.bytes;
    else {
      addrMin = v.from;
      addrMax = v.to;
    }
  }
  let portMin: Buffer | undefined;
  let portMax: Buffer | undefined;
  if (port !== undefined) {
    const v = parseValue(T.inet_service, port);
    if (v.kind === 'value') portMin = v.bytes;
    else {
      portMin = v.from;
      portMax = v.to;
    }
  }
  if (addrMin === undefined && portMin === undefined)
    throw invalid(`${what}: "${to}" names neither an address nor a port.`);
  return { family, addrMin, addrMax, portMin, portMax };
}

function natFlags(o: { random?: boolean; persistent?: boolean; fullyRandom?: boolean }): number {
  let f = 0;
  if (o.random === true) f |= NAT_FLAG.random;
  if (o.persistent === true) f |= NAT_FLAG.persistent;
  if (o.fullyRandom === true) f |= NAT_FLAG.fullyRandom;
  return f;
}

function compilePorts(
  s: CompileState,
  port: Scalar | undefined,
  what: string,
): { protoMin?: number; protoMax?: number } {
  if (port === undefined) return {};
  if (s.l4 === undefined)
    throw invalid(`${what} to a port needs a transport protocol match (l4proto, tcp or udp).`);
  const v = parseValue(T.inet_service, port);
  if (v.kind === 'value') {
    s.out.push({ type: 'immediate', dreg: 1, data: v.bytes.toString('hex') });
    return { protoMin: 1 };
  }
  s.out.push(
    { type: 'immediate', dreg: 1, data: v.from.toString('hex') },
    { type: 'immediate', dreg: 2, data: v.to.toString('hex') },
  );
  return { protoMin: 1, protoMax: 2 };
}

function compileStatement(s: CompileState, st: Statement): void {
  if (st === 'counter') {
    s.out.push({ type: 'counter' });
    return;
  }
  if (st === 'log') {
    s.out.push({ type: 'log' });
    return;
  }
  if (st === 'masquerade') {
    s.out.push({ type: 'masq' });
    return;
  }
  if ('log' in st) {
    const e: NftExpr = { type: 'log' };
    if (st.log.prefix !== undefined) e.prefix = st.log.prefix;
    if (st.log.group !== undefined) {
      e.group = st.log.group;
      // The kernel reports a zero snaplen/threshold as absent.
      if (st.log.snaplen) e.snaplen = st.log.snaplen;
      if (st.log.queueThreshold) e.qthreshold = st.log.queueThreshold;
    } else if (st.log.level !== undefined) {
      const level = LOG_LEVELS.indexOf(st.log.level);
      if (level < 0) throw invalid(`"${st.log.level}" is not a log level (${LOG_LEVELS.join(', ')}).`);
      e.level = level;
    }
    s.out.push(e);
    return;
  }
  if ('limit' in st) {
    const l = st.limit;
    const unit = l.unit ?? 'packets';
    const bytes = unit !== 'packets';
    const per = PERIODS[l.per];
    if (per === undefined)
      throw invalid(`limit: "${String(l.per)}" is not a period (second, minute, hour, day, week).`);
    if (!Number.isInteger(l.rate) || l.rate <= 0)
      throw invalid(`limit: the rate must be a positive integer (got ${l.rate}).`);
    s.out.push({
      type: 'limit',
      rate: bytes ? l.rate * BYTE_UNITS[unit] : l.rate,
      unit: per,
      burst: l.burst ?? (bytes ? 0 : 5),
      limitType: bytes ? 'bytes' : 'pkts',
      flags: l.over === true ? 1 : 0,
    });
    return;
  }
  if ('masquerade' in st || 'redirect' in st) {
    const o = 'masquerade' in st ? st.masquerade : st.redirect;
    const ports = compilePorts(s, o.port, 'masquerade' in st ? 'masquerade' : 'redirect');
    let flags = natFlags(o);
    if (ports.protoMin !== undefined) flags |= PROTO_SPECIFIED;
    const e: MasqExpr | RedirExpr = { type: 'masquerade' in st ? 'masq' : 'redir', ...ports };
    if (flags !== 0 || 'redirect' in st) e.flags = flags;
    s.out.push(e);
    return;
  }
  if ('snat' in st || 'dnat' in st) {
    const natType = 'snat' in st ? 'snat' : 'dnat';
    const o = 'snat' in st ? st.snat : st.dnat;
    const t = parseNatTarget(o.to, natType);
    let l3 = t.family ?? (o.family === 'ip6' ? 'ipv6' : o.family === 'ip' ? 'ipv4' : undefined);
    if (l3 === undefined) l3 = s.family === 'ip6' ? 'ipv6' : 'ipv4';
    if (o.family !== undefined && (o.family === 'ip6' ? 'ipv6' : 'ipv4') !== l3)
      throw invalid(`${natType} to ${o.to}: the address is not of family ${o.family}.`);
    const e: NftExpr & { type: 'nat' } = { type: 'nat', natType, family: L3_NUMBER[l3] };
    let reg = 1;
    if (t.addrMin !== undefined) {
      s.out.push({ type: 'immediate', dreg: reg, data: t.addrMin.toString('hex') });
      e.addrMin = reg++;
      if (t.addrMax !== undefined) {
        s.out.push({ type: 'immediate', dreg: reg, data: t.addrMax.toString('hex') });
        e.addrMax = reg++;
      }
    }
    let flags = natFlags(o);
    if (t.portMin !== undefined) {
      if (s.l4 === undefined)
        throw invalid(`${natType} to a port needs a transport protocol match (l4proto, tcp or udp).`);
      s.out.push({ type: 'immediate', dreg: reg, data: t.portMin.toString('hex') });
      e.protoMin = reg++;
      if (t.portMax !== undefined) {
        s.out.push({ type: 'immediate', dreg: reg, data: t.portMax.toString('hex') });
        e.protoMax = reg++;
      }
      flags |= PROTO_SPECIFIED;
    }
    if (flags !== 0) e.flags = flags;
    s.out.push(e);
    return;
  }
  if ('mark' in st) {
    s.out.push(
      { type: 'immediate', dreg: 1, data: T.mark.parse(st.mark.set).toString('hex') },
      { type: 'meta', key: 'mark', sreg: 1 },
    );
    return;
  }
  throw invalid(`Unknown statement ${JSON.stringify(st)}.`);
}

function codeOf(
  table: Readonly<Record<string, number>>,
  code: string | number | undefined,
  fallback: number,
  what: string,
): number {
  if (code === undefined) return fallback;
  if (typeof code === 'number') return code;
  const n = table[code];
  if (n === undefined) throw invalid(`"${code}" is not an ${what} code (${Object.keys(table).join(', ')}).`);
  return n;
}

function compileVerdict(s: CompileState, v: Verdict): void {
  if (v === 'reject') {
    if (s.family === 'ip') s.out.push({ type: 'reject', rejectType: 'icmp', code: 3 });
    else if (s.family === 'ip6') s.out.push({ type: 'reject', rejectType: 'icmp', code: 4 });
    else s.out.push({ type: 'reject', rejectType: 'icmpx', code: 1 });
    return;
  }
  if (typeof v === 'string') {
    s.out.push({ type: 'immediate', dreg: 0, verdict: { code: v } });
    return;
  }
  if ('jump' in v) {
    s.out.push({ type: 'immediate', dreg: 0, verdict: { code: 'jump', chain: v.jump } });
    return;
  }
  if ('goto' in v) {
    s.out.push({ type: 'immediate', dreg: 0, verdict: { code: 'goto', chain: v.goto } });
    return;
  }
  const r = v.reject;
  switch (r.type) {
    case 'tcp-reset':
      needL4(s, 6);
      s.out.push({ type: 'reject', rejectType: 'tcp-reset' });
      return;
    case 'icmpx':
      s.out.push({ type: 'reject', rejectType: 'icmpx', code: codeOf(ICMPX_CODES, r.code, 1, 'icmpx') });
      return;
    case 'icmp':
      needL3(s, 'ipv4', 'reject with icmp');
      s.out.push({ type: 'reject', rejectType: 'icmp', code: codeOf(ICMP_CODES, r.code, 3, 'icmp') });
      return;
    case 'icmpv6':
      needL3(s, 'ipv6', 'reject with icmpv6');
      s.out.push({ type: 'reject', rejectType: 'icmp', code: codeOf(ICMPV6_CODES, r.code, 4, 'icmpv6') });
      return;
  }
}

/**
 * The expressions of a readable rule, as `nft` would generate them. Throws
 * `OPDBUS_ERR_NFT_INVALID` naming what cannot be encoded.
 */
export function compileRule(rule: Rule, ctx: RuleContext): NftExpr[] {
  if (rule.expr !== undefined) {
    if (rule.match !== undefined || rule.statements !== undefined || rule.verdict !== undefined)
      throw invalid('A rule with `expr` (exact expressions) cannot also have match, statements or verdict.');
    return rule.expr.map((e) => structuredClone(e));
  }
  const s: CompileState = {
    out: [],
    family: ctx.family,
    l3: undefined,
    l4: undefined,
    interfaces: ctx.interfaces,
  };
  if (ctx.family === 'ip') s.l3 = 'ipv4';
  if (ctx.family === 'ip6') s.l3 = 'ipv6';
  const m = rule.match ?? {};
  // An explicit single nfproto / l4proto sets the context, so later matches add no dependency.
  for (const f of FIELDS) {
    const value = getPath(m, f.path);
    if (value === undefined) continue;
    compileMatch(s, f, value);
    if (f.path === 'nfproto' && typeof value !== 'object') s.l3 = value === 'ipv6' ? 'ipv6' : 'ipv4';
    if (f.path === 'l4proto' && typeof value !== 'object') s.l4 = T.inet_proto.parse(value)[0];
    if (f.path === 'ip.protocol' && typeof value !== 'object') s.l4 = T.inet_proto.parse(value)[0];
    if (f.path === 'ip6.nexthdr' && typeof value !== 'object') s.l4 = T.inet_proto.parse(value)[0];
  }
  for (const key of Object.keys(m)) {
    if (!FIELDS.some((f) => f.path === key || f.path.startsWith(`${key}.`)))
      throw invalid(
        `Unknown match "${key}"; the matches are ${[...new Set(FIELDS.map((f) => f.path.split('.')[0]))].join(', ')}.`,
      );
  }
  for (const st of rule.statements ?? []) compileStatement(s, st);
  if (rule.verdict !== undefined) compileVerdict(s, rule.verdict);
  return s.out;
}

// ------------------------------------------------------------------ decompile

class Unreadable extends Error {}
const fail = (why: string): never => {
  throw new Unreadable(why);
};

type Src =
  | { kind: 'meta'; key: string }
  | { kind: 'payload'; base: string; offset: number; len: number }
  | { kind: 'ct'; key: string }
  | { kind: 'masked'; src: Src; mask: Buffer };

type Rel =
  | { src: Src; op: 'eq' | 'neq'; value: Buffer }
  | { src: Src; op: 'range' | 'nrange'; from: Buffer; to: Buffer }
  | { src: Src; op: 'lookup'; set: string; anonymous: NftAnonymousSet | undefined; inverted: boolean };

function srcOf(e: NftExpr): Src | undefined {
  if (e.type === 'meta' && e.dreg !== undefined && e.sreg === undefined && typeof e.key === 'string')
    return { kind: 'meta', key: e.key };
  if (e.type === 'payload' && e.dreg !== undefined && e.sreg === undefined && typeof e.base === 'string')
    return { kind: 'payload', base: e.base, offset: e.offset, len: e.len };
  if (
    e.type === 'ct' &&
    e.dreg !== undefined &&
    e.sreg === undefined &&
    e.direction === undefined &&
    typeof e.key === 'string'
  )
    return { kind: 'ct', key: e.key };
  return undefined;
}

/** Split expressions into relations, statements and the verdict. */
function parse(exprs: readonly NftExpr[]) {
  const regs = new Map<number, Src>();
  const rels: Rel[] = [];
  let i = 0;
  for (; i < exprs.length; i++) {
    const e = exprs[i]!;
    const src = srcOf(e);
    if (src !== undefined) {
      regs.set((e as { dreg: number }).dreg, src);
      continue;
    }
    if (e.type === 'bitwise') {
      const s = regs.get(e.sreg);
      if (
        s === undefined ||
        e.op !== undefined ||
        e.mask === undefined ||
        e.xor === undefined ||
        /[^0]/.test(e.xor)
      )
        fail('bitwise');
      regs.set(e.dreg, { kind: 'masked', src: s!, mask: Buffer.from(e.mask!, 'hex') });
      continue;
    }
    if (e.type === 'cmp') {
      const s = regs.get(e.sreg) ?? fail('cmp without a load');
      const next = exprs[i + 1];
      if (e.op === 'gte' && next?.type === 'cmp' && next.op === 'lte' && next.sreg === e.sreg) {
        rels.push({
          src: s,
          op: 'range',
          from: Buffer.from(e.data, 'hex'),
          to: Buffer.from(next.data, 'hex'),
        });
        i++;
        continue;
      }
      if (e.op !== 'eq' && e.op !== 'neq') fail(`cmp ${e.op}`);
      rels.push({ src: s, op: e.op as 'eq' | 'neq', value: Buffer.from(e.data, 'hex') });
      continue;
    }
    if (e.type === 'range') {
      const s = regs.get(e.sreg) ?? fail('range without a load');
      rels.push({
        src: s,
        op: e.op === 'eq' ? 'range' : 'nrange',
        from: Buffer.from(e.from, 'hex'),
        to: Buffer.from(e.to, 'hex'),
      });
      continue;
    }
    if (e.type === 'lookup') {
      if (e.dreg !== undefined) fail('map lookup');
      const s = regs.get(e.sreg) ?? fail('lookup without a load');
      rels.push({ src: s, op: 'lookup', set: e.set, anonymous: e.anonymous, inverted: e.inverted === true });
      continue;
    }
    break;
  }
  // Statements and the verdict.
  const statements: NftExpr[] = [];
  let verdict: NftExpr | undefined;
  for (; i < exprs.length; i++) {
    const e = exprs[i]!;
    if (verdict !== undefined) fail('expression after the verdict');
    if ((e.type === 'immediate' && e.dreg === 0) || e.type === 'reject') verdict = e;
    else statements.push(e);
  }
  return { rels, statements, verdict };
}

const hex = (b: Buffer): string => b.toString('hex');

/** Is this relation a dependency (nfproto / l4proto / meta protocol equal to one value)? */
function depValue(r: Rel, key: string): number | string | undefined {
  if (r.src.kind !== 'meta' || r.src.key !== key || r.op !== 'eq') return undefined;
  return key === 'protocol' ? hex(r.value) : r.value.length === 1 ? r.value[0] : undefined;
}

function fieldFor(
  src: Src,
  l3: 'ipv4' | 'ipv6' | undefined,
  l4: number | undefined,
): { f: FieldDef; prefixLen?: number } | undefined {
  const base = src.kind === 'masked' ? src.src : src;
  for (const f of FIELDS) {
    const load = f.load;
    if (load.type === 'meta' && base.kind === 'meta' && base.key === load.key) return { f };
    if (load.type === 'ct' && base.kind === 'ct' && base.key === load.key) return { f };
    if (
      load.type === 'payload' &&
      base.kind === 'payload' &&
      base.base === load.base &&
      base.offset === load.offset
    ) {
      if (f.l3 !== undefined && f.l3 !== l3) continue;
      if (f.l4 !== undefined && f.l4 !== l4) continue;
      if (base.len === load.len) return { f };
      if (base.len < load.len && f.type.prefixes === true) return { f, prefixLen: base.len };
    }
  }
  return undefined;
}

function formatAnonymous(f: FieldDef, set: NftAnonymousSet, ctx: RuleContext): Scalar[] {
  if (set.keyLen !== f.type.len || set.dataType !== undefined) fail('anonymous set of another type');
  const interval = (set.flags & NFT_SET_F.INTERVAL) !== 0;
  const items = elementsFromNft({ types: [f.type], interval, map: undefined, name: f.path }, set.elements);
  return items.map((item) => {
    if (typeof item === 'object' && !Array.isArray(item)) fail('anonymous set element with extras');
    return f.type === T.iface_index ? ifaceName(ctx, item as number) : (item as Scalar);
  });
}

function ifaceName(ctx: RuleContext, index: number): Scalar {
  return ctx.interfaces?.name(index) ?? index;
}

function formatRel(r: Rel, f: FieldDef, prefixLen: number | undefined, ctx: RuleContext): MatchValue {
  const negate = (v: Scalar | Scalar[], n: boolean): MatchValue => (n ? { not: v } : v);
  if (r.op === 'lookup') {
    if (r.anonymous === undefined) return negate(`@${r.set}`, r.inverted);
    return negate(formatAnonymous(f, r.anonymous, ctx), r.inverted);
  }
  if (r.op === 'range' || r.op === 'nrange') {
    if (r.src.kind === 'masked' || prefixLen !== undefined || !f.type.ranges) fail('range on this field');
    if (r.from.length !== f.type.len) fail('range length');
    return negate(`${String(f.type.format(r.from))}-${String(f.type.format(r.to))}`, r.op === 'nrange');
  }
  const neg = r.op === 'neq';
  const value = (r as { value: Buffer }).value;
  if (f.path === 'ct.state' || f.path === 'ct.status') {
    if (r.src.kind === 'masked') {
      if (value.some((b) => b !== 0)) fail('ct state masked compare');
      const names = String(f.type.format(r.src.mask));
      // bitwise & bits; != 0 is "any of"; == 0 is "none of".
      return negate(names, !neg);
    }
    if (!neg) fail('ct state == without mask');
    const names = String(f.type.format(value));
    if (names.includes(',')) fail('ct state != several');
    return { not: names };
  }
  if (r.src.kind === 'masked') {
    // A prefix that does not end on a byte boundary: the mask must be a prefix mask.
    if (f.type.prefixes !== true) fail('mask on this field');
    const mask = r.src.mask;
    let bits = 0;
    for (const b of mask) {
      if (b === 0xff) bits += 8;
      else {
        bits += 8 - Math.log2((~b & 0xff) + 1);
        break;
      }
    }
    return negate(`${String(f.type.format(value))}/${bits}`, neg);
  }
  if (prefixLen !== undefined) {
    const full = Buffer.alloc(f.type.len);
    value.copy(full);
    return negate(`${String(f.type.format(full))}/${prefixLen * 8}`, neg);
  }
  if ((f.path === 'iifname' || f.path === 'oifname') && value.length < 16) {
    if (value.includes(0)) fail('ifname compare');
    return negate(`${value.toString('utf8')}*`, neg);
  }
  if (value.length !== f.type.len) fail(`${f.path} compares ${value.length} bytes`);
  if (f.type === T.iface_index) return negate(ifaceName(ctx, readHostU32(value)), neg);
  return negate(f.type.format(value), neg);
}

function decompileMatches(
  rels: readonly Rel[],
  ctx: RuleContext,
  consumedDeps: Set<number>,
): { match: RuleMatch; l3: 'ipv4' | 'ipv6' | undefined } {
  let l3: 'ipv4' | 'ipv6' | undefined =
    ctx.family === 'ip' ? 'ipv4' : ctx.family === 'ip6' ? 'ipv6' : undefined;
  let l4: number | undefined;
  let l3Dep: number | undefined;
  let l4Dep: number | undefined;
  const match: RuleMatch = {};
  const values: { index: number; path: string; value: MatchValue }[] = [];
  for (const [index, r] of rels.entries()) {
    if (ctx.family === 'inet') {
      const v = depValue(r, 'nfproto');
      if (v === 2 || v === 10) {
        l3 = v === 2 ? 'ipv4' : 'ipv6';
        l3Dep = index;
      }
    }
    if (ctx.family === 'bridge' || ctx.family === 'netdev') {
      const v = depValue(r, 'protocol');
      if (v === '0800' || v === '86dd') {
        l3 = v === '0800' ? 'ipv4' : 'ipv6';
        l3Dep = index;
        continue;
      }
    }
    const l4v = depValue(r, 'l4proto');
    if (typeof l4v === 'number') {
      l4 = l4v;
      l4Dep = index;
    }
    if (
      r.src.kind === 'payload' &&
      r.src.base === 'network' &&
      r.op === 'eq' &&
      r.src.len === 1 &&
      ((l3 === 'ipv4' && r.src.offset === 9) || (l3 === 'ipv6' && r.src.offset === 6))
    )
      l4 = r.value[0];
    const found = fieldFor(r.src, l3, l4);
    if (found === undefined) fail('a match this form does not cover');
    const { f, prefixLen } = found!;
    if (f.l3 !== undefined && l3Dep !== undefined) consumedDeps.add(l3Dep);
    if (f.l4 !== undefined && l4Dep !== undefined) consumedDeps.add(l4Dep);
    if (getPath(match, f.path) !== undefined || values.some((v) => v.path === f.path))
      fail(`two matches on ${f.path}`);
    values.push({ index, path: f.path, value: formatRel(r, f, prefixLen, ctx) });
  }
  for (const v of values) {
    if (consumedDeps.has(v.index)) continue;
    setPath(match, v.path, v.value);
  }
  // A `meta protocol` dependency must have been used.
  for (const [index, r] of rels.entries())
    if (depValue(r, 'protocol') !== undefined && !consumedDeps.has(index)) fail('meta protocol');
  return { match, l3 };
}

function decompileStatements(exprs: readonly NftExpr[], family: NftFamily): Statement[] {
  const out: Statement[] = [];
  const regs = new Map<number, Buffer>();
  const take = (r: number | undefined): Buffer | undefined => {
    if (r === undefined) return undefined;
    const v = regs.get(r) ?? fail('nat register without a value');
    regs.delete(r);
    return v;
  };
  const natOptions = (flags: number) => {
    const o: { random?: boolean; persistent?: boolean; fullyRandom?: boolean } = {};
    if (flags & NAT_FLAG.random) o.random = true;
    if (flags & NAT_FLAG.persistent) o.persistent = true;
    if (flags & NAT_FLAG.fullyRandom) o.fullyRandom = true;
    if (flags & ~(0x3 | NAT_FLAG.random | NAT_FLAG.persistent | NAT_FLAG.fullyRandom)) fail('nat flags');
    return o;
  };
  const portText = (min: Buffer | undefined, max: Buffer | undefined): Scalar | undefined => {
    if (min === undefined) return undefined;
    const a = min.readUInt16BE(0);
    if (max === undefined || max.equals(min)) return a;
    return `${a}-${max.readUInt16BE(0)}`;
  };
  for (const e of exprs) {
    switch (e.type) {
      case 'counter':
        out.push('counter');
        break;
      case 'immediate':
        if (e.data === undefined || e.dreg === 0) fail('immediate');
        regs.set(e.dreg, Buffer.from(e.data!, 'hex'));
        break;
      case 'log': {
        const o: Extract<Statement, { log: unknown }>['log'] = {};
        if (e.prefix !== undefined) o.prefix = e.prefix;
        if (e.group !== undefined) {
          o.group = e.group;
          if (e.snaplen) o.snaplen = e.snaplen;
          if (e.qthreshold) o.queueThreshold = e.qthreshold;
        } else if (e.level !== undefined && e.level !== 4) o.level = LOG_LEVELS[e.level] ?? fail('log level');
        if (e.flags) fail('log flags');
        out.push(Object.keys(o).length === 0 ? 'log' : { log: o });
        break;
      }
      case 'limit': {
        const per =
          (Object.entries(PERIODS) as [keyof typeof PERIODS, number][]).find(([, s]) => s === e.unit)?.[0] ??
          fail('limit unit');
        const l: Extract<Statement, { limit: unknown }>['limit'] = { rate: e.rate, per };
        if (e.limitType === 'bytes') {
          const unit =
            e.rate % BYTE_UNITS.mbytes === 0
              ? 'mbytes'
              : e.rate % BYTE_UNITS.kbytes === 0
                ? 'kbytes'
                : 'bytes';
          l.rate = e.rate / BYTE_UNITS[unit];
          l.unit = unit;
          if (e.burst !== 0) l.burst = e.burst;
        } else if (e.limitType === 'pkts') {
          if (e.burst !== 5) l.burst = e.burst;
        } else fail('limit type');
        if ((e.flags ?? 0) & 1) l.over = true;
        if ((e.flags ?? 0) & ~1) fail('limit flags');
        out.push({ limit: l });
        break;
      }
      case 'masq':
      case 'redir': {
        const min = take(e.protoMin);
        const max = e.protoMax === e.protoMin ? undefined : take(e.protoMax);
        const o: NonNullable<Extract<Statement, { masquerade: unknown }>['masquerade']> = natOptions(
          e.flags ?? 0,
        );
        const port = portText(min, max);
        if (port !== undefined) o.port = port;
        if (e.type === 'masq') out.push(Object.keys(o).length === 0 ? 'masquerade' : { masquerade: o });
        else out.push({ redirect: o });
        break;
      }
      case 'nat': {
        const addrMin = take(e.addrMin);
        const addrMax = e.addrMax === e.addrMin ? undefined : take(e.addrMax);
        const protoMin = take(e.protoMin);
        const protoMax = e.protoMax === e.protoMin ? undefined : take(e.protoMax);
        const v6 = e.family === 10;
        if (e.family !== 2 && e.family !== 10) fail('nat family');
        const type = v6 ? T.ipv6_addr : T.ipv4_addr;
        let addr = '';
        if (addrMin !== undefined) {
          if (addrMin.length !== type.len) fail('nat address length');
          addr = String(type.format(addrMin));
          if (addrMax !== undefined && !addrMax.equals(addrMin)) addr += `-${String(type.format(addrMax))}`;
        }
        const port = portText(protoMin, protoMax);
        let to = addr;
        if (port !== undefined) to = v6 && addr !== '' ? `[${addr}]:${port}` : `${addr}:${port}`;
        const o: Extract<Statement, { snat: unknown }>['snat'] = { to, ...natOptions(e.flags ?? 0) };
        if (addr === '' && family === 'inet') o.family = v6 ? 'ip6' : 'ip';
        out.push(e.natType === 'snat' ? { snat: o } : { dnat: o });
        break;
      }
      case 'meta': {
        if (e.key !== 'mark' || e.sreg === undefined) fail('meta set');
        out.push({ mark: { set: readHostU32(take(e.sreg)!) } });
        break;
      }
      default:
        fail(`statement ${e.type}`);
    }
  }
  if (regs.size > 0) fail('unused register');
  return out;
}

function decompileVerdict(
  e: NftExpr,
  family: NftFamily,
  match: RuleMatch,
  context: 'ipv4' | 'ipv6' | undefined,
): Verdict {
  if (e.type === 'immediate') {
    const v = e.verdict ?? fail('verdict');
    switch (v.code) {
      case 'accept':
      case 'drop':
      case 'return':
      case 'continue':
        return v.code;
      case 'jump':
        return { jump: v.chain ?? fail('jump') };
      case 'goto':
        return { goto: v.chain ?? fail('goto') };
      default:
        return fail(`verdict ${v.code}`);
    }
  }
  if (e.type !== 'reject') return fail('verdict');
  const code = e.code ?? 0;
  const name = (table: Readonly<Record<string, number>>): string | number =>
    Object.entries(table).find(([, n]) => n === code)?.[0] ?? code;
  if (e.rejectType === 'tcp-reset') return { reject: { type: 'tcp-reset' } };
  if (e.rejectType === 'icmpx') {
    if (code === 1 && family !== 'ip' && family !== 'ip6') return 'reject';
    return { reject: { type: 'icmpx', code: name(ICMPX_CODES) } };
  }
  if (e.rejectType === 'icmp') {
    const l3 = family === 'ip' ? 'ipv4' : family === 'ip6' ? 'ipv6' : context;
    if (family === 'ip' && code === 3) return 'reject';
    if (family === 'ip6' && code === 4) return 'reject';
    if (l3 === 'ipv6') {
      if (family === 'inet') delete match.nfproto;
      return { reject: { type: 'icmpv6', code: name(ICMPV6_CODES) } };
    }
    if (l3 === 'ipv4') {
      if (family === 'inet') delete match.nfproto;
      return { reject: { type: 'icmp', code: name(ICMP_CODES) } };
    }
  }
  return fail('reject');
}

/** The multiset of expression keys, for comparing a rule with its re-encoding. */
function exprBag(exprs: readonly NftExpr[]): string[] {
  return exprs.map(exprKey).sort();
}

/**
 * The readable form of a rule's expressions, or `{ expr }` (the exact expressions) when the rule
 * uses what the readable form does not cover. The name (comment) is the caller's.
 */
export function decompileRule(exprs: readonly NftExpr[], ctx: RuleContext): Omit<Rule, 'name'> {
  let rule: Omit<Rule, 'name'>;
  try {
    const { rels, statements, verdict } = parse(exprs);
    const consumed = new Set<number>();
    const { match, l3 } = decompileMatches(rels, ctx, consumed);
    const sts = decompileStatements(statements, ctx.family);
    rule = {};
    let v: Verdict | undefined;
    if (verdict !== undefined) v = decompileVerdict(verdict, ctx.family, match, l3);
    if (Object.keys(match).length > 0) rule.match = match;
    if (sts.length > 0) rule.statements = sts;
    if (v !== undefined) rule.verdict = v;
    // Only a form that writes back to the same expressions is shown.
    const again = compileRule(rule, ctx);
    if (stableEqual(exprBag(again), exprBag(exprs)) && sameOrder(again, exprs)) return rule;
  } catch {
    // Unreadable, or a form that cannot be written back: keep the exact expressions.
  }
  return { expr: exprs.map((e) => structuredClone(e)) };
}

function stableEqual(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Statements and the verdict must come in the same order (matches may be reordered). */
function sameOrder(a: readonly NftExpr[], b: readonly NftExpr[]): boolean {
  const tail = (l: readonly NftExpr[]) => {
    const { statements, verdict } = parse(l);
    return [...statements, ...(verdict === undefined ? [] : [verdict])].map(exprKey);
  };
  return stableEqual(tail(a), tail(b));
}

/**
 * A rule in the canonical form reading it back from the kernel gives: values as nft writes
 * them, lists sorted, implied dependencies dropped, defaults left out. Diffs compare this form.
 * Throws `OPDBUS_ERR_NFT_INVALID` when the rule cannot be encoded.
 */
export function normalizeRule(rule: Rule, family: NftFamily): Rule {
  const ctx: RuleContext = { family, interfaces: syntheticInterfaces() };
  const body = decompileRule(compileRule(rule, ctx), ctx);
  return rule.name === undefined ? body : { name: rule.name, ...body };
}

/** Verdict codes by name (re-exported for the risk evaluation and docs). */
export const verdictCodes = VERDICT_CODE;
/** The ct state names and bits. */
export const ctStates = CT_STATES;
/** Interface names are 16 bytes on the wire. */
export const ifname = ifnameBytes;
