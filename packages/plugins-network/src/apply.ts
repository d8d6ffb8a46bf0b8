/** Applying one change through the rtnetlink client, idempotently. */
import { OpdbusError, isOpdbusError, type Change } from '@opdbus/core';
import {
  LIFETIME_FOREVER,
  type AddressRequest,
  type CreateLinkRequest,
  type Link,
  type Rtnetlink,
  type RouteRequest,
  type SetLinkRequest,
} from '@opdbus/netlink';
import {
  addressFlagBits,
  canonicalDestination,
  compareAddress,
  compareLink,
  immutableLinkFields,
  isKernelAddress,
  isManagedRoute,
  linkEntry,
  protocolNumber,
  routeEntry,
  routeFamily,
  routeMetric,
  routeTypeByName,
  scopeNumber,
  tableNumber,
  type NameResolver,
} from './model.js';
import type { AddressEntry, LinkEntry, NetworkValue, RouteEntry } from './schema.js';

const errno = {
  ESRCH: 3,
  ENOENT: 2,
  ENODEV: 19,
  EEXIST: 17,
  EADDRNOTAVAIL: 99,
} as const;

/** Whether an error is a kernel refusal with one of these errno numbers. */
export function isErrno(err: unknown, ...numbers: number[]): boolean {
  return (
    isOpdbusError(err, 'OPDBUS_ERR_NETLINK_REQUEST') && numbers.includes(err.data?.errnoNumber as number)
  );
}

/** Rethrow a netlink failure as OPDBUS_ERR_NETWORK_APPLY naming the change, errno kept. */
export function applyError(what: string, resource: string, err: unknown): OpdbusError {
  if (isOpdbusError(err, 'OPDBUS_ERR_NETWORK_APPLY') || isOpdbusError(err, 'OPDBUS_ERR_NETWORK_INVALID'))
    return err;
  if (isOpdbusError(err) && err.data?.errno !== undefined) {
    return new OpdbusError('OPDBUS_ERR_NETWORK_APPLY', `Cannot ${what}: ${err.message}`, {
      data: { resource, ...err.data },
      cause: err,
    });
  }
  if (isOpdbusError(err)) return err;
  return new OpdbusError('OPDBUS_ERR_NETWORK_APPLY', `Cannot ${what}: ${(err as Error).message}.`, {
    data: { resource },
    cause: err,
  });
}

/** The library's create request for a declared link. */
export function createRequest(want: LinkEntry): CreateLinkRequest {
  if (want.kind === undefined) {
    throw new OpdbusError(
      'OPDBUS_ERR_NETWORK_INVALID',
      `Link ${want.name} does not exist and its entry has no kind, so it cannot be created; add a kind (bridge, veth, vxlan ...) or correct the name.`,
      { data: { link: want.name } },
    );
  }
  const req: CreateLinkRequest = { name: want.name, kind: want.kind };
  if (want.mtu !== undefined) req.mtu = want.mtu;
  if (want.mac !== undefined) req.address = want.mac;
  if (want.master) req.master = want.master;
  if (want.parent !== undefined) req.parent = want.parent;
  if (want.state === 'up') req.up = true;
  if (want.kind === 'veth') {
    if (want.peer === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_NETWORK_INVALID',
        `Link ${want.name} is a veth to create but names no peer; add \`peer: NAME\`.`,
        {
          data: { link: want.name },
        },
      );
    }
    req.peer =
      typeof want.peer === 'string'
        ? { name: want.peer }
        : { name: want.peer.name, ...(want.peer.netns ? { netns: want.peer.netns } : {}) };
  }
  if (want.vxlan !== undefined) {
    const v = want.vxlan;
    req.vxlan = { id: v.id };
    if (v.local !== undefined) req.vxlan.local = v.local;
    if (v.remote !== undefined) req.vxlan.remote = v.remote;
    if (v.group !== undefined) req.vxlan.group = v.group;
    if (v.port !== undefined) req.vxlan.port = v.port;
    if (v.dev !== undefined) req.vxlan.dev = v.dev;
    if (v.ttl !== undefined) req.vxlan.ttl = v.ttl;
    if (v.learning !== undefined) req.vxlan.learning = v.learning;
  }
  const bridge = bridgeOptions(want);
  if (bridge !== undefined) req.bridge = bridge;
  if (want.macvlan !== undefined) req.macvlan = { mode: want.macvlan.mode };
  if (want.vlan !== undefined)
    req.vlan = { id: want.vlan.id, ...(want.vlan.protocol ? { protocol: want.vlan.protocol } : {}) };
  if (want.bond !== undefined)
    req.bond = {
      mode: want.bond.mode,
      ...(want.bond.miimon !== undefined ? { miimon: want.bond.miimon } : {}),
    };
  if (want.tap !== undefined) {
    req.tun = {};
    if (want.tap.owner !== undefined) req.tun.owner = want.tap.owner;
    if (want.tap.group !== undefined) req.tun.group = want.tap.group;
    if (want.tap.multiQueue !== undefined) req.tun.multiQueue = want.tap.multiQueue;
  }
  return req;
}

