/**
 * Sets and maps: the readable {@link SetSpec} to and from the kernel's set and its elements
 * (intervals become a start element and an end element flagged INTERVAL_END, as `nft` sends
 * them; concatenated intervals use KEY_END).
 */
import { BYTEORDER, NFT_DATA_VERDICT, NFT_SET_ELEM_F, NFT_SET_F, NFT_SET_POL, UDATA } from '../constants.js';
import { invalid } from '../errors.js';
import type { NftElementData, NftVerdict } from '../expr.js';
import { buildUdata, parseUdata, udataString } from '../tlv.js';
import type { NftSet } from '../wire.js';
import type { MapDataType, Scalar, SetElement, SetFlag, SetKeyType, SetSpec, Verdict } from './types.js';
import {
  DATATYPES,
  compareBytes,
  concatTypes,
  dataTypeById,
  decrement,
  formatDuration,
  formatInterval,
  formatNumericInterval,
  increment,
  numericInterval,
  parseDuration,
  parseValue,
  type DataType,
} from './values.js';

/** The readable verdict of a kernel verdict. */
export function verdictFromNft(v: NftVerdict): Verdict {
  switch (v.code) {
    case 'jump':
      return { jump: v.chain ?? '' };
    case 'goto':
      return { goto: v.chain ?? '' };
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
      return v.code;
    default:
      throw invalid(`The verdict ${v.code} has no readable form.`);
  }
}

/** The kernel verdict of a readable one (reject is a statement, not a verdict code). */
export function verdictToNft(v: Verdict): NftVerdict {
  if (typeof v === 'string') {
    if (v === 'reject') throw invalid('reject is not a verdict a map can hold.');
    return { code: v };
  }
  if ('jump' in v) return { code: 'jump', chain: v.jump };
  if ('goto' in v) return { code: 'goto', chain: v.goto };
  throw invalid('reject is not a verdict a map can hold.');
}

const flagBits: Readonly<Record<SetFlag, number>> = {
  constant: NFT_SET_F.CONSTANT,
  interval: NFT_SET_F.INTERVAL,
  timeout: NFT_SET_F.TIMEOUT,
  dynamic: NFT_SET_F.EVAL,
};

