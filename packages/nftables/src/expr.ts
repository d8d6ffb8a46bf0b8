/**
 * The nf_tables expressions of a rule, as the kernel sees them (the register machine `nft
 * --debug=netlink` prints), encoded to and decoded from NFTA_RULE_EXPRESSIONS.
 *
 * Each known expression is decoded into a plain, JSON-friendly object: registers and numbers as
 * numbers, enumerations by name (`key: 'l4proto'`, `op: 'eq'`, `base: 'transport'`), data as hex
 * in the kernel's byte order. An expression this module does not know, or a known one carrying
 * an attribute it does not know, is kept as `{ type: 'unknown', name, data }` with its attribute
 * bytes in hex, so that every rule can be read and written back byte for byte.
 */
import type { Writer } from '@opdbus/netlink';
import { NFTA_DATA, NFTA_EXPR, NFTA_LIST_ELEM, NFTA_VERDICT, VERDICT_CODE } from './constants.js';
import { invalid } from './errors.js';
import { be32, be64, forEachAttr, put, sbe32, str } from './tlv.js';

/** A verdict: accept, drop, return … or a jump/goto to a chain. */
export interface NftVerdict {
  code: 'accept' | 'drop' | 'stolen' | 'queue' | 'repeat' | 'continue' | 'break' | 'jump' | 'goto' | 'return';
  /** The chain of a jump or goto. */
  chain?: string;
}

/** A set element as the kernel holds it (keys and data in the kernel's byte order, hex). */
export interface NftElementData {
  /** The key, hex. */
  key: string;
  /** The end of a range (concatenated interval sets, NFTA_SET_ELEM_KEY_END), hex. */
  keyEnd?: string;
  /** NFT_SET_ELEM_* flags (1: the end of an interval). */
  flags?: number;
  /** A map's data, hex. */
  data?: string;
  /** A verdict map's verdict. */
  verdict?: NftVerdict;
  /** The element's timeout in milliseconds. */
  timeout?: number;
  /** Milliseconds left before it expires (read only). */
  expiration?: number;
  /** libnftnl udata (the element's comment), hex. */
  userdata?: string;
}

/** The definition of an anonymous set a `lookup` uses, created with the rule in the same batch. */
export interface NftAnonymousSet {
  flags: number;
  keyType: number;
  keyLen: number;
  dataType?: number;
  dataLen?: number;
  /** Field lengths of a concatenated key (NFTA_SET_DESC_CONCAT). */
  concat?: number[];
  elements: NftElementData[];
}

/** meta keys (NFT_META_*). */
export const META_KEYS = [
  'len',
  'protocol',
  'priority',
  'mark',
  'iif',
  'oif',
  'iifname',
  'oifname',
  'iiftype',
  'oiftype',
  'skuid',
  'skgid',
  'nftrace',
  'rtclassid',
  'secmark',
  'nfproto',
  'l4proto',
  'bri_iifname',
  'bri_oifname',
  'pkttype',
  'cpu',
  'iifgroup',
  'oifgroup',
  'cgroup',
  'prandom',
  'secpath',
  'iifkind',
  'oifkind',
  'bri_iifpvid',
  'bri_iifvproto',
  'time_ns',
  'time_day',
  'time_hour',
  'sdif',
  'sdifname',
  'bri_broute',
] as const;
/** ct keys (NFT_CT_*). */
export const CT_KEYS = [
  'state',
  'direction',
  'status',
  'mark',
  'secmark',
  'expiration',
  'helper',
  'l3protocol',
  'src',
  'dst',
  'protocol',
  'proto_src',
  'proto_dst',
  'labels',
  'pkts',
  'bytes',
  'avgpkt',
  'zone',
  'eventmask',
  'src_ip',
  'dst_ip',
  'src_ip6',
  'dst_ip6',
  'id',
] as const;
/** cmp operators (NFT_CMP_*). */
export const CMP_OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'] as const;
/** payload bases (NFT_PAYLOAD_*). */
export const PAYLOAD_BASES = ['ll', 'network', 'transport', 'inner'] as const;
/** bitwise operations (NFT_BITWISE_*). */
export const BITWISE_OPS = ['bool', 'lshift', 'rshift', 'and', 'or', 'xor'] as const;
/** byteorder operations. */
export const BYTEORDER_OPS = ['ntoh', 'hton'] as const;
/** limit types. */
export const LIMIT_TYPES = ['pkts', 'bytes'] as const;
/** nat types. */
export const NAT_TYPES = ['snat', 'dnat'] as const;
/** reject types (NFT_REJECT_*). */
export const REJECT_TYPES = ['icmp', 'tcp-reset', 'icmpx'] as const;

