import { formatIp, tryParseIp } from '@opdbus/netlink';

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
  const host = hash < 0 ? text : text.slice(0, hash);
  let port = 0;
  if (hash >= 0 && !/^[A-Za-z0-9.-]{1,253}$/.test(name)) return `the name after # is not a host name`;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  let ip = tryParseIp(bracket === null ? host : bracket[1]!);
  if (bracket !== null) {
    if (bracket[2] !== undefined) port = Number(bracket[2]);
    if (ip?.family !== 6) return `[${bracket[1]!}] is not an IPv6 address`;
  } else if (ip === undefined) {
    const v4port = /^([\d.]+):(\d+)$/.exec(host);
    ip = v4port === null ? undefined : tryParseIp(v4port[1]!);
    if (v4port === null || ip?.family !== 4) return `${host} is not an IP address`;
    port = Number(v4port[2]);
  }
  if (port > 65535) return `port ${port} is out of range`;
  return { family: ip.family === 4 ? AF_INET : AF_INET6, address: ip.bytes, port, name };
}

/** The canonical text of a server (what a query prints and a document is compared in). */
export function formatServer(server: DnsServer): string {
  const ip = formatIp(server.address, 0, server.address.length);
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
