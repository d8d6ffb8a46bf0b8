/**
 * The device model both backends speak: what a WireGuard device holds (`get`) and what a
 * configuration request changes (`set`). It mirrors the kernel's WG_CMD_GET_DEVICE /
 * WG_CMD_SET_DEVICE and the cross-platform UAPI `get=1` / `set=1`, which carry the same fields.
 */
import { OpdbusError } from '@opdbus/core';
import { canonicalIp, canonicalNetwork, tryParseCidr, tryParseIp } from '@opdbus/netlink';

/** One peer as a device reports it. */
export interface PeerState {
  /** 32 bytes. */
  publicKey: Buffer;
  /** 32 bytes; undefined when the peer has none (all zero). */
  presharedKey?: Buffer;
  /** `192.0.2.1:51820` or `[2001:db8::1]:51820`. */
  endpoint?: string;
  /** Seconds; 0 is off. */
  persistentKeepalive: number;
  /** Canonical prefixes (`10.0.0.2/32`), in the device's order. */
  allowedIPs: string[];
  /** Last handshake, ms since the epoch; 0 when none. */
  lastHandshakeMs: number;
  rxBytes: bigint;
  txBytes: bigint;
}

/** A device as its backend reports it. */
export interface DeviceState {
  name: string;
  /** 32 bytes; undefined when the device has none. */
  privateKey?: Buffer;
  /** Derived from the private key (the kernel reports it; for UAPI it is computed). */
  publicKey?: Buffer;
  /** The bound UDP port (0 when the device is down or has none yet). */
  listenPort: number;
  /** 0 is off. */
  fwmark: number;
  peers: PeerState[];
}

/** A change to one peer, as WGPEER_* flags and attributes / UAPI peer lines. */
export interface PeerUpdate {
  publicKey: Buffer;
  /** Remove the peer (nothing else is applied to it). */
  remove?: boolean;
  /** Change the peer only if it exists (never create it). */
  updateOnly?: boolean;
  /** A key, or null to clear it. */
  presharedKey?: Buffer | null;
  endpoint?: string;
  persistentKeepalive?: number;
  /** Replace the peer's allowed IPs with `allowedIPs` (else they are added). */
  replaceAllowedIPs?: boolean;
  allowedIPs?: readonly string[];
}

/** A configuration request: only the fields given change. */
export interface DeviceUpdate {
  /** A key, or null to remove it. */
  privateKey?: Buffer | null;
  listenPort?: number;
  fwmark?: number;
  /** Remove every peer not in `peers` first. */
  replacePeers?: boolean;
  peers?: readonly PeerUpdate[];
}

/** An endpoint as the devices write it: `ADDRESS:PORT`, IPv6 in brackets, canonical address. */
export function canonicalEndpoint(text: string): string {
  const m = /^(?:\[([^\]%]+)(?:%[^\]]+)?\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  const ip = host === undefined ? undefined : tryParseIp(host);
  if (ip === undefined || !(port >= 1 && port <= 65535) || (m?.[1] !== undefined) !== (ip.family === 6)) {
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_INVALID',
      `"${text}" is not an endpoint: write ADDRESS:PORT with an IP address (192.0.2.1:51820, [2001:db8::1]:51820); host names are not resolved.`,
      { data: { endpoint: text } },
    );
  }
  const address = canonicalIp(host!);
  return `${ip.family === 6 ? `[${address}]` : address}:${port}`;
}

/** Whether `text` is an endpoint {@link canonicalEndpoint} accepts. */
export function isEndpoint(text: string): boolean {
  try {
    canonicalEndpoint(text);
    return true;
  } catch {
    return false;
  }
}

/** An allowed IP as the devices write it: the network of the prefix, canonical (`10.0.0.0/24`). */
export function canonicalAllowedIp(text: string): string {
  if (tryParseCidr(text) === undefined) {
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_INVALID',
      `"${text}" is not an allowed IP: write a prefix such as 10.0.0.2/32 or fd00::/64.`,
      { data: { allowedIP: text } },
    );
  }
  return canonicalNetwork(text);
}

/** Whether `text` is an allowed IP {@link canonicalAllowedIp} accepts. */
export function isAllowedIp(text: string): boolean {
  return tryParseCidr(text) !== undefined;
}
