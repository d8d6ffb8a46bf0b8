import { describe, expect, it } from 'vitest';
import { StructDef, Writer, beginMessage, defineAttributes, endMessage, rd, readString } from './codec.js';
import { NLA_F_NESTED } from './constants.js';
import { decodeLink } from './decode.js';
import { ifinfomsg, linkAttrs } from './rtnlSpecs.js';

/** The attributes of `w` as [type, flags, payload] triples (a minimal independent parser). */
function attrs(buf: Buffer, start = 0, end = buf.length): [number, number, Buffer][] {
  const out: [number, number, Buffer][] = [];
  let off = start;
  while (off + 4 <= end) {
    const len = rd.u16(buf, off);
    const type = rd.u16(buf, off + 2);
    out.push([type & 0x3fff, type & 0xc000, buf.subarray(off + 4, off + len)]);
    off += (len + 3) & ~3;
  }
  return out;
}

const inner = defineAttributes('inner', {
  a: { type: 1, kind: 'u32' },
  b: { type: 2, kind: 'string' },
});
const kindA = defineAttributes('kindA', { x: { type: 1, kind: 'u16' } });
const kindB = defineAttributes('kindB', { y: { type: 1, kind: 'ip' } });
const header = new StructDef('hdr', [
  ['family', 'u8'],
  ['pad', 'pad8'],
  ['type', 'u16'],
  ['index', 's32'],
]);
const outer = defineAttributes('outer', {
  u8: { type: 1, kind: 'u8' },
  u16: { type: 2, kind: 'u16' },
  u32: { type: 3, kind: 'u32' },
  u64: { type: 4, kind: 'u64' },
  s32: { type: 5, kind: 's32' },
  be16: { type: 6, kind: 'be16' },
  be32: { type: 7, kind: 'be32' },
  flag: { type: 8, kind: 'flag' },
  bool: { type: 9, kind: 'bool' },
  str: { type: 10, kind: 'string' },
  bin: { type: 11, kind: 'binary' },
  mac: { type: 12, kind: 'mac' },
  ip4: { type: 13, kind: 'ip' },
  ip6: { type: 14, kind: 'ip' },
  nested: { type: 15, kind: 'nested', set: () => inner },
  list: { type: 16, kind: 'array', item: { kind: 'nested', set: () => inner } },
  kind: { type: 17, kind: 'string' },
  data: { type: 18, kind: 'select', by: 'kind', sets: { a: () => kindA, b: () => kindB } },
  msg: { type: 19, kind: 'message', header, set: () => inner },
  s8: { type: 20, kind: 's8' },
  s16: { type: 21, kind: 's16' },
  s64: { type: 22, kind: 's64' },
});