/**
 * The bridge attributes to send: at creation those the document gives, except VLAN filtering
 * off (the kernel's default; a kernel built without VLAN filtering refuses the attribute with
 * EOPNOTSUPP whatever its value, yet reports it, so a queried bridge could not be created again);
 * for an update only the `changed` fields.
 */
function bridgeOptions(
  want: LinkEntry,
  changed?: ReadonlySet<string>,
): CreateLinkRequest['bridge'] | undefined {
  const b = want.bridge;
  if (b === undefined) return undefined;
  const out: NonNullable<CreateLinkRequest['bridge']> = {};
  const send = (field: string): boolean => changed === undefined || changed.has(`bridge.${field}`);
  if (b.stp !== undefined && send('stp')) out.stpState = b.stp ? 1 : 0;
  if (b.vlanFiltering !== undefined && (changed === undefined ? b.vlanFiltering : send('vlanFiltering')))
    out.vlanFiltering = b.vlanFiltering;
  if (b.forwardDelay !== undefined && send('forwardDelay'))
    out.forwardDelay = Math.round(b.forwardDelay * 100);
  if (b.priority !== undefined && send('priority')) out.priority = b.priority;
  return out;
}

/** A resolver for the few links a single link refers to (master, parent/peer, vxlan device). */
async function resolverFor(nl: Rtnetlink, link: Link): Promise<NameResolver> {
  const indexes = [link.master, link.link, link.vxlan?.link].filter(
    (i): i is number => i !== undefined && i !== 0 && !(i === link.link && link.linkNetnsId !== undefined),
  );
  const names = new Map<number, string>();
  await Promise.all(
    indexes.map(async (i) => {
      const l = await nl.getLink(i);
      if (l !== undefined) names.set(i, l.name);
    }),
  );
  return { linkName: (i) => names.get(i), foreignPeer: () => undefined };
}

/** The entry of a live link (its references resolved to names). */
export async function liveLinkEntry(nl: Rtnetlink, link: Link): Promise<LinkEntry> {
  return linkEntry(link, await resolverFor(nl, link));
}

/** Create or update a link to match `want`; recreate it when an immutable attribute differs. */
export async function applyLink(
  nl: Rtnetlink,
  want: LinkEntry,
  resource: string,
  op: Change['op'],
): Promise<void> {
  // A create usually finds nothing there: try it first, and fall back to an update when the link
  // exists after all (a veth peer created with its pair, an apply repeated).
  if (op === 'create') {
    try {
      await nl.createLink(createRequest(want));
      return;
    } catch (err) {
      if (!isErrno(err, errno.EEXIST)) throw applyError(`create link ${want.name}`, resource, err);
    }
  }
  const live = await nl.getLink(want.name);
  if (live === undefined) {
    try {
      await nl.createLink(createRequest(want));
    } catch (err) {
      throw applyError(`create link ${want.name}`, resource, err);
    }
    return;
  }
  const have = await liveLinkEntry(nl, live);
  // A peer in another namespace is not resolved here: compare it only when it differs by name.
  const changes = compareLink(want, have).filter(
    (c) => !(c.field === 'peer' && typeof want.peer === 'object' && have.peer === undefined),
  );
  if (changes.length === 0) return;
  if (changes.some((c) => immutableLinkFields.has(c.field))) {
    await recreateLink(nl, want, have, live, resource);
    return;
  }
  const set: SetLinkRequest = {};
  for (const c of changes) {
    if (c.field === 'state') set.up = want.state === 'up';
    else if (c.field === 'mtu' && want.mtu !== undefined) set.mtu = want.mtu;
    else if (c.field === 'mac' && want.mac !== undefined) set.address = want.mac;
    else if (c.field === 'master' && want.master !== undefined) set.master = want.master;
  }
  const bridge = changes.some((c) => c.field.startsWith('bridge.'))
    ? bridgeOptions(want, new Set(changes.map((c) => c.field)))
    : undefined;
  if (bridge !== undefined) set.bridge = bridge;
  if (changes.some((c) => c.field.startsWith('vxlan.')) && want.vxlan !== undefined) {
    set.vxlan = {};
    if (want.vxlan.ttl !== undefined) set.vxlan.ttl = want.vxlan.ttl;
    if (want.vxlan.learning !== undefined) set.vxlan.learning = want.vxlan.learning;
  }
  if (changes.some((c) => c.field === 'macvlan.mode') && want.macvlan !== undefined)
    set.macvlan = { mode: want.macvlan.mode };
  if (changes.some((c) => c.field === 'bond.miimon') && want.bond?.miimon !== undefined)
    set.bond = { miimon: want.bond.miimon };
  try {
    await nl.setLink(want.name, set);
  } catch (err) {
    throw applyError(`set link ${want.name}`, resource, err);
  }
}

