/**
 * The kernel's `wireguard` generic netlink family (include/uapi/linux/wireguard.h): attribute
 * layouts, the encoding of WG_CMD_SET_DEVICE (split into several messages when the peers do not
 * fit one, as `wg` does) and the decoding of WG_CMD_GET_DEVICE dumps (whose peers and allowed
 * IPs may be spread over several messages, to be merged).
 */
import { endianness } from 'node:os';
import { OpdbusError } from '@opdbus/core';
import {
  canonicalNetwork,
  constants,
  defineAttributes,
  formatIp,
  parseIp,
  type AttributeSet,
  type Writer,
} from '@opdbus/netlink';
import {
  canonicalEndpoint,
  type DeviceState,
  type DeviceUpdate,
  type PeerState,
  type PeerUpdate,
} from './device.js';
import { isZeroKey } from './keys.js';

/** The family's name and version. */
export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;

/** Commands (enum wg_cmd). */
export const WG_CMD = { GET_DEVICE: 0, SET_DEVICE: 1 } as const;
/** enum wgdevice_flag. */
export const WGDEVICE_F = { REPLACE_PEERS: 1 } as const;
/** enum wgpeer_flag. */
export const WGPEER_F = { REMOVE_ME: 1, REPLACE_ALLOWEDIPS: 2, UPDATE_ONLY: 4 } as const;
/** enum wgallowedip_flag. */
export const WGALLOWEDIP_F = { REMOVE_ME: 1 } as const;

/** enum wgdevice_attribute. */
export const WGDEVICE_A = {
  IFINDEX: 1,
  IFNAME: 2,
  PRIVATE_KEY: 3,
  PUBLIC_KEY: 4,
  FLAGS: 5,
  LISTEN_PORT: 6,
  FWMARK: 7,
  PEERS: 8,
} as const;
/** enum wgpeer_attribute. */
export const WGPEER_A = {
  PUBLIC_KEY: 1,
  PRESHARED_KEY: 2,
  FLAGS: 3,
  ENDPOINT: 4,
  PERSISTENT_KEEPALIVE_INTERVAL: 5,
  LAST_HANDSHAKE_TIME: 6,
  RX_BYTES: 7,
  TX_BYTES: 8,
  ALLOWEDIPS: 9,
  PROTOCOL_VERSION: 10,
} as const;
/** enum wgallowedip_attribute. */
export const WGALLOWEDIP_A = { FAMILY: 1, IPADDR: 2, CIDR_MASK: 3, FLAGS: 4 } as const;

const LE = endianness() === 'LE';
const u16 = (b: Buffer, o: number): number => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));
const s64 = (b: Buffer, o: number): bigint => (LE ? b.readBigInt64LE(o) : b.readBigInt64BE(o));

const AF_INET = 2;
const AF_INET6 = 10;
const { NLA_F_NESTED } = constants;

/** Encode `struct sockaddr_in` / `sockaddr_in6` for an endpoint (family in host order, port big-endian). */
export function encodeSockaddr(endpoint: string, w: Writer): void {
  const text = canonicalEndpoint(endpoint);
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(text.slice(colon + 1));
  const ip = parseIp(host);
  if (ip.family === 4) {
    w.u16(AF_INET);
    w.be16(port);
    w.bytes(ip.bytes);
    w.bytes(new Uint8Array(8));
  } else {
    w.u16(AF_INET6);
    w.be16(port);
    w.u32(0); // flowinfo
    w.bytes(ip.bytes);
    w.u32(0); // scope id
  }
}

/** Decode a sockaddr attribute into `ADDRESS:PORT`; undefined for another family. */
export function decodeSockaddr(buf: Buffer, s: number, e: number): string | undefined {
  if (e - s < 16) return undefined;
  const family = u16(buf, s);
  const port = buf.readUInt16BE(s + 2);
  if (family === AF_INET) return `${formatIp(buf, s + 4, 4)}:${port}`;
  if (family === AF_INET6 && e - s >= 28) return `[${formatIp(buf, s + 8, 16)}]:${port}`;
  return undefined;
}

/** Encode a list of nested items the way the family documents them: each one an NLA of type 0. */
function nestedItems<T>(set: () => AttributeSet, items: readonly T[], w: Writer): void {
  for (const item of items) {
    const start = w.beginAttr(0 | NLA_F_NESTED);
    set().encode(item as Record<string, unknown>, w);
    w.endAttr(start);
  }
}

function decodeItems(set: () => AttributeSet, buf: Buffer, s: number, e: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let off = s;
  while (off + 4 <= e) {
    const len = u16(buf, off);
    if (len < 4 || off + len > e) break;
    out.push(set().decode(buf, off + 4, off + len, {}));
    off += (len + 3) & ~3;
  }
  return out;
}