describe('attribute codec', () => {
  it('round-trips every kind, nested sets, arrays, selected sets and header+attributes', () => {
    const value = {
      u8: 200,
      u16: 65000,
      u32: 4000000000,
      u64: 2n ** 60n + 7n,
      s32: -5,
      be16: 4789,
      be32: 0x01020304,
      flag: true,
      bool: true,
      str: 'br0',
      bin: Buffer.from([1, 2, 3]),
      mac: '02:00:00:00:00:01',
      ip4: '10.0.0.1',
      ip6: 'fd00::1',
      nested: { a: 1, b: 'x' },
      list: [
        { a: 10, b: 'first' },
        { a: 20, b: 'second' },
      ],
      kind: 'b',
      data: { y: '192.0.2.7' },
      msg: { family: 7, type: 1, index: -1, a: 9, b: 'peer' },
      s8: -3,
      s16: -300,
      s64: -(2n ** 40n),
    };
    const w = new Writer(8); // grows
    outer.encode(value, w);
    const decoded = outer.decode(w.buf, 0, w.pos);
    expect(decoded).toEqual(value);
    // Nested kinds carry NLA_F_NESTED; the header+attributes kind (VETH_INFO_PEER) does not.
    const flags = new Map(attrs(w.buf, 0, w.pos).map(([t, f]) => [t, f]));
    expect(flags.get(15)).toBe(NLA_F_NESTED);
    expect(flags.get(16)).toBe(NLA_F_NESTED);
    expect(flags.get(18)).toBe(NLA_F_NESTED);
    expect(flags.get(19)).toBe(0);
    // be16 is big-endian on the wire.
    expect([...attrs(w.buf, 0, w.pos).find(([t]) => t === 6)![2]]).toEqual([0x12, 0xb5]);
    // Strings are NUL-terminated, attributes 4-byte aligned.
    expect([...attrs(w.buf, 0, w.pos).find(([t]) => t === 10)![2]]).toEqual([98, 114, 48, 0]);
    expect(w.pos % 4).toBe(0);
  });

  it('a flag set to false is not sent', () => {
    const w = new Writer();
    outer.encode({ flag: false, u8: 1 }, w);
    expect(attrs(w.buf, 0, w.pos).map(([t]) => t)).toEqual([1]);
  });

  it('skips unknown attributes and stops at a truncated one, keeping what came before', () => {
    const w = new Writer();
    const unknown = w.beginAttr(99);
    w.u32(1);
    w.endAttr(unknown);
    outer.encode({ u8: 5, str: 'ok' }, w);
    // A last attribute claiming 40 bytes where only 6 are left.
    const truncated = Buffer.concat([w.buf.subarray(0, w.pos), Buffer.from([40, 0, 3, 0, 1, 2])]);
    expect(outer.decode(truncated, 0, truncated.length)).toEqual({ u8: 5, str: 'ok' });
  });

  it('refuses to encode a selected set for an unknown selector value', () => {
    expect(() => outer.encode({ kind: 'zzz', data: { x: 1 } }, new Writer())).toThrow(
      /no attribute layout for kind "zzz"/,
    );
  });

  it('decodes a select whose key comes after the data (order does not matter)', () => {
    const w = new Writer();
    const d = w.beginAttr(18 | NLA_F_NESTED);
    kindA.encode({ x: 7 }, w);
    w.endAttr(d);
    outer.encode({ kind: 'a' }, w);
    expect(outer.decode(w.buf, 0, w.pos)).toEqual({ kind: 'a', data: { x: 7 } });
  });

  it('readString handles ASCII, UTF-8 and trailing NULs', () => {
    const b = Buffer.from('eth0\0\0', 'latin1');
    expect(readString(b, 0, b.length)).toBe('eth0');
    const u = Buffer.from('brücke\0', 'utf8');
    expect(readString(u, 0, u.length)).toBe('brücke');
  });

  it('builds messages with length and alignment; a veth create request has the peer nested', () => {
    const w = new Writer();
    const start = beginMessage(w, 16, 0x605, 42, 0);
    ifinfomsg.encode({ index: 0, flags: 1, change: 1 }, w);
    linkAttrs.encode(
      { name: 'v0', linkinfo: { kind: 'veth', data: { peer: { index: 0, name: 'v0p', mtu: 9000 } } } },
      w,
    );
    endMessage(w, start);
    expect(rd.u32(w.buf, 0)).toBe(w.pos);
    expect(rd.u16(w.buf, 4)).toBe(16);
    expect(rd.u32(w.buf, 8)).toBe(42);
    // Decode it back as a link message: the flattened linkinfo carries the kind.
    const link = decodeLink(w.buf, 0, w.pos);
    expect(link).toMatchObject({ name: 'v0', kind: 'veth', up: true, index: 0 });
    // The peer's own attributes decode through the veth set.
    const li = attrs(w.buf, 16 + 16, w.pos).find(([t]) => t === 18)![2];
    const data = attrs(li).find(([t]) => t === 2)![2];
    const peer = attrs(data)[0]![2];
    expect(linkAttrs.decode(peer, ifinfomsg.size, peer.length)).toEqual({ name: 'v0p', mtu: 9000 });
  });

  it('StructDef lays fields out as C does', () => {
    const s = new StructDef('t', [
      ['a', 'u8'],
      ['b', 'u32'],
      ['c', 'u16'],
    ]);
    expect(s.fields.map((f) => f.offset)).toEqual([0, 4, 8]);
    expect(s.size).toBe(12);
    const w = new Writer();
    s.encode({ a: 1, b: 2, c: 3 }, w);
    expect(s.decode(w.buf, 0)).toEqual({ a: 1, b: 2, c: 3 });
  });
});
