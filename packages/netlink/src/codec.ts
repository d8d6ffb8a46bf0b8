/**
 * A generic netlink attribute codec, driven by declarative attribute sets.
 *
 * An {@link AttributeSet} maps attribute numbers to names and kinds: scalars (`u32`, `string`,
 * `ip`, `mac` ...), fixed structs, nested sets, nested sets chosen by a sibling's value
 * (`IFLA_INFO_DATA` by `IFLA_INFO_KIND`), a header plus attributes (`VETH_INFO_PEER` carries an
 * `ifinfomsg` and link attributes) and indexed arrays. The same set encodes a plain object into
 * attributes and decodes attributes into a plain object, so nested attributes are never
 * special-cased per request. Decoding reads straight from the receive buffer (no copy per
 * message); values are materialised as numbers, strings and plain objects.
 */
import { endianness } from 'node:os';
import { NLA_F_NESTED, NLA_TYPE_MASK } from './constants.js';
import { invalid } from './errors.js';
import { formatIp, formatMac, parseIp, parseMac } from './ip.js';

const LE = endianness() === 'LE';

/** Read helpers in host byte order (netlink uses host order except where marked big-endian). */
export const rd = {
  u16: LE ? (b: Buffer, o: number) => b.readUInt16LE(o) : (b: Buffer, o: number) => b.readUInt16BE(o),
  u32: LE ? (b: Buffer, o: number) => b.readUInt32LE(o) : (b: Buffer, o: number) => b.readUInt32BE(o),
  s32: LE ? (b: Buffer, o: number) => b.readInt32LE(o) : (b: Buffer, o: number) => b.readInt32BE(o),
  s16: LE ? (b: Buffer, o: number) => b.readInt16LE(o) : (b: Buffer, o: number) => b.readInt16BE(o),
  u64: LE ? (b: Buffer, o: number) => b.readBigUInt64LE(o) : (b: Buffer, o: number) => b.readBigUInt64BE(o),
  s64: LE ? (b: Buffer, o: number) => b.readBigInt64LE(o) : (b: Buffer, o: number) => b.readBigInt64BE(o),
};

/** A growable output buffer for building netlink messages. */
export class Writer {
  /** The bytes written so far are `buf.subarray(0, pos)`. */
  buf: Buffer;
  /** The write position. */
  pos = 0;

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Make room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Forget everything written. */
  reset(): void {
    this.pos = 0;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    if (LE) this.buf.writeUInt16LE(v & 0xffff, this.pos);
    else this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }
  s16(v: number): void {
    this.ensure(2);
    if (LE) this.buf.writeInt16LE(v, this.pos);
    else this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    if (LE) this.buf.writeUInt32LE(v >>> 0, this.pos);
    else this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  s32(v: number): void {
    this.ensure(4);
    if (LE) this.buf.writeInt32LE(v | 0, this.pos);
    else this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
  }
  u64(v: bigint | number): void {
    this.ensure(8);
    if (LE) this.buf.writeBigUInt64LE(BigInt(v), this.pos);
    else this.buf.writeBigUInt64BE(BigInt(v), this.pos);
    this.pos += 8;
  }
  s64(v: bigint | number): void {
    this.ensure(8);
    if (LE) this.buf.writeBigInt64LE(BigInt(v), this.pos);
    else this.buf.writeBigInt64BE(BigInt(v), this.pos);
    this.pos += 8;
  }
  be16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }
  be32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  bytes(v: Uint8Array): void {
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }
  /** A string, NUL-terminated. */
  cstring(v: string): void {
    const n = Buffer.byteLength(v);
    this.ensure(n + 1);
    this.buf.write(v, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
  }
  /** Zero bytes up to the next multiple of 4. */
  align(): void {
    const pad = (4 - (this.pos & 3)) & 3;
    this.ensure(pad);
    for (let i = 0; i < pad; i++) this.buf[this.pos++] = 0;
  }
  /** Start an attribute of `type`; returns its start for {@link Writer.endAttr}. */
  beginAttr(type: number): number {
    this.ensure(4);
    const start = this.pos;
    this.pos += 4;
    if (LE) this.buf.writeUInt16LE(type & 0xffff, start + 2);
    else this.buf.writeUInt16BE(type & 0xffff, start + 2);
    return start;
  }
  /** Finish an attribute: write its length and pad to 4 bytes. */
  endAttr(start: number): void {
    const len = this.pos - start;
    if (len > 0xffff) throw invalid(`A netlink attribute of ${len} bytes exceeds the 65535-byte limit.`);
    if (LE) this.buf.writeUInt16LE(len, start);
    else this.buf.writeUInt16BE(len, start);
    this.align();
  }
  /** Overwrite a u16 at `at` (host order), e.g. a length. */
  patchU16(at: number, v: number): void {
    if (LE) this.buf.writeUInt16LE(v & 0xffff, at);
    else this.buf.writeUInt16BE(v & 0xffff, at);
  }
  /** Overwrite a u32 at `at` (host order), e.g. a length. */
  patchU32(at: number, v: number): void {
    if (LE) this.buf.writeUInt32LE(v >>> 0, at);
    else this.buf.writeUInt32BE(v >>> 0, at);
  }
}

/** Kinds of a struct field. */
export type FieldKind = 'u8' | 'u16' | 's16' | 'u32' | 's32' | 'u64' | 'be16' | 'be32' | 'pad8' | 'pad16';

const fieldSize: Record<FieldKind, number> = {
  u8: 1,
  u16: 2,
  s16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  be16: 2,
  be32: 4,
  pad8: 1,
  pad16: 2,
};

/** A fixed C struct (a message header such as `ifinfomsg`, or a struct attribute such as `ifa_cacheinfo`). */
export class StructDef {
  readonly name: string;
  readonly size: number;
  readonly fields: ReadonlyArray<{ name: string; kind: FieldKind; offset: number }>;
  #decoder: ((buf: Buffer, off: number, out: Record<string, unknown>) => Record<string, unknown>) | undefined;

