import { invalid } from './errors.js';

/** An IP address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** A parsed IP address. */
export interface ParsedIp {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** A parsed prefix (`10.0.0.1/24`): the address as written, and the prefix length. */
export interface ParsedCidr extends ParsedIp {
  prefixLength: number;
}

const hex2: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Each 16-bit group in hex, made at the first IPv6 address (65536 strings: not at every process start). */
let hexTable: string[] | undefined;

/** Format 4 bytes at `off` as dotted decimal. */
export function formatIpv4(buf: Uint8Array, off = 0): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/**
 * Format 16 bytes at `off` as an IPv6 address, the way glibc's inet_ntop (and so iproute2) does:
 * RFC 5952 (lowercase, the longest run of two or more zero groups compressed, the first on a
 * tie) with IPv4-mapped and IPv4-compatible addresses in dotted form.
 */
export function formatIpv6(buf: Uint8Array, off = 0): string {
  const words = scratchWords;
  for (let i = 0; i < 8; i++) words[i] = (buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!;
  // The longest run of zero groups (the first on a tie).
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  // Encapsulated IPv4 (glibc): ::a.b.c.d (not :: or ::1) and ::ffff:a.b.c.d.
  if (
    bestBase === 0 &&
    (bestLen === 6 || (bestLen === 7 && words[7] !== 1) || (bestLen === 5 && words[5] === 0xffff))
  ) {
    return `${bestLen === 5 ? '::ffff:' : '::'}${formatIpv4(buf, off + 12)}`;
  }
  const hex = (hexTable ??= Array.from({ length: 65536 }, (_, i) => i.toString(16)));
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestBase) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    out += i === 0 || i === bestBase + bestLen ? hex[words[i]!]! : `:${hex[words[i]!]!}`;
  }
  return out;
}

const scratchWords = new Uint16Array(8);

/** Format an address of 4 or 16 bytes; other lengths as colon-separated hex. */
export function formatIp(buf: Uint8Array, off: number, len: number): string {
  if (len === 4) return formatIpv4(buf, off);
  if (len === 16) return formatIpv6(buf, off);
  return formatMac(buf, off, len);
}

/** Format a hardware address as lowercase colon-separated hex (`02:42:ac:11:00:02`). */
export function formatMac(buf: Uint8Array, off: number, len: number): string {
  if (len === 6) {
    return `${hex2[buf[off]!]}:${hex2[buf[off + 1]!]}:${hex2[buf[off + 2]!]}:${hex2[buf[off + 3]!]}:${hex2[buf[off + 4]!]}:${hex2[buf[off + 5]!]}`;
  }
  let out = '';
  for (let i = 0; i < len; i++) out += (i === 0 ? '' : ':') + hex2[buf[off + i]!];
  return out;
}

/** Parse a hardware address (`aa:bb:cc:dd:ee:ff`, also with `-`); throws OPDBUS_ERR_NETLINK_INVALID. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length < 2 || parts.length > 32 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw invalid(`"${text}" is not a hardware address; write it as six hex pairs, e.g. 02:00:00:00:00:01.`, {
      value: text,
    });
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Whether `text` is a hardware address. */
export function isMac(text: string): boolean {
  return /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/.test(text);
}

/** Canonical form of a hardware address (lowercase, colons). */
export function canonicalMac(text: string): string {
  const bytes = parseMac(text);
  return formatMac(bytes, 0, bytes.length);
}

function parseIpv4Into(text: string, out: Uint8Array, off: number): boolean {
  // Four decimal parts 0–255, no leading zeros (as inet_pton), parsed by character codes.
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final "."
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[off + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return false;
      digits++;
    } else return false;
  }
  return part === 4;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (text.includes('%')) return undefined;
  const out = new Uint8Array(16);
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl !== -1) {
    if (text.indexOf('::', dbl + 1) !== -1) return undefined;
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    const words: number[] = [];
    for (const [i, g] of groups.entries()) {
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = new Uint8Array(4);
        if (!parseIpv4Into(g, v4, 0)) return undefined;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        words.push(parseInt(g, 16));
      }
    }
    return words;
  };
  const a = parseGroups(head);
  const b = parseGroups(tail);
  if (a === undefined || b === undefined) return undefined;
  if (dbl === -1 ? a.length !== 8 : a.length + b.length > 7) return undefined;
  const words = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** Parse an IP address, or undefined when it is not one. */
export function tryParseIp(text: string): ParsedIp | undefined {
  if (text.includes(':')) {
    const bytes = parseIpv6(text);
    return bytes === undefined ? undefined : { family: 6, bytes };
  }
  const bytes = new Uint8Array(4);
  return parseIpv4Into(text, bytes, 0) ? { family: 4, bytes } : undefined;
}

/** Parse an IP address; throws OPDBUS_ERR_NETLINK_INVALID naming the value. */
export function parseIp(text: string, what = 'an IP address'): ParsedIp {
  const parsed = tryParseIp(text);
  if (parsed === undefined)
    throw invalid(`"${text}" is not ${what} (IPv4 like 10.0.0.1 or IPv6 like fd00::1).`, { value: text });
  return parsed;
}

/** Whether `text` is an IP address. */
export function isIp(text: string): boolean {
  return tryParseIp(text) !== undefined;
}

/** Parse `ADDRESS/PREFIX` (a bare address gets the full-length prefix), or undefined. */
export function tryParseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  const ip = tryParseIp(slash === -1 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash === -1) return { ...ip, prefixLength: max };
  const p = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p)) return undefined;
  const prefixLength = Number(p);
  if (prefixLength > max) return undefined;
  return { ...ip, prefixLength };
}

/** Parse `ADDRESS/PREFIX`; throws OPDBUS_ERR_NETLINK_INVALID naming the value. */
export function parseCidr(text: string, what = 'an address with a prefix length'): ParsedCidr {
  const parsed = tryParseCidr(text);
  if (parsed === undefined)
    throw invalid(`"${text}" is not ${what} (e.g. 10.0.0.1/24 or fd00::1/64).`, { value: text });
  return parsed;
}

/** Format an address of a family. */
export function formatBytes(bytes: Uint8Array): string {
  return formatIp(bytes, 0, bytes.length);
}

/** Canonical text of an address (`fd00:0::1` → `fd00::1`). */
export function canonicalIp(text: string): string {
  return formatBytes(parseIp(text).bytes);
}

/** Canonical `ADDRESS/PREFIX` text, the address as written (host bits kept). */
export function canonicalCidr(text: string): string {
  const c = parseCidr(text);
  return `${formatBytes(c.bytes)}/${c.prefixLength}`;
}

/** The network of an address: host bits cleared. */
export function networkBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i]! &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** Whether an address has bits set beyond its prefix (e.g. `10.0.0.1/24` as a route destination). */
export function hasHostBits(cidr: ParsedCidr): boolean {
  const net = networkBytes(cidr.bytes, cidr.prefixLength);
  return net.some((b, i) => b !== cidr.bytes[i]);
}

/** Canonical network text (`10.0.0.7/24` → `10.0.0.0/24`). */
export function canonicalNetwork(text: string): string {
  const c = parseCidr(text);
  return `${formatBytes(networkBytes(c.bytes, c.prefixLength))}/${c.prefixLength}`;
}

/** Whether `address` lies inside the prefix `cidr` (same family). */
export function prefixContains(cidr: ParsedCidr, address: ParsedIp): boolean {
  if (cidr.family !== address.family) return false;
  const a = networkBytes(cidr.bytes, cidr.prefixLength);
  const b = networkBytes(address.bytes, cidr.prefixLength);
  return a.every((v, i) => v === b[i]);
}