/** The data types of a set spec's key. */
export function keyTypesOf(spec: Pick<SetSpec, 'type' | 'name'>): DataType[] {
  const names = Array.isArray(spec.type) ? spec.type : [spec.type];
  if (names.length === 0) throw invalid(`Set ${spec.name} has an empty type.`);
  return names.map((n: string) => {
    const t = (DATATYPES as Record<string, DataType>)[n];
    if (t === undefined || n === 'verdict' || n === 'nfproto' || n === 'ct_state' || n === 'iface_index')
      throw invalid(`Set ${spec.name}: "${n}" is not a set key type this client supports.`, {
        set: spec.name,
        type: n,
      });
    return t;
  });
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** The kernel set (without family and handle) for a set spec. */
export function setToNft(table: string, spec: SetSpec): Omit<NftSet, 'family' | 'handle'> {
  const types = keyTypesOf(spec);
  const concat = types.length > 1;
  let flags = 0;
  for (const f of spec.flags ?? []) flags |= flagBits[f];
  if (concat && flags & NFT_SET_F.INTERVAL) flags |= NFT_SET_F.CONCAT;
  const out: Omit<NftSet, 'family' | 'handle'> = {
    table,
    name: spec.name,
    flags,
    keyType: concat ? concatTypeIdOf(types) : types[0]!.id,
    keyLen: concat ? types.reduce((n, t) => n + pad4(t.len), 0) : types[0]!.len,
  };
  const udata: [number, Buffer | string | number][] = [
    [UDATA.SET_KEYBYTEORDER, types.length === 1 && types[0]!.host ? BYTEORDER.HOST : BYTEORDER.BIG],
  ];
  if (spec.map !== undefined) {
    out.flags |= NFT_SET_F.MAP;
    if (spec.map === 'verdict') {
      out.dataType = NFT_DATA_VERDICT;
      out.dataLen = 0;
    } else {
      const d = keyTypesOf({ name: spec.name, type: spec.map })[0]!;
      out.dataType = d.id;
      out.dataLen = d.len;
      udata.push([UDATA.SET_DATABYTEORDER, d.host ? BYTEORDER.HOST : BYTEORDER.BIG]);
    }
  }
  if (concat) out.concat = types.map((t) => t.len);
  if (spec.timeout !== undefined) out.timeout = parseDuration(spec.timeout);
  if (spec.gcInterval !== undefined) out.gcInterval = parseDuration(spec.gcInterval);
  if (spec.size !== undefined) out.size = spec.size;
  if (spec.policy !== undefined)
    out.policy = spec.policy === 'memory' ? NFT_SET_POL.MEMORY : NFT_SET_POL.PERFORMANCE;
  if (spec.comment !== undefined) udata.push([UDATA.SET_COMMENT, spec.comment]);
  out.userdata = buildUdata(udata).toString('hex');
  return out;
}

function concatTypeIdOf(types: readonly DataType[]): number {
  let id = 0;
  for (const t of types) id = ((id << 6) | t.id) >>> 0;
  return id;
}

/** The readable spec of a kernel set (without elements), or a reason it has none. */
export function setFromNft(set: NftSet): SetSpec | { unreadable: string } {
  const count = set.concat?.length ?? 1;
  const types = count === 1 ? [dataTypeById(set.keyType)] : concatTypes(set.keyType, count);
  if (types === undefined || types.some((t) => t === undefined || t.id === DATATYPES.verdict.id))
    return { unreadable: `its key type ${set.keyType} (typeof or an unsupported type)` };
  const spec: SetSpec = {
    name: set.name,
    type: count === 1 ? (types[0]!.name as SetKeyType) : types.map((t) => t!.name as SetKeyType),
  };
  if (set.flags & NFT_SET_F.MAP) {
    if (set.dataType === NFT_DATA_VERDICT) spec.map = 'verdict';
    else {
      const d = set.dataType === undefined ? undefined : dataTypeById(set.dataType);
      if (d === undefined) return { unreadable: `its data type ${set.dataType}` };
      spec.map = d.name as MapDataType;
    }
  }
  if (set.flags & NFT_SET_F.OBJECT) return { unreadable: 'it maps to stateful objects' };
  const flags: SetFlag[] = [];
  for (const [name, bit] of Object.entries(flagBits) as [SetFlag, number][])
    if (set.flags & bit) flags.push(name);
  if (flags.length > 0) spec.flags = flags;
  if (set.timeout !== undefined && set.timeout > 0) spec.timeout = formatDuration(set.timeout);
  if (set.gcInterval !== undefined && set.gcInterval > 0 && set.flags & NFT_SET_F.TIMEOUT)
    spec.gcInterval = formatDuration(set.gcInterval);
  if (set.size !== undefined && set.size > 0) spec.size = set.size;
  if (set.policy === NFT_SET_POL.MEMORY) spec.policy = 'memory';
  if (set.userdata !== undefined) {
    const comment = udataString(parseUdata(Buffer.from(set.userdata, 'hex')).get(UDATA.SET_COMMENT));
    if (comment !== undefined) spec.comment = comment;
  }
  return spec;
}

/** A readable element split into its parts. */
interface ElementParts {
  key: Scalar[];
  value?: Scalar | Exclude<Verdict, string>;
  timeout?: string;
  comment?: string;
}

function partsOf(el: SetElement, concat: boolean): ElementParts {
  if (typeof el === 'object' && !Array.isArray(el)) {
    const out: ElementParts = { key: Array.isArray(el.key) ? el.key : [el.key] };
    if (el.value !== undefined) out.value = el.value;
    if (el.timeout !== undefined) out.timeout = el.timeout;
    if (el.comment !== undefined) out.comment = el.comment;
    return out;
  }
  if (Array.isArray(el) && !concat)
    throw invalid(`The element ${JSON.stringify(el)} is a list, but the set's key is not a concatenation.`);
  return { key: Array.isArray(el) ? el : [el] };
}

/** How a set's elements are encoded: types, flags, data type. */
export interface ElementCodec {
  types: DataType[];
  interval: boolean;
  map: MapDataType | undefined;
  name: string;
}

/** The codec of a readable set. */
export function elementCodec(spec: SetSpec): ElementCodec {
  return {
    types: keyTypesOf(spec),
    interval: spec.flags?.includes('interval') === true,
    map: spec.map,
    name: spec.name,
  };
}

function mapData(
  codec: ElementCodec,
  value: Scalar | Exclude<Verdict, string> | undefined,
  key: string,
): Partial<NftElementData> {
  if (codec.map === undefined) {
    if (value !== undefined)
      throw invalid(`Set ${codec.name} is not a map; element ${key} cannot have a value.`);
    return {};
  }
  if (value === undefined) throw invalid(`Map ${codec.name}: element ${key} needs a value.`);
  if (codec.map === 'verdict') return { verdict: verdictToNft(value as Verdict) };
  const d = keyTypesOf({ name: codec.name, type: codec.map })[0]!;
  if (typeof value === 'object')
    throw invalid(`Map ${codec.name}: element ${key} has a verdict, but the map holds ${codec.map}.`);
  return { data: d.parse(value).toString('hex') };
}

/** One readable element → its interval key bounds, per component. */
function keyBounds(codec: ElementCodec, key: Scalar[]): { from: Buffer; to: Buffer }[] {
  if (key.length !== codec.types.length)
    throw invalid(
      `Set ${codec.name}: the element ${JSON.stringify(key)} has ${key.length} part(s), the key has ${codec.types.length}.`,
    );
  return key.map((k, i) => {
    const t = codec.types[i]!;
    const w = parseValue(t, k);
    if (w.kind === 'interval' && !codec.interval)
      throw invalid(
        `Set ${codec.name}: "${k}" is a range or prefix; the set needs \`flags: [interval]\` to hold it.`,
        { set: codec.name },
      );
    return w.kind === 'value' ? { from: w.bytes, to: w.bytes } : { from: w.from, to: w.to };
  });
}

const concatKey = (parts: Buffer[], types: DataType[]): Buffer =>
  Buffer.concat(parts.map((p, i) => Buffer.concat([p, Buffer.alloc(pad4(types[i]!.len) - p.length)])));

/**
 * The kernel elements of readable elements. Intervals of a single-type set become a start and an
 * end element (the end flagged INTERVAL_END, holding the first value after the interval; none
 * when the interval runs to the type's maximum).
 */
export function elementsToNft(codec: ElementCodec, elements: readonly SetElement[]): NftElementData[] {
  const fast = numericElements(codec, elements);
  if (fast !== undefined) return fast;
  const concat = codec.types.length > 1;
  const out: NftElementData[] = [];
  const intervals: { from: Buffer; to: Buffer; extra: Partial<NftElementData>; text: string }[] = [];
  for (const el of elements) {
    const parts = partsOf(el, concat);
    const text = JSON.stringify(parts.key.length === 1 ? parts.key[0] : parts.key);
    const bounds = keyBounds(codec, parts.key);
    const extra: Partial<NftElementData> = mapData(codec, parts.value, text);
    if (parts.timeout !== undefined) extra.timeout = parseDuration(parts.timeout);
    if (parts.comment !== undefined)
      extra.userdata = buildUdata([[UDATA.SET_ELEM_COMMENT, parts.comment]]).toString('hex');
    if (concat) {
      const key = concatKey(
        bounds.map((b) => b.from),
        codec.types,
      );
      const el: NftElementData = { key: key.toString('hex'), ...extra };
      if (codec.interval)
        el.keyEnd = concatKey(
          bounds.map((b) => b.to),
          codec.types,
        ).toString('hex');
      out.push(el);
    } else if (codec.interval) {
      intervals.push({ from: bounds[0]!.from, to: bounds[0]!.to, extra, text });
    } else {
      out.push({ key: bounds[0]!.from.toString('hex'), ...extra });
    }
  }
  if (intervals.length > 0) {
    const type = codec.types[0]!;
    intervals.sort((a, b) => compareBytes(type, a.from, b.from));
    for (let i = 1; i < intervals.length; i++) {
      if (compareBytes(type, intervals[i]!.from, intervals[i - 1]!.to) <= 0)
        throw invalid(
          `Set ${codec.name}: the elements ${intervals[i - 1]!.text} and ${intervals[i]!.text} overlap; merge them.`,
          {
            set: codec.name,
          },
        );
    }
    for (const iv of intervals) {
      out.push({ key: iv.from.toString('hex'), ...iv.extra });
      const end = increment(iv.to, type.host);
      if (end !== undefined) out.push({ key: end.toString('hex'), flags: NFT_SET_ELEM_F.INTERVAL_END });
    }
  }
  return out;
}

/** The hex of a number as `bytes` big-endian bytes. */
const hexOf = (n: number, bytes: number): string => n.toString(16).padStart(bytes * 2, '0');

/**
 * The fast path of {@link elementsToNft} for big sets of a numeric key type (IPv4 addresses,
 * ports) whose elements are plain values: numbers instead of buffers. Undefined when it does not
 * apply (then the generic path runs).
 */
function numericElements(codec: ElementCodec, elements: readonly SetElement[]): NftElementData[] | undefined {
  const type = codec.types[0]!;
  if (
    codec.types.length !== 1 ||
    codec.map !== undefined ||
    (type.name !== 'ipv4_addr' && type.name !== 'inet_service')
  )
    return undefined;
  const intervals: [number, number][] = [];
  for (const el of elements) {
    if (typeof el !== 'string' && typeof el !== 'number') return undefined;
    const iv = numericInterval(type, el);
    if (iv === undefined) return undefined;
    if (!codec.interval && iv[0] !== iv[1]) return undefined; // the generic path says why
    intervals.push(iv);
  }
  const max = type.len === 4 ? 0xffffffff : 0xffff;
  if (!codec.interval) {
    const seen = new Set<number>();
    const out: NftElementData[] = [];
    for (const [n] of intervals) {
      if (seen.has(n)) continue;
      seen.add(n);
      out.push({ key: hexOf(n, type.len) });
    }
    return out;
  }
  intervals.sort((a, b) => a[0] - b[0]);
  const out: NftElementData[] = [];
  for (let i = 0; i < intervals.length; i++) {
    const [from, to] = intervals[i]!;
    if (i > 0 && from <= intervals[i - 1]![1])
      throw invalid(
        `Set ${codec.name}: the elements ${JSON.stringify(formatNumericInterval(type, ...intervals[i - 1]!))} and ${JSON.stringify(formatNumericInterval(type, from, to))} overlap; merge them.`,
        { set: codec.name },
      );
    out.push({ key: hexOf(from, type.len) });
    if (to < max) out.push({ key: hexOf(to + 1, type.len), flags: NFT_SET_ELEM_F.INTERVAL_END });
  }
  return out;
}

/** The fast path of {@link elementsFromNft} for interval sets of a numeric key type without extras. */
function numericFromNft(codec: ElementCodec, elements: readonly NftElementData[]): SetElement[] | undefined {
  const type = codec.types[0]!;
  if (
    codec.types.length !== 1 ||
    !codec.interval ||
    codec.map !== undefined ||
    (type.name !== 'ipv4_addr' && type.name !== 'inet_service')
  )
    return undefined;
  if (
    elements.some(
      (e) =>
        e.timeout !== undefined || e.userdata !== undefined || e.keyEnd !== undefined || (e.flags ?? 0) & ~1,
    )
  )
    return undefined;
  const keys = elements
    .map((e) => ({ n: parseInt(e.key, 16), end: ((e.flags ?? 0) & NFT_SET_ELEM_F.INTERVAL_END) !== 0 }))
    .sort((a, b) => a.n - b.n || (a.end === b.end ? 0 : a.end ? -1 : 1));
  const max = type.len === 4 ? 0xffffffff : 0xffff;
  const out: SetElement[] = [];
  for (let i = 0; i < keys.length; i++) {
    const cur = keys[i]!;
    if (cur.end) continue;
    const next = keys[i + 1];
    let to = max;
    if (next !== undefined && next.end) {
      to = next.n - 1;
      i++;
    }
    out.push(formatNumericInterval(type, cur.n, to));
  }
  return out;
}

/** The readable elements of kernel elements, sorted by key (intervals as nft writes them). */
export function elementsFromNft(
  codec: ElementCodec,
  elements: readonly NftElementData[],
  defaultTimeout?: number,
): SetElement[] {
  const fast = numericFromNft(codec, elements);
  if (fast !== undefined) return fast;
  const concat = codec.types.length > 1;
  const items: { sortKey: Buffer; el: SetElement }[] = [];
  const finish = (key: Scalar[], src: NftElementData, sortKey: Buffer): void => {
    const extra: Omit<Exclude<SetElement, Scalar | Scalar[]>, 'key'> = {};
    if (src.verdict !== undefined) extra.value = verdictFromNft(src.verdict);
    else if (src.data !== undefined && codec.map !== undefined && codec.map !== 'verdict') {
      const d = keyTypesOf({ name: codec.name, type: codec.map })[0]!;
      extra.value = d.format(Buffer.from(src.data, 'hex'));
    }
    if (src.timeout !== undefined && src.timeout !== defaultTimeout)
      extra.timeout = formatDuration(src.timeout);
    if (src.userdata !== undefined) {
      const c = udataString(parseUdata(Buffer.from(src.userdata, 'hex')).get(UDATA.SET_ELEM_COMMENT));
      if (c !== undefined) extra.comment = c;
    }
    const k: Scalar | Scalar[] = concat ? key : key[0]!;
    items.push({ sortKey, el: Object.keys(extra).length === 0 ? k : { key: k, ...extra } });
  };
  if (concat) {
    for (const src of elements) {
      if ((src.flags ?? 0) & NFT_SET_ELEM_F.CATCHALL) continue;
      const key = Buffer.from(src.key, 'hex');
      const end = src.keyEnd === undefined ? key : Buffer.from(src.keyEnd, 'hex');
      let off = 0;
      const parts: Scalar[] = [];
      for (const t of codec.types) {
        const a = key.subarray(off, off + t.len);
        const b = end.subarray(off, off + t.len);
        parts.push(formatInterval(t, a, b));
        off += pad4(t.len);
      }
      finish(parts, src, key);
    }
  } else if (codec.interval) {
    const type = codec.types[0]!;
    const sorted = elements
      .filter((e) => !((e.flags ?? 0) & NFT_SET_ELEM_F.CATCHALL))
      .map((e) => ({
        e,
        key: Buffer.from(e.key, 'hex'),
        end: ((e.flags ?? 0) & NFT_SET_ELEM_F.INTERVAL_END) !== 0,
      }))
      .sort((a, b) => compareBytes(type, a.key, b.key) || (a.end === b.end ? 0 : a.end ? -1 : 1));
    for (let i = 0; i < sorted.length; i++) {
      const cur = sorted[i]!;
      if (cur.end) continue; // the end of the interval before, or nft's leading end element at 0
      const next = sorted[i + 1];
      let to: Buffer;
      if (next !== undefined && next.end) {
        to = decrement(next.key, type.host);
        i++;
      } else to = Buffer.alloc(type.len, 0xff);
      finish([formatInterval(type, cur.key, to)], cur.e, cur.key);
    }
  } else {
    const type = codec.types[0]!;
    for (const src of elements) {
      if ((src.flags ?? 0) & NFT_SET_ELEM_F.CATCHALL) continue;
      const key = Buffer.from(src.key, 'hex');
      finish([type.format(key)], src, key);
    }
  }
  const type = codec.types[0]!;
  items.sort((a, b) => compareBytes(concat ? { host: false } : type, a.sortKey, b.sortKey));
  return items.map((i) => i.el);
}

/** The canonical form of readable elements (what the kernel would give back), for comparing. */
export function normalizeElements(
  codec: ElementCodec,
  elements: readonly SetElement[],
  defaultTimeout?: number,
): SetElement[] {
  return elementsFromNft(codec, elementsToNft(codec, elements), defaultTimeout);
}