  /** Fields in order; offsets follow C layout for the given kinds (natural alignment). */
  constructor(name: string, fields: ReadonlyArray<readonly [string, FieldKind]>) {
    this.name = name;
    let offset = 0;
    const out: { name: string; kind: FieldKind; offset: number }[] = [];
    for (const [fieldName, kind] of fields) {
      const size = fieldSize[kind];
      offset = (offset + size - 1) & ~(size - 1);
      out.push({ name: fieldName, kind, offset });
      offset += size;
    }
    this.fields = out;
    this.size = (offset + 3) & ~3;
  }

  /** Decode at `off` into `out` (pad fields are skipped). Generated once per struct. */
  decode(buf: Buffer, off: number, out: Record<string, unknown> = {}): Record<string, unknown> {
    this.#decoder ??= compileStructDecoder(this);
    return this.#decoder(buf, off, out);
  }

  /** Encode `value` (missing fields are 0). */
  encode(value: Readonly<Record<string, unknown>>, w: Writer): void {
    w.ensure(this.size);
    const start = w.pos;
    w.buf.fill(0, start, start + this.size);
    for (const f of this.fields) {
      const v = value[f.name];
      if (v === undefined || f.kind === 'pad8' || f.kind === 'pad16') continue;
      w.pos = start + f.offset;
      const n = v as number;
      switch (f.kind) {
        case 'u8':
          w.u8(n);
          break;
        case 'u16':
          w.u16(n);
          break;
        case 's16':
          w.s16(n);
          break;
        case 'u32':
          w.u32(n);
          break;
        case 's32':
          w.s32(n);
          break;
        case 'u64':
          w.u64(v as bigint | number);
          break;
        case 'be16':
          w.be16(n);
          break;
        case 'be32':
          w.be32(n);
          break;
      }
    }
    w.pos = start + this.size;
  }
}

function compileStructDecoder(
  struct: StructDef,
): (buf: Buffer, off: number, out: Record<string, unknown>) => Record<string, unknown> {
  const lines: string[] = [];
  const helpers: unknown[] = [rd.u64];
  for (const f of struct.fields) {
    const at = `off + ${f.offset}`;
    const key = `out[${JSON.stringify(f.name)}]`;
    switch (f.kind) {
      case 'u8':
        lines.push(`${key} = buf[${at}];`);
        break;
      case 'u16':
        lines.push(`${key} = ${u16expr(`(${at})`)};`);
        break;
      case 's16':
        lines.push(`${key} = (${u16expr(`(${at})`)} << 16) >> 16;`);
        break;
      case 'u32':
        lines.push(`${key} = ${u32expr(`(${at})`)};`);
        break;
      case 's32':
        lines.push(`${key} = ${s32expr(`(${at})`)};`);
        break;
      case 'u64':
        lines.push(`${key} = H[0](buf, ${at});`);
        break;
      case 'be16':
        lines.push(`${key} = (buf[${at}] << 8) | buf[${at} + 1];`);
        break;
      case 'be32':
        lines.push(
          `${key} = buf[${at}] * 16777216 + ((buf[${at} + 1] << 16) | (buf[${at} + 2] << 8) | buf[${at} + 3]);`,
        );
        break;
      case 'pad8':
      case 'pad16':
        break;
    }
  }
  const body = `"use strict";\nreturn function decode(buf, off, out) {\n  ${lines.join('\n  ')}\n  return out;\n};`;
  // The source holds only offsets and JSON-quoted field names from the struct's definition.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('H', body) as (
    h: unknown[],
  ) => (buf: Buffer, off: number, out: Record<string, unknown>) => Record<string, unknown>;
  return factory(helpers);
}