type MetaKey = (typeof META_KEYS)[number];
type CtKey = (typeof CT_KEYS)[number];

/** Load meta information into a register, or set it from one. */
export interface MetaExpr {
  type: 'meta';
  key: MetaKey | number;
  dreg?: number;
  sreg?: number;
}
/** Load packet bytes into a register (or write them from one, with checksum fix-up). */
export interface PayloadExpr {
  type: 'payload';
  base: (typeof PAYLOAD_BASES)[number] | number;
  offset: number;
  len: number;
  dreg?: number;
  sreg?: number;
  csumType?: number;
  csumOffset?: number;
  csumFlags?: number;
}
/** Compare a register with data; the rule stops unless it holds. */
export interface CmpExpr {
  type: 'cmp';
  sreg: number;
  op: (typeof CMP_OPS)[number];
  /** hex */
  data: string;
}
/** `dreg = (sreg & mask) ^ xor` over `len` bytes (or a shift by `data`). */
export interface BitwiseExpr {
  type: 'bitwise';
  sreg: number;
  dreg: number;
  len: number;
  op?: (typeof BITWISE_OPS)[number] | number;
  mask?: string;
  xor?: string;
  data?: string;
  sreg2?: number;
}
/** `from <= sreg <= to` (or its negation). */
export interface RangeExpr {
  type: 'range';
  sreg: number;
  op: 'eq' | 'neq';
  from: string;
  to: string;
}
/** Look the register up in a set (or a map, writing the data to `dreg`). */
export interface LookupExpr {
  type: 'lookup';
  sreg: number;
  /** The set's name (`__set3` for an anonymous one). */
  set: string;
  setId?: number;
  dreg?: number;
  /** NFT_LOOKUP_F_INV: match when the key is NOT in the set. */
  inverted?: boolean;
  /** Set when `set` is an anonymous set: its definition, created with the rule. */
  anonymous?: NftAnonymousSet;
}
/** Load conntrack information into a register (or set it). */
export interface CtExpr {
  type: 'ct';
  key: CtKey | number;
  dreg?: number;
  sreg?: number;
  direction?: number;
}
/** Load a constant into a register, or a verdict into the verdict register. */
export interface ImmediateExpr {
  type: 'immediate';
  dreg: number;
  data?: string;
  verdict?: NftVerdict;
}
/** Count packets and bytes. */
export interface CounterExpr {
  type: 'counter';
  packets?: number;
  bytes?: number;
}
/** Log the packet (to the kernel log, or to an nflog group). */
export interface LogExpr {
  type: 'log';
  prefix?: string;
  group?: number;
  snaplen?: number;
  qthreshold?: number;
  level?: number;
  flags?: number;
}
/** Token-bucket limit: the rule stops when over the rate (or under it, with flags 1). */
export interface LimitExpr {
  type: 'limit';
  rate: number;
  /** The period in seconds. */
  unit: number;
  burst: number;
  limitType: (typeof LIMIT_TYPES)[number];
  flags?: number;
}
/** Reject the packet with an ICMP error or a TCP reset. */
export interface RejectExpr {
  type: 'reject';
  rejectType: (typeof REJECT_TYPES)[number] | number;
  /** The ICMP code (absent for a TCP reset). */
  code?: number;
}
/** Source or destination NAT to the addresses/ports in registers. */
export interface NatExpr {
  type: 'nat';
  natType: (typeof NAT_TYPES)[number];
  /** NFPROTO of the addresses (2: ipv4, 10: ipv6). */
  family: number;
  addrMin?: number;
  addrMax?: number;
  protoMin?: number;
  protoMax?: number;
  flags?: number;
}
/** Masquerade: source NAT to the outgoing interface's address. */
export interface MasqExpr {
  type: 'masq';
  flags?: number;
  protoMin?: number;
  protoMax?: number;
}
/** Redirect to the local machine. */
export interface RedirExpr {
  type: 'redir';
  flags?: number;
  protoMin?: number;
  protoMax?: number;
}
/** Convert byte order. */
export interface ByteorderExpr {
  type: 'byteorder';
  sreg: number;
  dreg: number;
  op: (typeof BYTEORDER_OPS)[number] | number;
  len: number;
  size: number;
}
/** Any other expression, kept as its attribute bytes. */
export interface UnknownExpr {
  type: 'unknown';
  /** The expression's kernel name (`fib`, `exthdr`, `dynset` …). */
  name: string;
  /** NFTA_EXPR_DATA's payload (nested attributes), hex. */
  data: string;
}