/**
 * Delete and create a link again (its kind, a veth peer, a VXLAN id ... cannot change in place),
 * keeping what the document does not mention: the attributes it had, its addresses and its
 * routes are put back.
 */
async function recreateLink(
  nl: Rtnetlink,
  want: LinkEntry,
  have: LinkEntry,
  live: Link,
  resource: string,
): Promise<void> {
  const [addresses, routes] = await Promise.all([
    nl.listAddresses({ link: live.index }),
    nl.listRoutes({ oif: live.index }),
  ]);
  const keepAddresses = addresses.filter((a) => !isKernelAddress(a));
  const resolver: NameResolver = {
    linkName: (i) => (i === live.index ? want.name : undefined),
    foreignPeer: () => undefined,
  };
  const keepRoutes = routes.filter(isManagedRoute).map((r) => routeEntry(r, resolver));
  const merged: LinkEntry = {
    ...(want.kind !== undefined && want.kind !== have.kind ? { name: have.name } : have),
    ...want,
  };
  if (merged.kind !== 'veth') delete merged.peer;
  try {
    await nl.deleteLink(live.index);
    await nl.createLink(createRequest(merged));
  } catch (err) {
    throw applyError(`recreate link ${want.name}`, resource, err);
  }
  const failures: string[] = [];
  // Only the flags one can set (not tentative, permanent, deprecated ...).
  const settable = Object.values(addressFlagBits).reduce((acc, bit) => acc | bit, 0);
  for (const a of keepAddresses) {
    const req: AddressRequest = {
      link: want.name,
      address: `${a.address}/${a.prefixLength}`,
      scope: a.scope,
      flags: a.flags & settable,
    };
    if (a.peer !== undefined) req.peer = a.peer;
    if (a.broadcast !== undefined) req.broadcast = a.broadcast;
    if (a.label !== undefined) req.label = a.label;
    if (a.validLifetime !== LIFETIME_FOREVER) req.validLifetime = a.validLifetime;
    if (a.preferredLifetime !== LIFETIME_FOREVER) req.preferredLifetime = a.preferredLifetime;
    if (a.routePriority !== undefined) req.metric = a.routePriority;
    await nl
      .addAddress(req, { replace: true })
      .catch((err: unknown) =>
        failures.push(`address ${a.address}/${a.prefixLength}: ${(err as Error).message}`),
      );
  }
  for (const r of keepRoutes) {
    await nl
      .replaceRoute(routeRequest(r))
      .catch((err: unknown) => failures.push(`route ${r.to}: ${(err as Error).message}`));
  }
  if (failures.length > 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_NETWORK_APPLY',
      `Link ${want.name} was recreated but some of its addresses or routes could not be put back: ${failures.join('; ')}.`,
      { data: { resource, failures } },
    );
  }
}

/** The library's address request for a declared address. */
export function addressRequest(want: AddressEntry): AddressRequest {
  const req: AddressRequest = { link: want.link, address: want.address };
  if (want.peer !== undefined) req.peer = want.peer;
  if (want.broadcast !== undefined) req.broadcast = want.broadcast;
  if (want.label !== undefined) req.label = want.label;
  if (want.scope !== undefined) req.scope = scopeNumber(want.scope);
  if (want.flags !== undefined) req.flags = want.flags.reduce((acc, f) => acc | (addressFlagBits[f] ?? 0), 0);
  if (want.validLifetime !== undefined)
    req.validLifetime = want.validLifetime === 'forever' ? LIFETIME_FOREVER : want.validLifetime;
  if (want.preferredLifetime !== undefined)
    req.preferredLifetime = want.preferredLifetime === 'forever' ? LIFETIME_FOREVER : want.preferredLifetime;
  if (want.metric !== undefined) req.metric = want.metric;
  return req;
}

