/** The pure diff: declared section vs observed section → changes with dependencies and risk. */
import type { ChangeRisk, ChangeSpec } from '@opdbus/core';
import { canonicalIp, prefixContains, tryParseCidr, tryParseIp, type ParsedCidr } from '@opdbus/netlink';
import {
  addressKey,
  canonicalAddress,
  canonicalDestination,
  compareAddress,
  compareLink,
  compareRoute,
  immutableLinkFields,
  isAbsent,
  linkKey,
  routeKey,
  routeMetric,
  type FieldChange,
} from './model.js';
import type { HostFacts } from './observe.js';
import type { AddressEntry, LinkEntry, NetworkSection, NetworkValue, RouteEntry } from './schema.js';

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function describeChanges(changes: readonly FieldChange[]): string {
  return changes.map((c) => `${c.field} ${show(c.from)} → ${show(c.to)}`).join(', ');
}

function linkCreateSummary(l: LinkEntry): string {
  const parts: string[] = [l.kind ?? 'link'];
  if (typeof l.peer === 'string') parts.push(`peer ${l.peer}`);
  else if (l.peer !== undefined)
    parts.push(`peer ${l.peer.name}${l.peer.netns ? ` in ${l.peer.netns}` : ''}`);
  if (l.vxlan !== undefined) parts.push(`id ${l.vxlan.id}`);
  if (l.master) parts.push(`master ${l.master}`);
  if (l.mtu !== undefined) parts.push(`mtu ${l.mtu}`);
  if (l.state === 'up') parts.push('up');
  return `create link ${l.name} (${parts.join(', ')})`;
}

function routeText(r: RouteEntry): string {
  const parts = [canonicalDestination(r)];
  if (r.via !== undefined) parts.push(`via ${r.via}`);
  if (r.dev !== undefined) parts.push(`dev ${r.dev}`);
  if (r.nexthops !== undefined) parts.push(`nexthops ${r.nexthops.map((h) => h.via ?? h.dev).join(',')}`);
  if (r.table !== undefined && r.table !== 'main' && r.table !== 254) parts.push(`table ${r.table}`);
  parts.push(`metric ${routeMetric(r)}`);
  return parts.join(' ');
}

/** A removal: its `before` is the resource as observed. */
type Removal<V> = ChangeSpec<V> & { before: V };

/**
 * The changes that take `observed` to `desired`. Only what `desired` names is considered. The
 * order is removals (routes, addresses, links) then the rest (links, addresses, routes), and
 * `dependsOn` makes the core planner put a master before its ports, a link before its
 * addresses, an address before the routes through it — and the reverse for removals.
 */
