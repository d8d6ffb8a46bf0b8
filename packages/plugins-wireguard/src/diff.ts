/** The pure part of the plugin: comparing declared and observed interfaces into changes. */
import type { ChangeSpec } from '@opdbus/core';
import { canonicalCidr } from '@opdbus/netlink';
import { canonicalAllowedIp, canonicalEndpoint } from './device.js';
import { keyId } from './keys.js';
import type {
  InterfaceEntry,
  InterfaceOwn,
  PeerEntry,
  SecretRef,
  WireguardSection,
  WireguardValue,
} from './schema.js';

/** The resource of an interface: `interface/NAME`. */
export const interfaceResource = (name: string): string => `interface/${name}`;
/** The resource of a peer: `peer/IFNAME/KEY` (the key in base64url, so it has no `/`). */
export const peerResource = (iface: string, publicKey: string): string => `peer/${iface}/${keyId(publicKey)}`;

const short = (key: string): string => `${key.slice(0, 8)}…`;

/** An interface entry without its peers (what an interface change carries). */
export function interfaceOnly(entry: InterfaceEntry): InterfaceOwn {
  const { peers: _peers, ...rest } = entry;
  return rest;
}

function sameRef(a: SecretRef | undefined, b: SecretRef | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

const sortedSet = (list: readonly string[], canon: (s: string) => string): string[] =>
  [...new Set(list.map(canon))].sort();

/** The canonical form of a peer entry: endpoint and allowed IPs as the devices write them, sorted. */
export function normalizePeer(peer: PeerEntry): PeerEntry {
  const out: PeerEntry = { publicKey: peer.publicKey };
  if (peer.state === 'absent') {
    out.state = 'absent';
    return out;
  }
  if (peer.presharedKey !== undefined) out.presharedKey = peer.presharedKey;
  if (peer.endpoint !== undefined) out.endpoint = canonicalEndpoint(peer.endpoint);
  if (peer.allowedIPs !== undefined) out.allowedIPs = sortedSet(peer.allowedIPs, canonicalAllowedIp);
  if (peer.persistentKeepalive !== undefined && peer.persistentKeepalive !== 0)
    out.persistentKeepalive = peer.persistentKeepalive;
  else if (peer.persistentKeepalive === 0) out.persistentKeepalive = 0;
  return out;
}

/** The canonical form of an interface entry (addresses canonical and sorted, fwmark 0 dropped). */
export function normalizeInterface(entry: InterfaceEntry): InterfaceEntry {
  if (entry.state === 'absent') return { name: entry.name, state: 'absent' };
  const out: InterfaceEntry = { ...entry };
  if (entry.addresses !== undefined) out.addresses = sortedSet(entry.addresses, canonicalCidr);
  if (entry.peers !== undefined) out.peers = entry.peers.map(normalizePeer);
  return out;
}

/** Fields of a peer that differ between desired and observed (only those the desired names). */
function peerDifferences(d: PeerEntry, o: PeerEntry): string[] {
  const out: string[] = [];
  if (d.presharedKey !== undefined && !sameRef(d.presharedKey, o.presharedKey)) out.push('preshared key');
  if (d.endpoint !== undefined && d.endpoint !== o.endpoint) out.push(`endpoint ${d.endpoint}`);
  if (d.allowedIPs !== undefined && JSON.stringify(d.allowedIPs) !== JSON.stringify(o.allowedIPs ?? []))
    out.push(`allowed IPs ${d.allowedIPs.join(', ') || 'none'}`);
  if (d.persistentKeepalive !== undefined && d.persistentKeepalive !== (o.persistentKeepalive ?? 0))
    out.push(`keepalive ${d.persistentKeepalive}s`);
  return out;
}

/** Fields of an interface that differ (only those the desired names). */
function interfaceDifferences(d: InterfaceEntry, o: InterfaceEntry): string[] {
  const out: string[] = [];
  if (d.state !== undefined && d.state !== (o.state ?? 'up')) out.push(d.state);
  if (d.privateKey !== undefined && !sameRef(d.privateKey, o.privateKey)) out.push('private key');
  if (d.publicKey !== undefined && d.publicKey !== o.publicKey) out.push(`public key ${short(d.publicKey)}`);
  if (d.listenPort !== undefined && d.listenPort !== o.listenPort) out.push(`listen port ${d.listenPort}`);
  if (d.fwmark !== undefined && d.fwmark !== (o.fwmark ?? 0)) out.push(`fwmark ${d.fwmark}`);
  if (d.mtu !== undefined && d.mtu !== o.mtu) out.push(`mtu ${d.mtu}`);
  if (d.addresses !== undefined && JSON.stringify(d.addresses) !== JSON.stringify(o.addresses ?? []))
    out.push(`addresses ${d.addresses.join(', ') || 'none'}`);
  return out;
}

function describeNew(d: InterfaceEntry): string {
  const parts: string[] = [];
  if (d.listenPort !== undefined) parts.push(`port ${d.listenPort}`);
  if (d.addresses !== undefined && d.addresses.length > 0) parts.push(d.addresses.join(', '));
  parts.push(d.state ?? 'up');
  return parts.join(', ');
}

/**
 * The changes that take `observed` to `desired`. Only the interfaces and peers `desired` names
 * are considered, and of them only the fields it names. Peer changes depend on their interface;
 * a peer is changed in place (the interface is never recreated for it).
 */
export function diffSection(
  desired: WireguardSection,
  observed: WireguardSection,
): ChangeSpec<WireguardValue>[] {
  const have = new Map((observed.interfaces ?? []).map((i) => [i.name, normalizeInterface(i)]));
  const changes: ChangeSpec<WireguardValue>[] = [];
  for (const raw of desired.interfaces ?? []) {
    const d = normalizeInterface(raw);
    const o = have.get(d.name);
    const exists = o !== undefined && o.state !== 'absent';
    const resource = interfaceResource(d.name);
    if (d.state === 'absent') {
      if (exists)
        changes.push({
          resource,
          op: 'delete',
          before: interfaceOnly(o),
          after: null,
          summary: `delete WireGuard interface ${d.name}`,
        });
      continue;
    }
    if (!exists) {
      changes.push({
        resource,
        op: 'create',
        before: null,
        after: interfaceOnly(d),
        summary: `create WireGuard interface ${d.name} (${describeNew(d)})`,
      });
    } else {
      const diffs = interfaceDifferences(d, o);
      if (diffs.length > 0)
        changes.push({
          resource,
          op: 'update',
          before: interfaceOnly(o),
          after: interfaceOnly(d),
          summary: `set WireGuard interface ${d.name}: ${diffs.join(', ')}`,
        });
    }
    const peersHave = new Map(((exists ? o.peers : undefined) ?? []).map((p) => [p.publicKey, p]));
    for (const p of d.peers ?? []) {
      const op = peersHave.get(p.publicKey);
      const peerExists = op !== undefined && op.state !== 'absent';
      const pres = peerResource(d.name, p.publicKey);
      const dependsOn = [resource];
      if (p.state === 'absent') {
        if (peerExists)
          changes.push({
            resource: pres,
            op: 'delete',
            before: op,
            after: null,
            dependsOn,
            summary: `remove peer ${short(p.publicKey)} from ${d.name}`,
          });
        continue;
      }
      if (!peerExists) {
        changes.push({
          resource: pres,
          op: 'create',
          before: null,
          after: p,
          dependsOn,
          summary: `add peer ${short(p.publicKey)} to ${d.name}${p.endpoint ? ` at ${p.endpoint}` : ''}${p.allowedIPs?.length ? ` (${p.allowedIPs.join(', ')})` : ''}`,
        });
        continue;
      }
      const diffs = peerDifferences(p, op);
      if (diffs.length > 0)
        changes.push({
          resource: pres,
          op: 'update',
          before: op,
          after: p,
          dependsOn,
          summary: `set peer ${short(p.publicKey)} of ${d.name}: ${diffs.join(', ')}`,
        });
    }
  }
  return changes;
}