/** Scalar attribute kinds. */
export type ScalarKind =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  | 's8'
  | 's16'
  | 's32'
  | 's64'
  | 'be16'
  | 'be32'
  | 'flag'
  | 'bool'
  | 'string'
  | 'binary'
  | 'mac'
  | 'ip';

/**
 * How one attribute is encoded. `bool` is a u8 holding 0 or 1; `flag` is a zero-length attribute
 * (present = true); `ip` is 4 or 16 bytes written as text; `mac` any hardware address.
 */
export type AttrKindDef =
  | { kind: ScalarKind }
  | { kind: 'nested'; set: () => AttributeSet }
  | { kind: 'array'; item: AttrKindDef }
  | { kind: 'struct'; struct: StructDef }
  | { kind: 'message'; header: StructDef; set: () => AttributeSet }
  | { kind: 'select'; by: string; sets: Readonly<Record<string, () => AttributeSet>> }
  | {
      kind: 'custom';
      /**
       * Decode `buf[start, end)`. `parent` is the object being decoded (to flatten a nested set
       * into it); returning undefined assigns nothing.
       */
      decode: (buf: Buffer, start: number, end: number, parent: Record<string, unknown>) => unknown;
      encode: (value: unknown, w: Writer) => void;
      /** Set NLA_F_NESTED on the attribute (its payload is attributes). */
      nested?: boolean;
    };

/** One attribute of a set: its number and how it is encoded. */
export type AttrDef = AttrKindDef & { type: number };

const codes = {
  u8: 1,
  u16: 2,
  u32: 3,
  u64: 4,
  s8: 5,
  s16: 6,
  s32: 7,
  s64: 8,
  be16: 9,
  be32: 10,
  flag: 11,
  bool: 12,
  string: 13,
  binary: 14,
  mac: 15,
  ip: 16,
  nested: 17,
  array: 18,
  struct: 19,
  message: 20,
  select: 21,
  custom: 22,
} as const;

interface Entry {
  name: string;
  code: number;
  def: AttrKindDef;
  type: number;
}

/**
 * A named set of attributes (the kernel's `nla_policy` for one nesting level), used to encode
 * and decode. Names become the keys of decoded objects; unknown attribute numbers are skipped.
 */
export class AttributeSet {
  readonly name: string;
  readonly entries: readonly Entry[];
  readonly #byType: (Entry | undefined)[] = [];