/** WGALLOWEDIP_A_*. */
export const allowedIpAttrs: AttributeSet = defineAttributes('wgallowedip', {
  family: { type: WGALLOWEDIP_A.FAMILY, kind: 'u16' },
  address: { type: WGALLOWEDIP_A.IPADDR, kind: 'ip' },
  cidr: { type: WGALLOWEDIP_A.CIDR_MASK, kind: 'u8' },
  flags: { type: WGALLOWEDIP_A.FLAGS, kind: 'u32' },
});

/** WGPEER_A_*. */
export const peerAttrs: AttributeSet = defineAttributes('wgpeer', {
  publicKey: { type: WGPEER_A.PUBLIC_KEY, kind: 'binary' },
  presharedKey: { type: WGPEER_A.PRESHARED_KEY, kind: 'binary' },
  flags: { type: WGPEER_A.FLAGS, kind: 'u32' },
  endpoint: {
    type: WGPEER_A.ENDPOINT,
    kind: 'custom',
    encode: (v, w) => encodeSockaddr(v as string, w),
    decode: (buf, s, e) => decodeSockaddr(buf, s, e),
  },
  persistentKeepalive: { type: WGPEER_A.PERSISTENT_KEEPALIVE_INTERVAL, kind: 'u16' },
  lastHandshake: {
    type: WGPEER_A.LAST_HANDSHAKE_TIME,
    kind: 'custom',
    // struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; }
    encode: () => {
      throw new Error('WGPEER_A_LAST_HANDSHAKE_TIME is read-only');
    },
    decode: (buf, s, e) =>
      e - s >= 16 ? Number(s64(buf, s)) * 1000 + Math.floor(Number(s64(buf, s + 8)) / 1e6) : undefined,
  },
  rxBytes: { type: WGPEER_A.RX_BYTES, kind: 'u64' },
  txBytes: { type: WGPEER_A.TX_BYTES, kind: 'u64' },
  allowedIPs: {
    type: WGPEER_A.ALLOWEDIPS,
    kind: 'custom',
    nested: true,
    encode: (v, w) => nestedItems(() => allowedIpAttrs, v as readonly unknown[], w),
    decode: (buf, s, e) => decodeItems(() => allowedIpAttrs, buf, s, e),
  },
  protocolVersion: { type: WGPEER_A.PROTOCOL_VERSION, kind: 'u32' },
});

/** WGDEVICE_A_*. */
export const deviceAttrs: AttributeSet = defineAttributes('wgdevice', {
  ifindex: { type: WGDEVICE_A.IFINDEX, kind: 'u32' },
  ifname: { type: WGDEVICE_A.IFNAME, kind: 'string' },
  privateKey: { type: WGDEVICE_A.PRIVATE_KEY, kind: 'binary' },
  publicKey: { type: WGDEVICE_A.PUBLIC_KEY, kind: 'binary' },
  flags: { type: WGDEVICE_A.FLAGS, kind: 'u32' },
  listenPort: { type: WGDEVICE_A.LISTEN_PORT, kind: 'u16' },
  fwmark: { type: WGDEVICE_A.FWMARK, kind: 'u32' },
  peers: {
    type: WGDEVICE_A.PEERS,
    kind: 'custom',
    nested: true,
    encode: (v, w) => nestedItems(() => peerAttrs, v as readonly unknown[], w),
    decode: (buf, s, e) => decodeItems(() => peerAttrs, buf, s, e),
  },
});

/** The attributes of one allowed IP. */
function allowedIpData(prefix: string): Record<string, unknown> {
  const [address, length] = canonicalNetwork(prefix).split('/') as [string, string];
  return { family: address.includes(':') ? AF_INET6 : AF_INET, address, cidr: Number(length) };
}

/** Bytes a peer takes in a message: header, keys, flags, endpoint, keepalive, allowed IPs. */
function peerSize(peer: Record<string, unknown>, allowedIPs: number): number {
  return 4 + 36 + 36 + 8 + 32 + 8 + 4 + allowedIPs * 40;
}

/** At most this many bytes of peers per message (WGDEVICE_A_PEERS is one attribute: < 64 KiB). */
export const PEERS_BUDGET = 32 * 1024;

/**
 * The attribute data of the WG_CMD_SET_DEVICE messages for an update: the device's own fields
 * and the first peers in the first message, further peers (and further allowed IPs of a peer,
 * as a continuation carrying only its public key) in later ones.
 */
