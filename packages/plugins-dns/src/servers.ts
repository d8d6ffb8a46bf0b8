import { isIP } from 'node:net';

/** A DNS server as systemd-resolved takes it over D-Bus (SetLinkDNSEx): family, address, port, TLS name. */
export interface DnsServer {
  family: 2 | 10;
  address: Uint8Array;
  port: number;
  name: string;
}

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * Parse `ADDRESS[:PORT][#NAME]` (`[ADDRESS]:PORT` for IPv6), as resolvectl prints servers, or
 * return why it is not one.
 */
export function parseServer(text: string): DnsServer | string {
  const hash = text.indexOf('#');
  const name = hash < 0 ? '' : text.slice(hash + 1);
  let host = hash < 0 ? text : text.slice(0, hash);
  let port = 0;
  if (hash >= 0 && !/^[A-Za-z0-9.-]{1,253}$/.test(name)) return `the name after # is not a host name`;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracket !== null) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
    if (isIP(host) !== 6) return `[${host}] is not an IPv6 address`;
  } else if (isIP(host) === 0) {
    const v4port = /^([\d.]+):(\d+)$/.exec(host);
    if (v4port === null || isIP(v4port[1]!) !== 4) return `${host} is not an IP address`;
    host = v4port[1]!;
    port = Number(v4port[2]);
  }
  if (port > 65535) return `port ${port} is out of range`;
  const family = isIP(host) === 4 ? AF_INET : AF_INET6;
  return { family, address: ipBytes(host, family), port, name };
}

function ipBytes(host: string, family: number): Uint8Array {
  if (family === AF_INET) return Uint8Array.from(host.split('.').map(Number));
  const [head = '', tail = ''] = host.includes('::') ? host.split('::') : [host, ''];
  const words = (part: string): string[] => (part === '' ? [] : part.split(':'));
  let h = words(head);
  let t = words(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two words.
  const expand = (list: string[]): string[] => {
    const last = list[list.length - 1];
    if (last === undefined || !last.includes('.')) return list;
    const b = last.split('.').map(Number);
    return [...list.slice(0, -1), ((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
  };
  h = expand(h);
  t = expand(t);
  const all = host.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    const v = parseInt(w, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

function ipText(family: number, bytes: Uint8Array): string {
  if (family === AF_INET) return [...bytes].join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: the longest run of two or more zero words becomes ::.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/** The canonical text of a server (what a query prints and a document is compared in). */
export function formatServer(server: DnsServer): string {
  const ip = ipText(server.family, server.address);
  const host =
    server.port === 0 ? ip : server.family === AF_INET6 ? `[${ip}]:${server.port}` : `${ip}:${server.port}`;
  return server.name === '' ? host : `${host}#${server.name}`;
}

/** A server text in canonical form, or undefined when it does not parse. */
export function canonicalServer(text: string): string | undefined {
  const parsed = parseServer(text);
  return typeof parsed === 'string' ? undefined : formatServer(parsed);
}

/** The bytes of a D-Bus `ay` as received (Buffer, array of numbers). */
export function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return Uint8Array.from(value as number[]);
  return new Uint8Array();
}