  constructor(name: string, defs: Readonly<Record<string, AttrDef>>) {
    this.name = name;
    const entries: Entry[] = [];
    for (const [attrName, def] of Object.entries(defs)) {
      const entry: Entry = { name: attrName, code: codes[def.kind], def, type: def.type };
      if (this.#byType[def.type] !== undefined)
        throw new Error(`attribute set ${name}: type ${def.type} is defined twice`);
      this.#byType[def.type] = entry;
      entries.push(entry);
    }
    this.entries = entries;
  }

  /** The entry for an attribute number. */
  entry(type: number): Entry | undefined {
    return this.#byType[type];
  }

  /** The attribute number of a name. */
  typeOf(name: string): number {
    const entry = this.entries.find((e) => e.name === name);
    if (entry === undefined) throw new Error(`attribute set ${this.name} has no attribute "${name}"`);
    return entry.type;
  }

  /**
   * Decode the attributes in `buf[start, end)` into `out`. Unknown attribute numbers are
   * skipped; a truncated attribute ends decoding (what came before is kept). The decoder is
   * generated once per set (a `switch` over attribute numbers with direct property stores), so
   * decoding a dump costs about as much as reading it.
   */
  decode(
    buf: Buffer,
    start: number,
    end: number,
    out: Record<string, unknown> = {},
  ): Record<string, unknown> {
    // The first call generates the decoder and installs it on the instance, so later calls go
    // straight to it.
    const decoder = compileDecoder(this);
    Object.defineProperty(this, 'decode', { value: decoder, configurable: true });
    return decoder(buf, start, end, out);
  }

  /** Encode the defined keys of `value` as attributes, in definition order. */
  encode(value: Readonly<Record<string, unknown>>, w: Writer): void {
    for (const entry of this.entries) {
      const v = value[entry.name];
      if (v === undefined) continue;
      encodeValue(entry, v, value, w, this.name);
    }
  }
}

type Decoder = (
  buf: Buffer,
  start: number,
  end: number,
  out: Record<string, unknown>,
) => Record<string, unknown>;

/** A short string attribute (names, kinds): an ASCII fast path, UTF-8 otherwise. NULs at the end are dropped. */
export function readString(buf: Buffer, s: number, e: number): string {
  while (e > s && buf[e - 1] === 0) e--;
  if (e - s > 32) return buf.toString('utf8', s, e);
  let out = '';
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c >= 0x80) return buf.toString('utf8', s, e);
    out += String.fromCharCode(c);
  }
  return out;
}

function copyBytes(buf: Buffer, s: number, e: number): Buffer {
  return Buffer.from(buf.subarray(s, e));
}

const u16expr = (at: string): string =>
  LE ? `(buf[${at}] | (buf[${at} + 1] << 8))` : `((buf[${at}] << 8) | buf[${at} + 1])`;
const u32expr = (at: string): string =>
  LE
    ? `((buf[${at}] | (buf[${at} + 1] << 8) | (buf[${at} + 2] << 16)) + buf[${at} + 3] * 16777216)`
    : `(buf[${at}] * 16777216 + ((buf[${at} + 1] << 16) | (buf[${at} + 2] << 8) | buf[${at} + 3]))`;
const s32expr = (at: string): string =>
  LE
    ? `(buf[${at}] | (buf[${at} + 1] << 8) | (buf[${at} + 2] << 16) | (buf[${at} + 3] << 24))`
    : `((buf[${at}] << 24) | (buf[${at} + 1] << 16) | (buf[${at} + 2] << 8) | buf[${at} + 3])`;