export function diffSection(
  desired: NetworkSection,
  observed: NetworkSection,
  facts?: HostFacts,
): ChangeSpec<NetworkValue>[] {
  const obsLinks = new Map((observed.links ?? []).map((l) => [l.name, l]));
  const obsAddresses = new Map((observed.addresses ?? []).map((a) => [addressKey(a), a]));
  const obsRoutes = new Map((observed.routes ?? []).map((r) => [routeKey(r), r]));

  const linkChanges: ChangeSpec<LinkEntry>[] = [];
  const linkDeletes: Removal<LinkEntry>[] = [];
  const addressChanges: ChangeSpec<AddressEntry>[] = [];
  const addressDeletes: Removal<AddressEntry>[] = [];
  const routeChanges: ChangeSpec<RouteEntry>[] = [];
  const routeDeletes: Removal<RouteEntry>[] = [];

  const riskOfLink = (name: string): ChangeRisk | undefined => {
    const why = facts?.riskyLinks.get(name);
    return why === undefined ? undefined : { reason: `link ${name} ${why}` };
  };

  // Peers created together with an earlier-declared veth follow it.
  const peerCreator = new Map<string, string>();
  for (const l of desired.links ?? []) {
    if (l.kind !== 'veth' || isAbsent(l)) continue;
    const peer = typeof l.peer === 'string' ? l.peer : l.peer?.netns === undefined ? l.peer?.name : undefined;
    if (peer !== undefined && !peerCreator.has(l.name)) peerCreator.set(peer, l.name);
  }

  for (const want of desired.links ?? []) {
    const have = obsLinks.get(want.name);
    const exists = have !== undefined && !isAbsent(have);
    const resource = linkKey(want.name);
    const deps: string[] = [];
    if (want.master) deps.push(linkKey(want.master));
    if (want.parent !== undefined) deps.push(linkKey(want.parent));
    if (want.vxlan?.dev !== undefined) deps.push(linkKey(want.vxlan.dev));
    const creator = peerCreator.get(want.name);
    if (creator !== undefined && creator !== want.name) deps.push(linkKey(creator));
    if (isAbsent(want)) {
      if (!exists) continue;
      const spec: Removal<LinkEntry> = {
        resource,
        op: 'delete',
        before: have,
        after: null,
        summary: `delete link ${want.name}${have.kind ? ` (${have.kind})` : ''}`,
      };
      const risk = riskOfLink(want.name);
      if (risk) spec.risk = risk;
      linkDeletes.push(spec);
      continue;
    }
    if (!exists) {
      linkChanges.push({
        resource,
        op: 'create',
        before: null,
        after: want,
        dependsOn: deps,
        summary: linkCreateSummary(want),
      });
      continue;
    }
    const changes = compareLink(want, have);
    if (changes.length === 0) continue;
    const recreate = changes.some((c) => immutableLinkFields.has(c.field));
    const spec: ChangeSpec<LinkEntry> = {
      resource,
      op: 'update',
      before: have,
      after: want,
      dependsOn: deps,
      summary: `${recreate ? 'recreate' : 'set'} link ${want.name}: ${describeChanges(changes)}`,
    };
    const risk = riskOfLink(want.name);
    if (risk) spec.risk = risk;
    linkChanges.push(spec);
  }

  const addedPrefixes: { key: string; link: string; cidr: ParsedCidr; local: string }[] = [];
  for (const want of desired.addresses ?? []) {
    const key = addressKey(want);
    const have = obsAddresses.get(key);
    const exists = have !== undefined && !isAbsent(have);
    const ip = tryParseCidr(want.address);
    const riskWhy =
      ip === undefined ? undefined : facts?.riskyAddresses.get(canonicalIp(want.address.split('/')[0]!));
    const risk: ChangeRisk | undefined =
      riskWhy === undefined ? undefined : { reason: `address ${canonicalAddress(want.address)} ${riskWhy}` };
    if (isAbsent(want)) {
      if (!exists) continue;
      const spec: Removal<AddressEntry> = {
        resource: key,
        op: 'delete',
        before: have,
        after: null,
        summary: `remove address ${canonicalAddress(want.address)} from ${want.link}`,
      };
      if (risk) spec.risk = risk;
      addressDeletes.push(spec);
      continue;
    }
    if (ip !== undefined)
      addedPrefixes.push({ key, link: want.link, cidr: ip, local: canonicalIp(want.address.split('/')[0]!) });
    if (!exists) {
      addressChanges.push({
        resource: key,
        op: 'create',
        before: null,
        after: want,
        dependsOn: [linkKey(want.link)],
        summary: `add address ${canonicalAddress(want.address)} to ${want.link}`,
      });
      continue;
    }
    const changes = compareAddress(want, have);
    if (changes.length === 0) continue;
    const spec: ChangeSpec<AddressEntry> = {
      resource: key,
      op: 'update',
      before: have,
      after: want,
      dependsOn: [linkKey(want.link)],
      summary: `change address ${canonicalAddress(want.address)} on ${want.link}: ${describeChanges(changes)}`,
    };
    if (risk) spec.risk = risk;
    addressChanges.push(spec);
  }

  const routeRisk = (r: RouteEntry): ChangeRisk | undefined => {
    const dst = canonicalDestination(r);
    if (dst.endsWith('/0') && (r.table === undefined || r.table === 'main' || r.table === 254))
      return { reason: `route ${dst} is the default route` };
    const client = facts?.sshClient;
    const c = tryParseCidr(dst);
    if (client !== undefined && c !== undefined && prefixContains(c, client))
      return { reason: `route ${dst} carries the management connection (SSH client)` };
    return undefined;
  };
  const removedRoutes: RouteEntry[] = [];
  for (const want of desired.routes ?? []) {
    const key = routeKey(want);
    const have = obsRoutes.get(key);
    const exists = have !== undefined && !isAbsent(have);
    const deps: string[] = [];
    if (want.dev !== undefined) deps.push(linkKey(want.dev));
    for (const h of want.nexthops ?? []) if (h.dev !== undefined) deps.push(linkKey(h.dev));
    const gateways = [want.via, ...(want.nexthops ?? []).map((h) => h.via)]
      .map((v) => (v === undefined ? undefined : tryParseIp(v)))
      .filter((v) => v !== undefined);
    const src = want.src === undefined ? undefined : canonicalIp(want.src);
    for (const p of addedPrefixes) {
      if (gateways.some((g) => prefixContains(p.cidr, g)) || p.local === src) deps.push(p.key);
    }
    if (isAbsent(want)) {
      if (!exists) continue;
      removedRoutes.push(have);
      const spec: Removal<RouteEntry> = {
        resource: key,
        op: 'delete',
        before: have,
        after: null,
        summary: `remove route ${routeText(have)}`,
      };
      const risk = routeRisk(have);
      if (risk) spec.risk = risk;
      routeDeletes.push(spec);
      continue;
    }
    if (!exists) {
      routeChanges.push({
        resource: key,
        op: 'create',
        before: null,
        after: want,
        dependsOn: deps,
        summary: `add route ${routeText(want)}`,
      });
      continue;
    }
    const changes = compareRoute(want, have);
    if (changes.length === 0) continue;
    const spec: ChangeSpec<RouteEntry> = {
      resource: key,
      op: 'update',
      before: have,
      after: want,
      dependsOn: deps,
      summary: `change route ${routeText(want)}: ${describeChanges(changes)}`,
    };
    const risk = routeRisk(want) ?? routeRisk(have);
    if (risk) spec.risk = risk;
    routeChanges.push(spec);
  }

  // Removals in reverse: routes through an address or link go before it; addresses and ports before their link.
  for (const spec of addressDeletes) {
    const a = spec.before;
    const c = tryParseCidr(a.address);
    const deps: string[] = [];
    for (const r of removedRoutes) {
      const via = r.via === undefined ? undefined : tryParseIp(r.via);
      if (r.dev === a.link || (c !== undefined && via !== undefined && prefixContains(c, via)))
        deps.push(routeKey(r));
    }
    spec.dependsOn = deps;
  }
  const changedLinkBefore = [...linkChanges, ...linkDeletes].map((s) => ({
    key: s.resource,
    before: s.before,
  }));
  for (const spec of linkDeletes) {
    const name = spec.before.name;
    const deps: string[] = [];
    for (const a of addressDeletes) if (a.before.link === name) deps.push(a.resource);
    for (const r of routeDeletes) if (r.before.dev === name) deps.push(r.resource);
    for (const other of changedLinkBefore) {
      if (other.key === spec.resource || other.before === null) continue;
      if (other.before.master === name || other.before.parent === name) deps.push(other.key);
    }
    spec.dependsOn = deps;
  }

  return [
    ...routeDeletes,
    ...addressDeletes,
    ...linkDeletes,
    ...linkChanges,
    ...addressChanges,
    ...routeChanges,
  ];
}
