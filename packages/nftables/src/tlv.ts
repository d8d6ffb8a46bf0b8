/**
 * Reading and writing nftables attributes. nf_tables puts every integer attribute in network
 * byte order (be32, be64) — unlike rtnetlink — and nests most things, so the decoders here walk
 * attributes directly in the receive buffer instead of going through a generic codec.
 */
import { endianness } from 'node:os';
import type { Writer } from '@opdbus/netlink';
import { invalid } from './errors.js';

const NLA_F_NESTED = 1 << 15;
/** Netlink headers (attribute lengths and types) are in host byte order. */
export const LITTLE_ENDIAN = endianness() === 'LE';
const u16 = LITTLE_ENDIAN
  ? (b: Buffer, o: number) => b.readUInt16LE(o)
  : (b: Buffer, o: number) => b.readUInt16BE(o);
/** A host-order u32 (netlink message headers). */
export const hu32 = LITTLE_ENDIAN
  ? (b: Buffer, o: number) => b.readUInt32LE(o)
  : (b: Buffer, o: number) => b.readUInt32BE(o);
/** A host-order s32 (netlink error codes). */
export const hs32 = LITTLE_ENDIAN
  ? (b: Buffer, o: number) => b.readInt32LE(o)
  : (b: Buffer, o: number) => b.readInt32BE(o);
/** A host-order u16 (netlink message types and flags). */
export const hu16 = u16;
const NLA_TYPE_MASK = 0x3fff;

/** Call `fn(type, start, end)` for each attribute in `buf[start, end)` (type without flag bits). */
export function forEachAttr(
  buf: Buffer,
  start: number,
  end: number,
  fn: (type: number, s: number, e: number) => void,
): void {
  let off = start;
  while (off + 4 <= end) {
    const len = u16(buf, off);
    if (len < 4 || off + len > end) break;
    fn(u16(buf, off + 2) & NLA_TYPE_MASK, off + 4, off + len);
    off += (len + 3) & ~3;
  }
}

/** A big-endian u32 attribute payload. */
export const be32 = (buf: Buffer, s: number): number => buf.readUInt32BE(s);
/** A big-endian s32 attribute payload (priorities, verdict codes). */
export const sbe32 = (buf: Buffer, s: number): number => buf.readInt32BE(s);
/** A big-endian u64 attribute payload, as a number (handles, counters and timeouts stay below 2^53). */
export const be64 = (buf: Buffer, s: number): number => Number(buf.readBigUInt64BE(s));

/** A NUL-terminated string attribute. */
export function str(buf: Buffer, s: number, e: number): string {
  while (e > s && buf[e - 1] === 0) e--;
  return buf.toString('utf8', s, e);
}

/** A copy of an attribute's bytes. */
export const bytes = (buf: Buffer, s: number, e: number): Buffer => Buffer.from(buf.subarray(s, e));

/** Write helpers for nftables attributes on a netlink {@link Writer}. */
export const put = {
  be32(w: Writer, type: number, v: number): void {
    const a = w.beginAttr(type);
    w.be32(v);
    w.endAttr(a);
  },
  sbe32(w: Writer, type: number, v: number): void {
    const a = w.beginAttr(type);
    w.ensure(4);
    w.buf.writeInt32BE(v | 0, w.pos);
    w.pos += 4;
    w.endAttr(a);
  },
  be64(w: Writer, type: number, v: number): void {
    const a = w.beginAttr(type);
    w.ensure(8);
    w.buf.writeBigUInt64BE(BigInt(v), w.pos);
    w.pos += 8;
    w.endAttr(a);
  },
  u8(w: Writer, type: number, v: number): void {
    const a = w.beginAttr(type);
    w.u8(v);
    w.endAttr(a);
  },
  be16(w: Writer, type: number, v: number): void {
    const a = w.beginAttr(type);
    w.be16(v);
    w.endAttr(a);
  },
  str(w: Writer, type: number, v: string): void {
    if (Buffer.byteLength(v) > 255) throw invalid(`The name "${v.slice(0, 40)}…" is longer than 255 bytes.`);
    const a = w.beginAttr(type);
    w.cstring(v);
    w.endAttr(a);
  },
  bytes(w: Writer, type: number, v: Uint8Array): void {
    const a = w.beginAttr(type);
    w.bytes(v);
    w.endAttr(a);
  },
  nest(w: Writer, type: number): number {
    return w.beginAttr(type | NLA_F_NESTED);
  },
  end(w: Writer, start: number): void {
    w.endAttr(start);
  },
};

/** A libnftnl udata blob: TLVs of u8 type, u8 length, value. */
export function parseUdata(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 2 <= buf.length) {
    const type = buf[off]!;
    const len = buf[off + 1]!;
    if (off + 2 + len > buf.length) break;
    out.set(type, buf.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return out;
}

/** Build a udata blob from TLVs (strings are NUL-terminated, as libnftnl writes them). */
export function buildUdata(entries: readonly (readonly [number, Buffer | string | number])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [type, value] of entries) {
    let v: Buffer;
    if (typeof value === 'string') v = Buffer.concat([Buffer.from(value), Buffer.from([0])]);
    else if (typeof value === 'number') {
      v = Buffer.alloc(4);
      if (LITTLE_ENDIAN) v.writeUInt32LE(value);
      else v.writeUInt32BE(value);
    } else v = value;
    if (v.length > 255)
      throw invalid(`A comment of ${v.length} bytes is longer than the 255 bytes nftables keeps.`);
    parts.push(Buffer.from([type, v.length]), v);
  }
  return Buffer.concat(parts);
}

/** The string value of a udata TLV (NUL dropped). */
export function udataString(v: Buffer | undefined): string | undefined {
  if (v === undefined) return undefined;
  let e = v.length;
  while (e > 0 && v[e - 1] === 0) e--;
  return v.toString('utf8', 0, e);
}