/** Generate the decoder of a set: one `switch` over attribute numbers, named stores, helpers by index. */
function compileDecoder(set: AttributeSet): Decoder {
  const helpers: unknown[] = [];
  const helper = (fn: unknown): string => {
    helpers.push(fn);
    return `H[${helpers.length - 1}]`;
  };
  const str = helper(readString);
  const mac = helper(formatMac);
  const ip = helper(formatIp);
  const bytes = helper(copyBytes);
  const cases: string[] = [];
  const selects: string[] = [];
  for (const entry of set.entries) {
    const key = `out[${JSON.stringify(entry.name)}]`;
    const def = entry.def;
    let stmt: string;
    switch (def.kind) {
      case 'u8':
        stmt = `if (e > s) ${key} = buf[s];`;
        break;
      case 'bool':
        stmt = `if (e > s) ${key} = buf[s] !== 0;`;
        break;
      case 's8':
        stmt = `if (e > s) ${key} = (buf[s] << 24) >> 24;`;
        break;
      case 'u16':
        stmt = `if (e - s >= 2) ${key} = ${u16expr('s')};`;
        break;
      case 's16':
        stmt = `if (e - s >= 2) ${key} = (${u16expr('s')} << 16) >> 16;`;
        break;
      case 'u32':
        stmt = `if (e - s >= 4) ${key} = ${u32expr('s')};`;
        break;
      case 's32':
        stmt = `if (e - s >= 4) ${key} = ${s32expr('s')};`;
        break;
      case 'u64':
        stmt = `if (e - s >= 8) ${key} = ${helper(rd.u64)}(buf, s);`;
        break;
      case 's64':
        stmt = `if (e - s >= 8) ${key} = ${helper(rd.s64)}(buf, s);`;
        break;
      case 'be16':
        stmt = `if (e - s >= 2) ${key} = (buf[s] << 8) | buf[s + 1];`;
        break;
      case 'be32':
        stmt = `if (e - s >= 4) ${key} = buf[s] * 16777216 + ((buf[s + 1] << 16) | (buf[s + 2] << 8) | buf[s + 3]);`;
        break;
      case 'flag':
        stmt = `${key} = true;`;
        break;
      case 'string':
        stmt = `${key} = ${str}(buf, s, e);`;
        break;
      case 'binary':
        stmt = `${key} = ${bytes}(buf, s, e);`;
        break;
      case 'mac':
        stmt = `${key} = ${mac}(buf, s, e - s);`;
        break;
      case 'ip':
        stmt = `${key} = ${ip}(buf, s, e - s);`;
        break;
      case 'nested': {
        const nested = def.set;
        stmt = `${key} = ${helper((b: Buffer, s: number, e: number) => nested().decode(b, s, e, {}))}(buf, s, e);`;
        break;
      }
      case 'select': {
        const sets = def.sets;
        const by = def.by;
        const pick = helper((o: Record<string, unknown>) => {
          const k = o[by];
          return typeof k === 'string' ? sets[k]?.() : undefined;
        });
        const slot = selects.length;
        stmt = `d${slot}s = s; d${slot}e = e;`;
        selects.push(
          `if (d${slot}e !== 0) { const set = ${pick}(out); if (set !== undefined) ${key} = set.decode(buf, d${slot}s, d${slot}e, {}); }`,
        );
        break;
      }
      default: {
        const code = codes[def.kind];
        const generic = helper((b: Buffer, s: number, e: number, o: Record<string, unknown>) =>
          decodeValue(code, def, b, s, e, o),
        );
        stmt = `{ const v = ${generic}(buf, s, e, out); if (v !== undefined) ${key} = v; }`;
      }
    }
    cases.push(`      case ${entry.type}: ${stmt} break;`);
  }
  const selectVars = selects.map((_, i) => `let d${i}s = 0, d${i}e = 0;`).join(' ');
  const body = `"use strict";
return function decode(buf, start, end, out) {
  if (out === undefined) out = {};
  let off = start; ${selectVars}
  while (off + 4 <= end) {
    const len = ${u16expr('off')};
    if (len < 4 || off + len > end) break;
    const s = off + 4, e = off + len;
    switch (${u16expr('off + 2')} & ${NLA_TYPE_MASK}) {
${cases.join('\n')}
    }
    off += (len + 3) & ~3;
  }
  ${selects.join('\n  ')}
  return out;
};`;
  // The generated source only contains numbers and JSON-quoted attribute names from the set's definition.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('H', body) as (h: unknown[]) => Decoder;
  return factory(helpers);
}

/** Shorthand to define an attribute set. */
export function defineAttributes(name: string, defs: Readonly<Record<string, AttrDef>>): AttributeSet {
  return new AttributeSet(name, defs);
}

function decodeValue(
  code: number,
  def: AttrKindDef,
  buf: Buffer,
  s: number,
  e: number,
  parent: Record<string, unknown>,
): unknown {
  const len = e - s;
  switch (code) {
    case codes.u8:
      return len >= 1 ? buf[s] : undefined;
    case codes.u16:
      return len >= 2 ? rd.u16(buf, s) : undefined;
    case codes.u32:
      return len >= 4 ? rd.u32(buf, s) : undefined;
    case codes.u64:
      return len >= 8 ? rd.u64(buf, s) : undefined;
    case codes.s8:
      return len >= 1 ? buf.readInt8(s) : undefined;
    case codes.s16:
      return len >= 2 ? rd.s16(buf, s) : undefined;
    case codes.s32:
      return len >= 4 ? rd.s32(buf, s) : undefined;
    case codes.s64:
      return len >= 8 ? rd.s64(buf, s) : undefined;
    case codes.be16:
      return len >= 2 ? buf.readUInt16BE(s) : undefined;
    case codes.be32:
      return len >= 4 ? buf.readUInt32BE(s) : undefined;
    case codes.flag:
      return true;
    case codes.bool:
      return len >= 1 ? buf[s] !== 0 : undefined;
    case codes.string: {
      let end = e;
      while (end > s && buf[end - 1] === 0) end--;
      return buf.toString('utf8', s, end);
    }
    case codes.binary:
      return Buffer.from(buf.subarray(s, e));
    case codes.mac:
      return formatMac(buf, s, len);
    case codes.ip:
      return formatIp(buf, s, len);
    case codes.nested:
      return (def as Extract<AttrKindDef, { kind: 'nested' }>).set().decode(buf, s, e);
    case codes.array: {
      const item = (def as Extract<AttrKindDef, { kind: 'array' }>).item;
      const itemCode = codes[item.kind];
      const out: unknown[] = [];
      let off = s;
      while (off + 4 <= e) {
        const l = rd.u16(buf, off);
        if (l < 4 || off + l > e) break;
        out.push(decodeValue(itemCode, item, buf, off + 4, off + l, parent));
        off += (l + 3) & ~3;
      }
      return out;
    }
    case codes.struct: {
      const struct = (def as Extract<AttrKindDef, { kind: 'struct' }>).struct;
      return len >= struct.size ? struct.decode(buf, s) : undefined;
    }
    case codes.message: {
      const m = def as Extract<AttrKindDef, { kind: 'message' }>;
      if (len < m.header.size) return undefined;
      const out = m.header.decode(buf, s);
      return m.set().decode(buf, s + m.header.size, e, out);
    }
    case codes.custom:
      return (def as Extract<AttrKindDef, { kind: 'custom' }>).decode(buf, s, e, parent);
    default:
      return undefined;
  }
}