export function setDeviceMessages(
  name: string,
  update: DeviceUpdate,
  budget = PEERS_BUDGET,
): Record<string, unknown>[] {
  const first: Record<string, unknown> = { ifname: name };
  if (update.privateKey !== undefined) first.privateKey = update.privateKey ?? Buffer.alloc(32);
  if (update.listenPort !== undefined) first.listenPort = update.listenPort;
  if (update.fwmark !== undefined) first.fwmark = update.fwmark;
  if (update.replacePeers === true) first.flags = WGDEVICE_F.REPLACE_PEERS;
  const messages: Record<string, unknown>[] = [first];
  let current = first;
  let used = 0;
  const push = (peer: Record<string, unknown>, size: number): void => {
    if (used + size > budget && used > 0) {
      current = { ifname: name };
      messages.push(current);
      used = 0;
    }
    ((current.peers ??= []) as Record<string, unknown>[]).push(peer);
    used += size;
  };
  const perMessage = Math.max(1, Math.floor((budget - 200) / 40));
  for (const p of update.peers ?? []) {
    const peer = peerData(p);
    const ips = p.remove === true ? [] : (p.allowedIPs ?? []).map(allowedIpData);
    const head = ips.slice(0, perMessage);
    if (p.allowedIPs !== undefined && p.remove !== true) peer.allowedIPs = head;
    push(peer, peerSize(peer, head.length));
    for (let i = perMessage; i < ips.length; i += perMessage) {
      const chunk = ips.slice(i, i + perMessage);
      push({ publicKey: p.publicKey, allowedIPs: chunk }, peerSize({}, chunk.length));
    }
  }
  return messages;
}

function peerData(p: PeerUpdate): Record<string, unknown> {
  const out: Record<string, unknown> = { publicKey: p.publicKey };
  let flags = 0;
  if (p.remove === true) flags |= WGPEER_F.REMOVE_ME;
  if (p.updateOnly === true) flags |= WGPEER_F.UPDATE_ONLY;
  if (p.replaceAllowedIPs === true && p.remove !== true) flags |= WGPEER_F.REPLACE_ALLOWEDIPS;
  if (flags !== 0) out.flags = flags;
  if (p.remove === true) return out;
  if (p.presharedKey !== undefined) out.presharedKey = p.presharedKey ?? Buffer.alloc(32);
  if (p.endpoint !== undefined) out.endpoint = p.endpoint;
  if (p.persistentKeepalive !== undefined) out.persistentKeepalive = p.persistentKeepalive;
  return out;
}

/**
 * Merge the messages of a WG_CMD_GET_DEVICE dump into one device: later messages carry more
 * peers, and a peer whose allowed IPs did not fit continues (same public key) in the next.
 */
export function mergeGetDevice(name: string, messages: readonly Record<string, unknown>[]): DeviceState {
  const device: DeviceState = { name, listenPort: 0, fwmark: 0, peers: [] };
  let last: PeerState | undefined;
  for (const m of messages) {
    if (typeof m.ifname === 'string') device.name = m.ifname;
    const priv = m.privateKey as Buffer | undefined;
    if (priv !== undefined && !isZeroKey(priv)) device.privateKey = priv;
    const pub = m.publicKey as Buffer | undefined;
    if (pub !== undefined && !isZeroKey(pub)) device.publicKey = pub;
    if (typeof m.listenPort === 'number') device.listenPort = m.listenPort;
    if (typeof m.fwmark === 'number') device.fwmark = m.fwmark;
    for (const p of (m.peers as Record<string, unknown>[] | undefined) ?? []) {
      const key = p.publicKey as Buffer | undefined;
      if (key === undefined) continue;
      const ips = ((p.allowedIPs as Record<string, unknown>[] | undefined) ?? []).flatMap((a) =>
        typeof a.address === 'string' && typeof a.cidr === 'number'
          ? [canonicalNetwork(`${a.address}/${a.cidr}`)]
          : [],
      );
      if (last !== undefined && last.publicKey.equals(key)) {
        last.allowedIPs.push(...ips);
        continue;
      }
      const peer: PeerState = {
        publicKey: key,
        persistentKeepalive: (p.persistentKeepalive as number | undefined) ?? 0,
        allowedIPs: ips,
        lastHandshakeMs: (p.lastHandshake as number | undefined) ?? 0,
        rxBytes: (p.rxBytes as bigint | undefined) ?? 0n,
        txBytes: (p.txBytes as bigint | undefined) ?? 0n,
      };
      const psk = p.presharedKey as Buffer | undefined;
      if (psk !== undefined && !isZeroKey(psk)) peer.presharedKey = psk;
      if (typeof p.endpoint === 'string') peer.endpoint = p.endpoint;
      device.peers.push(peer);
      last = peer;
    }
  }
  return device;
}

/** Throw a located error for a device the kernel does not know. */
export function noSuchDevice(name: string, cause: unknown): OpdbusError {
  return new OpdbusError(
    'OPDBUS_ERR_WIREGUARD_DEVICE',
    `The kernel has no WireGuard interface ${name}: ${(cause as Error).message}`,
    { data: { interface: name }, cause },
  );
}