/** One nf_tables expression. */
export type NftExpr =
  | MetaExpr
  | PayloadExpr
  | CmpExpr
  | BitwiseExpr
  | RangeExpr
  | LookupExpr
  | CtExpr
  | ImmediateExpr
  | CounterExpr
  | LogExpr
  | LimitExpr
  | RejectExpr
  | NatExpr
  | MasqExpr
  | RedirExpr
  | ByteorderExpr
  | UnknownExpr;

// ------------------------------------------------------------------ data and verdicts

/** Encode an NFTA_DATA_VALUE nest holding `hex`. */
export function putData(w: Writer, type: number, hex: string): void {
  const n = put.nest(w, type);
  const a = w.beginAttr(NFTA_DATA.VALUE);
  const len = hex.length >> 1;
  w.ensure(len);
  w.buf.write(hex, w.pos, len, 'hex');
  w.pos += len;
  w.endAttr(a);
  put.end(w, n);
}

/** Encode an NFTA_DATA_VERDICT nest. */
export function putVerdict(w: Writer, type: number, v: NftVerdict): void {
  const n = put.nest(w, type);
  const vn = put.nest(w, NFTA_DATA.VERDICT);
  put.sbe32(w, NFTA_VERDICT.CODE, VERDICT_CODE[v.code]);
  if (v.code === 'jump' || v.code === 'goto') {
    if (v.chain === undefined) throw invalid(`A ${v.code} verdict needs a chain.`);
    put.str(w, NFTA_VERDICT.CHAIN, v.chain);
  }
  put.end(w, vn);
  put.end(w, n);
}

const verdictNames = new Map<number, NftVerdict['code']>(
  Object.entries(VERDICT_CODE).map(([k, v]) => [v, k as NftVerdict['code']]),
);

/** Decode an NFTA_DATA_* nest: a value (hex) or a verdict. */
export function readData(buf: Buffer, s: number, e: number): { value?: string; verdict?: NftVerdict } {
  const out: { value?: string; verdict?: NftVerdict } = {};
  forEachAttr(buf, s, e, (t, a, b) => {
    if (t === NFTA_DATA.VALUE) out.value = buf.toString('hex', a, b);
    else if (t === NFTA_DATA.VERDICT) {
      let code = 0;
      let chain: string | undefined;
      forEachAttr(buf, a, b, (vt, va, vb) => {
        if (vt === NFTA_VERDICT.CODE) code = sbe32(buf, va);
        else if (vt === NFTA_VERDICT.CHAIN) chain = str(buf, va, vb);
      });
      const name = verdictNames.get(code);
      if (name === undefined) throw new Error(`unknown verdict code ${code}`);
      out.verdict = chain === undefined ? { code: name } : { code: name, chain };
    }
  });
  return out;
}

// ------------------------------------------------------------------ generic attribute tables