function encodeValue(
  entry: { name: string; def: AttrKindDef; type: number },
  v: unknown,
  parent: Readonly<Record<string, unknown>>,
  w: Writer,
  setName: string,
): void {
  const def = entry.def;
  const nested =
    def.kind === 'nested' ||
    def.kind === 'array' ||
    def.kind === 'select' ||
    (def.kind === 'custom' && def.nested === true);
  const start = w.beginAttr(entry.type | (nested ? NLA_F_NESTED : 0));
  switch (def.kind) {
    case 'u8':
      w.u8(v as number);
      break;
    case 'bool':
      w.u8(v === true || v === 1 ? 1 : 0);
      break;
    case 'u16':
      w.u16(v as number);
      break;
    case 'u32':
      w.u32(v as number);
      break;
    case 'u64':
      w.u64(v as bigint | number);
      break;
    case 's8':
      w.u8((v as number) & 0xff);
      break;
    case 's16':
      w.s16(v as number);
      break;
    case 's32':
      w.s32(v as number);
      break;
    case 's64':
      w.s64(v as bigint | number);
      break;
    case 'be16':
      w.be16(v as number);
      break;
    case 'be32':
      w.be32(v as number);
      break;
    case 'flag':
      if (v !== true) {
        // A flag is present or absent: `false` means "do not send it".
        w.pos = start;
        return;
      }
      break;
    case 'string':
      w.cstring(v as string);
      break;
    case 'binary':
      w.bytes(v as Uint8Array);
      break;
    case 'mac':
      w.bytes(typeof v === 'string' ? parseMac(v) : (v as Uint8Array));
      break;
    case 'ip':
      w.bytes(typeof v === 'string' ? parseIp(v).bytes : (v as Uint8Array));
      break;
    case 'nested':
      def.set().encode(v as Record<string, unknown>, w);
      break;
    case 'array': {
      const items = v as readonly unknown[];
      for (const [i, item] of items.entries())
        encodeValue({ name: `${entry.name}[${i}]`, def: def.item, type: i + 1 }, item, parent, w, setName);
      break;
    }
    case 'struct':
      def.struct.encode(v as Record<string, unknown>, w);
      break;
    case 'message':
      def.header.encode(v as Record<string, unknown>, w);
      def.set().encode(v as Record<string, unknown>, w);
      break;
    case 'select': {
      const key = parent[def.by];
      const set = typeof key === 'string' ? def.sets[key] : undefined;
      if (set === undefined)
        throw invalid(
          `${setName}.${entry.name}: no attribute layout for ${def.by} ${JSON.stringify(key)} (known: ${Object.keys(def.sets).join(', ')}).`,
        );
      set().encode(v as Record<string, unknown>, w);
      break;
    }
    case 'custom':
      def.encode(v, w);
      break;
  }
  w.endAttr(start);
}

/** The netlink message header (`struct nlmsghdr`). */
export const NLMSG_HDRLEN = 16;

/** Start a message; returns its start offset for {@link endMessage}. */
export function beginMessage(w: Writer, type: number, flags: number, seq: number, pid = 0): number {
  w.align();
  w.ensure(NLMSG_HDRLEN);
  const start = w.pos;
  w.u32(0);
  w.u16(type);
  w.u16(flags);
  w.u32(seq);
  w.u32(pid);
  return start;
}

/** Finish a message: write its length. */
export function endMessage(w: Writer, start: number): void {
  w.patchU32(start, w.pos - start);
  w.align();
}