const replaceable = new Set(['flags', 'validLifetime', 'preferredLifetime', 'metric']);

/** Add or change an address; `before` is what was observed (to choose replace vs delete + add). */
export async function applyAddress(nl: Rtnetlink, change: Change<NetworkValue>): Promise<void> {
  const want = change.after as AddressEntry;
  const before = change.before as AddressEntry | null;
  try {
    if (change.op === 'update' && before !== null) {
      const changed = compareAddress(want, before);
      if (changed.some((c) => !replaceable.has(c.field))) {
        await nl
          .deleteAddress({
            link: want.link,
            address: want.address,
            ...(before.peer ? { peer: before.peer } : {}),
          })
          .catch((err: unknown) => {
            if (!isErrno(err, errno.EADDRNOTAVAIL, errno.ENOENT)) throw err;
          });
      }
    }
    await nl.addAddress(addressRequest(want), { replace: true });
  } catch (err) {
    throw applyError(change.summary, change.resource, err);
  }
}

/** Remove an address (already gone is fine). */
export async function deleteAddress(nl: Rtnetlink, change: Change<NetworkValue>): Promise<void> {
  const have = change.before as AddressEntry;
  try {
    await nl.deleteAddress({
      link: have.link,
      address: have.address,
      ...(have.peer ? { peer: have.peer } : {}),
    });
  } catch (err) {
    if (isErrno(err, errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV)) return;
    throw applyError(change.summary, change.resource, err);
  }
}

/** The library's route request for a declared route. */
export function routeRequest(want: RouteEntry): RouteRequest {
  const req: RouteRequest = {
    to: canonicalDestination(want),
    family: routeFamily(want),
    table: tableNumber(want.table),
    metric: routeMetric(want),
  };
  if (want.via !== undefined) req.via = want.via;
  if (want.dev !== undefined) req.dev = want.dev;
  if (want.scope !== undefined) req.scope = scopeNumber(want.scope);
  if (want.type !== undefined) req.type = routeTypeByName[want.type] ?? 1;
  if (want.protocol !== undefined) req.protocol = protocolNumber(want.protocol);
  if (want.src !== undefined) req.src = want.src;
  if (want.onlink !== undefined) req.onlink = want.onlink;
  if (want.nexthops !== undefined) {
    req.nexthops = want.nexthops.map((h) => ({
      ...(h.via !== undefined ? { via: h.via } : {}),
      ...(h.dev !== undefined ? { dev: h.dev } : {}),
      ...(h.weight !== undefined ? { weight: h.weight } : {}),
      ...(h.onlink !== undefined ? { onlink: h.onlink } : {}),
    }));
  }
  if (want.mtu !== undefined || want.advmss !== undefined) {
    req.metrics = {};
    if (want.mtu !== undefined) req.metrics.mtu = want.mtu;
    if (want.advmss !== undefined) req.metrics.advmss = want.advmss;
  }
  return req;
}

/** Add or replace a route. */
export async function applyRoute(nl: Rtnetlink, change: Change<NetworkValue>): Promise<void> {
  try {
    await nl.replaceRoute(routeRequest(change.after as RouteEntry));
  } catch (err) {
    throw applyError(change.summary, change.resource, err);
  }
}

/** Remove a route by its identity (already gone is fine). */
export async function deleteRoute(nl: Rtnetlink, change: Change<NetworkValue>): Promise<void> {
  const have = change.before as RouteEntry;
  try {
    await nl.deleteRoute({
      to: canonicalDestination(have),
      family: routeFamily(have),
      table: tableNumber(have.table),
      metric: routeMetric(have),
    });
  } catch (err) {
    if (isErrno(err, errno.ESRCH, errno.ENOENT, errno.ENODEV)) return;
    throw applyError(change.summary, change.resource, err);
  }
}

/** Delete links; several at once go through the client's bulk delete (one kernel unregister). */
export async function deleteLinks(nl: Rtnetlink, names: readonly string[], resource: string): Promise<void> {
  try {
    if (names.length === 1) {
      await nl.deleteLink(names[0]!).catch((err: unknown) => {
        if (!isErrno(err, errno.ENODEV)) throw err;
      });
    } else await nl.deleteLinks(names);
  } catch (err) {
    throw applyError(`delete link${names.length > 1 ? 's' : ''} ${names.join(', ')}`, resource, err);
  }
}