type FieldKind =
  | { kind: 'u32' }
  | { kind: 's32' }
  | { kind: 'u64' }
  | { kind: 'u8' }
  | { kind: 'be16' }
  | { kind: 'string' }
  | { kind: 'data' }
  | { kind: 'enum'; names: readonly string[] }
  | { kind: 'bool32' };

interface ExprDef {
  /** attribute number → field name and kind */
  fields: Readonly<Record<number, readonly [string, FieldKind]>>;
}

const u32: FieldKind = { kind: 'u32' };
const u64: FieldKind = { kind: 'u64' };
const data: FieldKind = { kind: 'data' };
const en = (names: readonly string[]): FieldKind => ({ kind: 'enum', names });

const defs: Readonly<Record<string, ExprDef>> = {
  meta: { fields: { 1: ['dreg', u32], 2: ['key', en(META_KEYS)], 3: ['sreg', u32] } },
  payload: {
    fields: {
      1: ['dreg', u32],
      2: ['base', en(PAYLOAD_BASES)],
      3: ['offset', u32],
      4: ['len', u32],
      5: ['sreg', u32],
      6: ['csumType', u32],
      7: ['csumOffset', u32],
      8: ['csumFlags', u32],
    },
  },
  cmp: { fields: { 1: ['sreg', u32], 2: ['op', en(CMP_OPS)], 3: ['data', data] } },
  bitwise: {
    fields: {
      1: ['sreg', u32],
      2: ['dreg', u32],
      3: ['len', u32],
      4: ['mask', data],
      5: ['xor', data],
      6: ['op', en(BITWISE_OPS)],
      7: ['data', data],
      8: ['sreg2', u32],
    },
  },
  range: { fields: { 1: ['sreg', u32], 2: ['op', en(['eq', 'neq'])], 3: ['from', data], 4: ['to', data] } },
  lookup: {
    fields: {
      1: ['set', { kind: 'string' }],
      2: ['sreg', u32],
      3: ['dreg', u32],
      4: ['setId', u32],
      5: ['inverted', { kind: 'bool32' }],
    },
  },
  ct: {
    fields: { 1: ['dreg', u32], 2: ['key', en(CT_KEYS)], 3: ['direction', { kind: 'u8' }], 4: ['sreg', u32] },
  },
  immediate: { fields: { 1: ['dreg', u32], 2: ['data', data] } },
  counter: { fields: { 1: ['bytes', u64], 2: ['packets', u64] } },
  log: {
    fields: {
      1: ['group', { kind: 'be16' }],
      2: ['prefix', { kind: 'string' }],
      3: ['snaplen', u32],
      4: ['qthreshold', { kind: 'be16' }],
      5: ['level', u32],
      6: ['flags', u32],
    },
  },
  limit: {
    fields: {
      1: ['rate', u64],
      2: ['unit', u64],
      3: ['burst', u32],
      4: ['limitType', en(LIMIT_TYPES)],
      5: ['flags', u32],
    },
  },
  reject: { fields: { 1: ['rejectType', en(REJECT_TYPES)], 2: ['code', { kind: 'u8' }] } },
  nat: {
    fields: {
      1: ['natType', en(NAT_TYPES)],
      2: ['family', u32],
      3: ['addrMin', u32],
      4: ['addrMax', u32],
      5: ['protoMin', u32],
      6: ['protoMax', u32],
      7: ['flags', u32],
    },
  },
  masq: { fields: { 1: ['flags', u32], 2: ['protoMin', u32], 3: ['protoMax', u32] } },
  redir: { fields: { 1: ['protoMin', u32], 2: ['protoMax', u32], 3: ['flags', u32] } },
  byteorder: {
    fields: {
      1: ['sreg', u32],
      2: ['dreg', u32],
      3: ['op', en(BYTEORDER_OPS)],
      4: ['len', u32],
      5: ['size', u32],
    },
  },
};

/** Attributes the kernel dumps that carry nothing (padding). */
const PAD: Readonly<Record<string, number>> = { counter: 3, limit: 6 };

