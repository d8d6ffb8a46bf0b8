/** Decoders from rtnetlink messages (in the receive buffer) to typed objects. */
import { NLMSG_HDRLEN, rd } from './codec.js';
import { AF, IFF } from './constants.js';
import {
  addressAttrs,
  ifaddrmsg,
  ifinfomsgDecode,
  linkAttrs,
  ndmsg,
  neighbourAttrs,
  routeDecodeState,
  routeFields,
  rtmsg,
} from './rtnlSpecs.js';
import { LIFETIME_FOREVER, type Address, type Link, type Neighbour, type Route } from './types.js';

/** Decode an RTM_NEWLINK/RTM_DELLINK message at `off` (length `len`). */
export function decodeLink(buf: Buffer, off: number, len: number): Link {
  const o = ifinfomsgDecode.decode(buf, off + NLMSG_HDRLEN);
  linkAttrs.decode(buf, off + NLMSG_HDRLEN + 16, off + len, o);
  const flags = o.flags as number;
  o.up = (flags & IFF.UP) !== 0;
  o.lowerUp = (flags & IFF.LOWER_UP) !== 0;
  if (o.operState === undefined) o.operState = 'unknown';
  if (o.name === undefined) o.name = '';
  if (o.mtu === undefined) o.mtu = 0;
  return o as unknown as Link;
}

/** The interface index of a link message, without decoding the rest. */
export function linkIndexOf(buf: Buffer, off: number): number {
  return rd.s32(buf, off + NLMSG_HDRLEN + 4);
}

/** Decode an RTM_NEWADDR/RTM_DELADDR message. */
export function decodeAddress(buf: Buffer, off: number, len: number): Address {
  // struct ifaddrmsg, read in place: family u8, prefixlen u8, flags u8, scope u8, index u32.
  const o = off + NLMSG_HDRLEN;
  const r = addressAttrs.decode(buf, o + ifaddrmsg.size, off + len, {});
  const family = buf[o] === AF.INET6 ? 6 : 4;
  const local = (r.local ?? r.address ?? '') as string;
  const cache = r.cacheinfo as { preferred: number; valid: number } | undefined;
  const a: Address = {
    family,
    index: rd.u32(buf, o + 4),
    address: local,
    prefixLength: buf[o + 1]!,
    flags: (r.flags32 as number | undefined) ?? buf[o + 2]!,
    scope: buf[o + 3]!,
    validLifetime: cache?.valid ?? LIFETIME_FOREVER,
    preferredLifetime: cache?.preferred ?? LIFETIME_FOREVER,
  };
  if (r.local !== undefined && r.address !== undefined && r.address !== r.local) a.peer = r.address as string;
  if (r.broadcast !== undefined) a.broadcast = r.broadcast as string;
  if (r.anycast !== undefined) a.anycast = r.anycast as string;
  if (r.label !== undefined) a.label = r.label as string;
  if (r.routePriority !== undefined) a.routePriority = r.routePriority as number;
  if (r.protocol !== undefined) a.protocol = r.protocol as number;
  return a;
}

/** Decode an RTM_NEWROUTE/RTM_DELROUTE message. */
export function decodeRoute(buf: Buffer, off: number, len: number): Route {
  // struct rtmsg, read in place: family, dst_len, src_len, tos, table, protocol, scope, type (u8), flags u32.
  const o = off + NLMSG_HDRLEN;
  const family = buf[o] === AF.INET6 ? 6 : 4;
  const dstLength = buf[o + 1]!;
  // One object, the header fields first (a stable shape), the attributes decoded into it.
  const route: Route = {
    family,
    destination: family === 4 ? `0.0.0.0/${dstLength}` : `::/${dstLength}`,
    tos: buf[o + 3]!,
    table: buf[o + 4]!,
    protocol: buf[o + 5]!,
    scope: buf[o + 6]!,
    type: buf[o + 7]!,
    flags: rd.u32(buf, o + 8),
    priority: 0,
  };
  routeDecodeState.dstLength = dstLength;
  routeDecodeState.srcLength = buf[o + 2]!;
  routeFields.decode(buf, o + rtmsg.size, off + len, route as unknown as Record<string, unknown>);
  return route;
}

/** Decode an RTM_NEWNEIGH/RTM_DELNEIGH message. */
export function decodeNeighbour(buf: Buffer, off: number, len: number): Neighbour {
  const h = ndmsg.decode(buf, off + NLMSG_HDRLEN);
  const r = neighbourAttrs.decode(buf, off + NLMSG_HDRLEN + ndmsg.size, off + len, {});
  const family = h.family === AF.INET6 ? 6 : h.family === AF.BRIDGE ? 7 : 4;
  const n: Neighbour = {
    family,
    index: h.index as number,
    state: h.state as number,
    flags: h.flags as number,
  };
  if (r.destination !== undefined) n.destination = r.destination as string;
  if (r.lladdr !== undefined) n.lladdr = r.lladdr as string;
  if (r.probes !== undefined) n.probes = r.probes as number;
  if (r.vlan !== undefined) n.vlan = r.vlan as number;
  if (r.master !== undefined) n.master = r.master as number;
  if (r.protocol !== undefined) n.protocol = r.protocol as number;
  return n;
}