const reverseFields = new Map<string, Map<string, readonly [number, FieldKind]>>(
  Object.entries(defs).map(([name, def]) => [
    name,
    new Map(Object.entries(def.fields).map(([num, [field, kind]]) => [field, [Number(num), kind] as const])),
  ]),
);

class UnknownAttribute extends Error {}

/** Decode one NFTA_LIST_ELEM (an expression) at `buf[s, e)`. */
function decodeExpr(buf: Buffer, s: number, e: number): NftExpr {
  let name = '';
  let ds = -1;
  let de = -1;
  forEachAttr(buf, s, e, (t, a, b) => {
    if (t === NFTA_EXPR.NAME) name = str(buf, a, b);
    else if (t === NFTA_EXPR.DATA) {
      ds = a;
      de = b;
    }
  });
  const def = defs[name];
  const raw = (): UnknownExpr => ({ type: 'unknown', name, data: ds < 0 ? '' : buf.toString('hex', ds, de) });
  if (def === undefined) return raw();
  const out: Record<string, unknown> = { type: name };
  if (ds < 0) return out as unknown as NftExpr;
  try {
    forEachAttr(buf, ds, de, (t, a, b) => {
      if (PAD[name] === t) return;
      const f = def.fields[t];
      if (f === undefined) throw new UnknownAttribute();
      const [field, kind] = f;
      switch (kind.kind) {
        case 'u32':
          out[field] = be32(buf, a);
          break;
        case 's32':
          out[field] = sbe32(buf, a);
          break;
        case 'u64':
          out[field] = be64(buf, a);
          break;
        case 'u8':
          out[field] = buf[a];
          break;
        case 'be16':
          out[field] = buf.readUInt16BE(a);
          break;
        case 'string':
          out[field] = str(buf, a, b);
          break;
        case 'bool32':
          out[field] = (be32(buf, a) & 1) !== 0;
          if ((be32(buf, a) & ~1) !== 0) throw new UnknownAttribute();
          break;
        case 'enum': {
          const n = be32(buf, a);
          out[field] = kind.names[n] ?? n;
          break;
        }
        case 'data': {
          const d = readData(buf, a, b);
          if (d.verdict !== undefined && name === 'immediate') out.verdict = d.verdict;
          else if (d.value !== undefined) out[field] = d.value;
          else throw new UnknownAttribute();
          break;
        }
      }
    });
  } catch (err) {
    if (err instanceof UnknownAttribute) return raw();
    throw err;
  }
  // Normalise what the kernel adds on dump to what one writes.
  if (name === 'lookup' && out.inverted === false) delete out.inverted;
  if (name === 'bitwise' && out.op === 'bool') delete out.op;
  if (name === 'lookup' && out.dreg === undefined) delete out.dreg;
  return out as unknown as NftExpr;
}

/** Decode NFTA_RULE_EXPRESSIONS (a list of NFTA_LIST_ELEM). */
export function decodeExpressions(buf: Buffer, s: number, e: number): NftExpr[] {
  const out: NftExpr[] = [];
  forEachAttr(buf, s, e, (t, a, b) => {
    if (t === NFTA_LIST_ELEM) out.push(decodeExpr(buf, a, b));
  });
  return out;
}

/** Encode one expression as an NFTA_LIST_ELEM (the lookup's set id must be resolved by the caller). */
export function encodeExpr(w: Writer, expr: NftExpr): void {
  const elem = put.nest(w, NFTA_LIST_ELEM);
  if (expr.type === 'unknown') {
    put.str(w, NFTA_EXPR.NAME, expr.name);
    const d = put.nest(w, NFTA_EXPR.DATA);
    w.bytes(Buffer.from(expr.data, 'hex'));
    put.end(w, d);
    put.end(w, elem);
    return;
  }
  put.str(w, NFTA_EXPR.NAME, expr.type);
  const d = put.nest(w, NFTA_EXPR.DATA);
  const fields = reverseFields.get(expr.type)!;
  const record = expr as unknown as Record<string, unknown>;
  for (const [field, [num, kind]] of fields) {
    const value = record[field];
    if (value === undefined) {
      if (expr.type === 'immediate' && field === 'data' && expr.verdict !== undefined)
        putVerdict(w, num, expr.verdict);
      continue;
    }
    switch (kind.kind) {
      case 'u32':
        put.be32(w, num, value as number);
        break;
      case 's32':
        put.sbe32(w, num, value as number);
        break;
      case 'u64':
        put.be64(w, num, value as number);
        break;
      case 'u8':
        put.u8(w, num, value as number);
        break;
      case 'be16':
        put.be16(w, num, value as number);
        break;
      case 'string':
        put.str(w, num, value as string);
        break;
      case 'bool32':
        if (value === true) put.be32(w, num, 1);
        break;
      case 'enum': {
        const n = typeof value === 'number' ? value : kind.names.indexOf(value as string);
        if (n < 0) throw invalid(`Unknown ${field} ${JSON.stringify(value)} in a ${expr.type} expression.`);
        put.be32(w, num, n);
        break;
      }
      case 'data':
        putData(w, num, value as string);
        break;
    }
  }
  put.end(w, d);
  put.end(w, elem);
}

/** A stable text of an expression, for comparing rules (counter values and set ids left out). */
export function exprKey(expr: NftExpr): string {
  switch (expr.type) {
    case 'counter':
      return 'counter';
    case 'lookup': {
      const { setId: _id, anonymous, set, ...rest } = expr;
      return stableJson({ ...rest, set: anonymous === undefined ? set : anonymousKey(anonymous) });
    }
    case 'log': {
      // The kernel reports the default level (4, warning) of a kernel-log logger.
      const { snaplen, qthreshold, ...rest } = expr;
      const level = expr.level ?? (expr.group === undefined ? 4 : undefined);
      return stableJson({
        ...rest,
        level,
        snaplen: snaplen || undefined,
        qthreshold: qthreshold || undefined,
      });
    }
    case 'nat': {
      // The kernel fills in the range maxima and MAP_IPS/PROTO_SPECIFIED from the registers.
      const { flags = 0, ...rest } = expr;
      return stableJson({
        ...rest,
        addrMax: expr.addrMax ?? expr.addrMin,
        protoMax: expr.protoMax ?? expr.protoMin,
        flags: flags & ~0x3,
      });
    }
    case 'masq':
    case 'redir': {
      const { flags = 0, ...rest } = expr;
      return stableJson({ ...rest, protoMax: expr.protoMax ?? expr.protoMin, flags: flags & ~0x2 });
    }
    default:
      return stableJson(expr);
  }
}

/** JSON with object keys sorted, at every level (undefined properties left out, as JSON does). */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + stableJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined || typeof v === 'function') continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${stableJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * The elements of an interval set as (start, end) pairs: `nft` sends an end element at key 0
 * before the first interval, which holds nothing, and the kernel lists them in any order.
 */
function canonicalIntervals(elements: readonly NftElementData[]): NftElementData[] {
  const sorted = [...elements].sort((a, b) =>
    a.key < b.key ? -1 : a.key > b.key ? 1 : (a.flags ?? 0) & 1 ? -1 : (b.flags ?? 0) & 1 ? 1 : 0,
  );
  const out: NftElementData[] = [];
  for (const [i, el] of sorted.entries()) {
    const end = ((el.flags ?? 0) & 1) !== 0;
    const prev = sorted[i - 1];
    if (end && (prev === undefined || ((prev.flags ?? 0) & 1) !== 0)) continue;
    out.push(el);
  }
  return out;
}

function anonymousKey(set: NftAnonymousSet): string {
  const elements = ((set.flags & 4) !== 0 ? canonicalIntervals(set.elements) : set.elements)
    .map((el) => JSON.stringify([el.key, el.keyEnd ?? '', el.flags ?? 0, el.data ?? '', el.verdict ?? '']))
    .sort();
  return stableJson({ ...set, elements });
}
