import {
  OpdbusError,
  createPlan,
  definePlugin,
  formatPath,
  makeChange,
  packageVersion,
  type Change,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { Rtnetlink, RtnetlinkMonitor, type NetlinkEvent } from '@opdbus/netlink';
import { applyAddress, applyLink, applyRoute, deleteAddress, deleteLinks, deleteRoute } from './apply.js';
import { diffSection } from './diff.js';
import {
  addressKey,
  canonicalAddress,
  canonicalDestination,
  isAbsent,
  isKernelAddress,
  isManagedRoute,
  linkKey,
  routeKey,
  routeMetric,
  section,
} from './model.js';
import { hostFacts, observe, type HostFacts, type Observation } from './observe.js';
import {
  networkSchema,
  type AddressEntry,
  type LinkEntry,
  type NetworkSection,
  type NetworkValue,
  type RouteEntry,
} from './schema.js';

/**
 * The checkpoint: every touched resource as it was (null: it did not exist), plus the addresses
 * and routes of touched links, which go away with them when they are deleted or recreated.
 */
export type NetworkCheckpoint = {
  /** Link entries by name (null: it did not exist). */
  links: { [name: string]: LinkEntry | null };
  /** Address entries by key (null: it did not exist). */
  addresses: { [key: string]: AddressEntry | null };
  /** Route entries by key (null: it did not exist). */
  routes: { [key: string]: RouteEntry | null };
  /** The addresses each touched link had (not the kernel's own). */
  linkAddresses: { [name: string]: AddressEntry[] };
  /** The routes through each touched link. */
  linkRoutes: { [name: string]: RouteEntry[] };
};

/** The network plugin, typed: its section, checkpoint, change values and the facts `diff` reads. */
export type NetworkPlugin = Plugin<NetworkSection, NetworkCheckpoint, NetworkValue, HostFacts>;

/** Options of {@link createNetworkPlugin}. */
export interface NetworkPluginOptions {
  /**
   * Addresses of the management connection besides the server side of `SSH_CONNECTION`:
   * changes to them, or to the links holding them, are flagged risky.
   */
  managementAddresses?: readonly string[];
  /** Socket receive buffer of the `watch` monitor, in bytes (default 1 MiB). */
  watchReceiveBufferSize?: number;
}

const tableIsMain = (t: RouteEntry['table']): boolean => t === undefined || t === 'main' || t === 254;

/**
 * Create the network plugin: links, addresses and routes over rtnetlink, in the target network
 * namespace when there is one.
 */
export function createNetworkPlugin(options: NetworkPluginOptions = {}): NetworkPlugin {
  const extraManagement = options.managementAddresses ?? [];
  /**
   * Link deletions are batched: consecutive deletions in a plan are queued and the last of them
   * deletes them all with one bulk request (the kernel then waits for one RCU grace period
   * instead of one per link). `checkpoint` sees the plan's changes in order, so it knows the runs.
   */
  const deleteRuns = new Map<string, { run: number; last: boolean; name: string }>();
  const pending = new Map<number, string[]>();
  let runCounter = 0;

  const open = (ctx: PluginContext): Rtnetlink => Rtnetlink.open({ netns: ctx.netns, logger: ctx.logger });

  /**
   * One client per namespace, kept while in use and closed after a second of idleness (an
   * unref'd timer, so it never keeps the process alive): a plan of thousands of changes opens one
   * socket, not thousands.
   */
  const clients = new WeakMap<object, { nl: Rtnetlink; users: number; timer: NodeJS.Timeout | undefined }>();
  const hostKey = {};
  async function withClient<T>(ctx: PluginContext, fn: (nl: Rtnetlink) => Promise<T>): Promise<T> {
    const key = ctx.netns ?? hostKey;
    let entry = clients.get(key);
    if (entry === undefined) {
      entry = { nl: open(ctx), users: 0, timer: undefined };
      clients.set(key, entry);
    }
    const held = entry;
    clearTimeout(held.timer);
    held.users++;
    try {
      return await fn(held.nl);
    } finally {
      held.users--;
      if (held.users === 0) {
        held.timer = setTimeout(() => {
          if (held.users > 0) return;
          if (clients.get(key) === held) clients.delete(key);
          held.nl.close();
        }, 1000).unref();
      }
    }
  }

  /** Deletions still queued (a run that did not reach its last change) are done before anything else. */
  async function flushPending(nl: Rtnetlink): Promise<void> {
    if (pending.size === 0) return;
    const names = [...pending.values()].flat();
    pending.clear();
    await deleteLinks(nl, names, names.map(linkKey).join(', '));
  }

  function validateScope(desired: NetworkSection, obs: Observation, strict: boolean): string[] {
    const problems: string[] = [];
    const fail = (path: (string | number)[], message: string): void => {
      const p = formatPath(['plugins', 'network', ...path]);
      if (strict)
        throw new OpdbusError('OPDBUS_ERR_NETWORK_INVALID', `${p}: ${message}.`, { data: { path: p } });
      problems.push(`${p}: ${message}`);
    };
    const declared = new Map((desired.links ?? []).map((l) => [l.name, l]));
    const willExist = (name: string): boolean => {
      const d = declared.get(name);
      if (d !== undefined)
        return !isAbsent(d) && (obs.byName.has(name) || d.kind !== undefined || isPeerOfDeclared(name));
      return obs.byName.has(name) || isPeerOfDeclared(name);
    };
    const isPeerOfDeclared = (name: string): boolean =>
      (desired.links ?? []).some(
        (l) =>
          !isAbsent(l) &&
          (l.peer === name ||
            (typeof l.peer === 'object' && l.peer.netns === undefined && l.peer.name === name)),
      );
    for (const [i, l] of (desired.links ?? []).entries()) {
      if (isAbsent(l)) continue;
      const live = obs.byName.get(l.name);
      if (live === undefined) {
        if (l.kind === undefined && !isPeerOfDeclared(l.name))
          fail(
            ['links', i],
            `link ${l.name} does not exist and has no kind, so it cannot be created; add a kind (bridge, veth, vxlan ...) or correct the name`,
          );
        if (l.kind === 'veth' && l.peer === undefined && !isPeerOfDeclared(l.name))
          fail(['links', i, 'peer'], `veth ${l.name} is to be created and needs a peer`);
        if ((l.kind === 'vlan' || l.kind === 'macvlan' || l.kind === 'macvtap') && l.parent === undefined)
          fail(['links', i, 'parent'], `${l.kind} ${l.name} is to be created and needs a parent link`);
        if (l.kind === 'vlan' && l.vlan === undefined)
          fail(['links', i, 'vlan'], `vlan ${l.name} needs \`vlan: { id: ... }\``);
      } else if (l.kind !== undefined) {
        const have = obs.linkEntries.get(l.name);
        if (have?.kind === undefined && l.kind !== (live.kind ?? ''))
          fail(
            ['links', i, 'kind'],
            `link ${l.name} exists as ${live.kind ? `a ${live.kind} link` : 'a device'} that cannot be recreated as ${l.kind}; remove the kind or use another name`,
          );
      }
      for (const [field, ref] of [
        ['master', l.master],
        ['parent', l.parent],
      ] as const) {
        if (typeof ref === 'string' && !willExist(ref))
          fail(['links', i, field], `link ${ref} does not exist and is not declared with a kind`);
      }
    }
    for (const [i, a] of (desired.addresses ?? []).entries()) {
      if (a.state !== 'absent' && !willExist(a.link))
        fail(['addresses', i, 'link'], `link ${a.link} does not exist and is not declared with a kind`);
    }
    for (const [i, r] of (desired.routes ?? []).entries()) {
      if (r.state === 'absent') continue;
      for (const dev of [r.dev, ...(r.nexthops ?? []).map((h) => h.dev)])
        if (dev !== undefined && !willExist(dev))
          fail(['routes', i], `link ${dev} does not exist and is not declared with a kind`);
    }
    return problems;
  }

  /** The observed section for exactly what `desired` names, absent ones marked. */
  function scopedSection(desired: NetworkSection, obs: Observation): NetworkSection {
    const links = desired.links?.map(
      (d): LinkEntry => obs.linkEntries.get(d.name) ?? { name: d.name, state: 'absent' },
    );
    const addresses = desired.addresses?.map(
      (d): AddressEntry =>
        obs.addressEntries.get(addressKey(d))?.entry ?? {
          link: d.link,
          address: canonicalAddress(d.address),
          state: 'absent',
        },
    );
    const routes = desired.routes?.map((d): RouteEntry => {
      const found = obs.routeEntries.get(routeKey(d))?.entry;
      if (found !== undefined) return found;
      const marker: RouteEntry = { to: canonicalDestination(d), metric: routeMetric(d), state: 'absent' };
      if (!tableIsMain(d.table)) marker.table = d.table!;
      return marker;
    });
    return section(links, addresses, routes);
  }

  function fullSection(obs: Observation): NetworkSection {
    return section(
      [...obs.linkEntries.values()],
      [...obs.addressEntries.values()].map((a) => a.entry),
      [...obs.routeEntries.values()].filter((r) => isManagedRoute(r.route)).map((r) => r.entry),
    );
  }

  async function applyChange(nl: Rtnetlink, change: Change<NetworkValue>): Promise<void> {
    const kind = change.resource.slice(0, change.resource.indexOf('/'));
    if (kind === 'link') {
      if (change.op === 'delete') {
        const name = (change.before as LinkEntry | null)?.name ?? change.resource.slice(5);
        const run = deleteRuns.get(change.id);
        if (run === undefined) {
          await flushPending(nl);
          await deleteLinks(nl, [name], change.resource);
          return;
        }
        deleteRuns.delete(change.id);
        const names = pending.get(run.run) ?? [];
        names.push(name);
        pending.set(run.run, names);
        if (!run.last) return;
        pending.delete(run.run);
        await flushPending(nl);
        await deleteLinks(nl, names, names.map(linkKey).join(', '));
        return;
      }
      await flushPending(nl);
      await applyLink(nl, change.after as LinkEntry, change.resource, change.op);
      return;
    }
    await flushPending(nl);
    if (kind === 'address') {
      if (change.op === 'delete') await deleteAddress(nl, change);
      else await applyAddress(nl, change);
      return;
    }
    if (kind === 'route') {
      if (change.op === 'delete') await deleteRoute(nl, change);
      else await applyRoute(nl, change);
      return;
    }
    throw new OpdbusError(
      'OPDBUS_ERR_NETWORK_INVALID',
      `Unknown network resource "${change.resource}" in a plan; it was not made by this plugin.`,
      {
        data: { resource: change.resource },
      },
    );
  }

  return definePlugin<NetworkSection, NetworkCheckpoint, NetworkValue, HostFacts>({
    name: 'network',
    version: packageVersion(import.meta.url),
    description: 'Links, addresses and routes over rtnetlink (in the target network namespace with --netns).',
    schema: networkSchema,

    async probe(ctx) {
      try {
        // The client it opens is the one the query or apply that follows uses (kept a second).
        await withClient(ctx, () => Promise.resolve());
        return { available: true, detail: ctx.netns ? `rtnetlink in ${ctx.netns.name}` : 'rtnetlink' };
      } catch (err) {
        return { available: false, reason: `cannot open an rtnetlink socket: ${(err as Error).message}` };
      }
    },

    query(ctx, queryOptions) {
      return withClient(ctx, async (nl) => {
        await flushPending(nl);
        const obs = await observe(nl, ctx.netns);
        const scope = queryOptions?.scope;
        let out: NetworkSection;
        if (scope === undefined) out = fullSection(obs);
        else {
          validateScope(scope, obs, true);
          out = scopedSection(scope, obs);
        }
        return out;
      });
    },

    // The management path (links with the default route, the SSH connection's address), for
    // flagging risky changes: read from the host as it is, whatever the section names.
    facts(ctx) {
      return withClient(ctx, async (nl) => hostFacts(await observe(nl, ctx.netns), extraManagement));
    },

    diff(desired, observed, facts) {
      return diffSection(desired, observed, facts);
    },

    apply(change, ctx) {
      return withClient(ctx, (nl) => applyChange(nl, change));
    },

    checkpoint(ctx, changes) {
      return withClient(ctx, async (nl) => {
        await flushPending(nl);
        const obs = await observe(nl, ctx.netns);
        const token: NetworkCheckpoint = {
          links: {},
          addresses: {},
          routes: {},
          linkAddresses: {},
          linkRoutes: {},
        };
        const recordLink = (name: string): void => {
          if (name in token.links) return;
          const entry = obs.linkEntries.get(name);
          token.links[name] = entry ?? null;
          if (entry === undefined) return;
          const link = obs.byName.get(name)!;
          token.linkAddresses[name] = obs.addresses
            .filter((a) => a.index === link.index && !isKernelAddress(a))
            .map(
              (a) =>
                obs.addressEntries.get(addressKey({ link: name, address: `${a.address}/${a.prefixLength}` }))!
                  .entry,
            );
          token.linkRoutes[name] = [...obs.routeEntries.values()]
            .filter(
              (r) =>
                isManagedRoute(r.route) &&
                (r.route.oif === link.index || r.route.nexthops?.some((h) => h.ifindex === link.index)),
            )
            .map((r) => r.entry);
          // Deleting one end of a veth deletes the other: keep the peer too.
          if (typeof entry.peer === 'string') recordLink(entry.peer);
        };
        // A new plan: runs recorded for an earlier one that never got applied are forgotten (a
        // delete without a run is simply done at once).
        deleteRuns.clear();
        let run = -1;
        const runs: { id: string; name: string; run: number }[] = [];
        for (const change of changes) {
          const slash = change.resource.indexOf('/');
          const kind = change.resource.slice(0, slash);
          const key = change.resource;
          if (kind === 'link') recordLink(key.slice(slash + 1));
          else if (kind === 'address') token.addresses[key] = obs.addressEntries.get(key)?.entry ?? null;
          else if (kind === 'route') token.routes[key] = obs.routeEntries.get(key)?.entry ?? null;
          if (kind === 'link' && change.op === 'delete') {
            if (run === -1) run = ++runCounter;
            runs.push({ id: change.id, name: key.slice(slash + 1), run });
          } else run = -1;
        }
        for (const [i, r] of runs.entries()) {
          const next = runs[i + 1];
          deleteRuns.set(r.id, { run: r.run, name: r.name, last: next === undefined || next.run !== r.run });
        }
        return token;
      });
    },

    restore(token, ctx) {
      return withClient(ctx, async (nl) => {
        // Deletions queued by an interrupted run never happened; forget them.
        pending.clear();
        deleteRuns.clear();
        const links: LinkEntry[] = Object.entries(token.links).map(
          ([name, e]) => e ?? { name, state: 'absent' },
        );
        const addresses = new Map<string, AddressEntry>();
        const routes = new Map<string, RouteEntry>();
        for (const list of Object.values(token.linkAddresses))
          for (const a of list) addresses.set(addressKey(a), a);
        for (const list of Object.values(token.linkRoutes)) for (const r of list) routes.set(routeKey(r), r);
        for (const [key, e] of Object.entries(token.addresses)) {
          if (e !== null) addresses.set(key, e);
          else {
            const [, link, ...rest] = key.split('/');
            addresses.set(key, { link: link!, address: rest.join('/'), state: 'absent' });
          }
        }
        for (const [key, e] of Object.entries(token.routes)) {
          if (e !== null) routes.set(key, e);
          else {
            const [, table, ...rest] = key.split('/');
            const metric = Number(rest.pop());
            const marker: RouteEntry = { to: rest.join('/'), metric, state: 'absent' };
            if (Number(table) !== 254) marker.table = Number(table);
            routes.set(key, marker);
          }
        }
        // Links that did not exist before: their addresses and routes go with them.
        const gone = new Set(links.filter(isAbsent).map((l) => l.name));
        const desired = section(
          links,
          [...addresses.values()].filter((a) => !gone.has(a.link)),
          [...routes.values()].filter((r) => r.dev === undefined || !gone.has(r.dev)),
        );
        const obs = await observe(nl, ctx.netns);
        const problems = validateScope(desired, obs, false);
        const observed = scopedSection(desired, obs);
        const plan = createPlan(diffSection(desired, observed).map((spec) => makeChange('network', spec)));
        const failures = [...problems];
        const deletions = plan.changes.filter((c) => c.resource.startsWith('link/') && c.op === 'delete');
        let deleted = false;
        for (const change of plan.changes) {
          try {
            if (change.resource.startsWith('link/') && change.op === 'delete') {
              if (deleted) continue;
              deleted = true;
              await deleteLinks(
                nl,
                deletions.map((c) => (c.before as LinkEntry).name),
                'links',
              );
            } else await applyChange(nl, change);
          } catch (err) {
            failures.push(`${change.summary}: ${(err as Error).message}`);
          }
        }
        if (failures.length > 0) {
          throw new OpdbusError('OPDBUS_ERR_NETWORK_RESTORE', `Could not restore: ${failures.join('; ')}.`, {
            data: { failures },
          });
        }
      });
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const monitor = await RtnetlinkMonitor.open({
        netns: ctx.netns,
        groups: ['link', 'ipv4-address', 'ipv6-address', 'ipv4-route', 'ipv6-route'],
        resync: true,
        receiveBufferSize: options.watchReceiveBufferSize ?? 1 << 20,
        logger: ctx.logger,
      });
      const names = new Map<number, string>();
      for (const e of monitor.snapshot()) if (e.type === 'link') names.set(e.link.index, e.link.name);
      monitor.on('error', (err) => ctx.logger.warn({ err }, 'network watch error'));
      monitor.on('event', (event: NetlinkEvent) => {
        const out = toWatchEvent(event, names);
        if (event.type === 'link') {
          if (event.action === 'delete') names.delete(event.link.index);
          else names.set(event.link.index, event.link.name);
        }
        if (out !== undefined) onEvent(out);
      });
      return () => monitor.close();
    },
  });
}

function toWatchEvent(event: NetlinkEvent, names: ReadonlyMap<number, string>): WatchEvent | undefined {
  const how = (e: { resync?: true }): string => (e.resync ? ' (found by resync)' : '');
  switch (event.type) {
    case 'link': {
      const l = event.link;
      const master = l.master === undefined ? null : (names.get(l.master) ?? l.master);
      return {
        plugin: 'network',
        resource: linkKey(l.name),
        detail:
          event.action === 'delete'
            ? `link ${l.name} deleted${how(event)}`
            : `link ${l.name}: ${l.up ? 'up' : 'down'}, mtu ${l.mtu}${master === null ? '' : `, master ${master}`}${how(event)}`,
        raw: {
          action: event.action,
          index: l.index,
          name: l.name,
          up: l.up,
          mtu: l.mtu,
          master,
          operState: l.operState,
        },
      };
    }
    case 'address': {
      const a = event.address;
      const link = names.get(a.index) ?? String(a.index);
      const cidr = `${a.address}/${a.prefixLength}`;
      return {
        plugin: 'network',
        resource: addressKey({ link, address: cidr }),
        detail: `address ${cidr} ${event.action === 'delete' ? 'removed from' : 'on'} ${link}${how(event)}`,
        raw: { action: event.action, link, address: cidr },
      };
    }
    case 'route': {
      const r = event.route;
      if (r.table === 255) return undefined;
      const key = routeKey({ to: r.destination, metric: r.priority, table: r.table });
      return {
        plugin: 'network',
        resource: key,
        detail: `route ${r.destination}${r.gateway ? ` via ${r.gateway}` : ''} ${event.action === 'delete' ? 'removed' : 'present'}${how(event)}`,
        raw: {
          action: event.action,
          to: r.destination,
          table: r.table,
          metric: r.priority,
          ...(r.gateway ? { via: r.gateway } : {}),
        },
      };
    }
    case 'overrun':
      return {
        plugin: 'network',
        detail: 'the kernel dropped network events (ENOBUFS); resynchronising with a full dump',
        raw: { overrun: event.at },
      };
    case 'resync':
      return {
        plugin: 'network',
        detail: `resynchronised after an overrun: ${event.added} added, ${event.changed} changed, ${event.removed} removed`,
        raw: { resync: { added: event.added, changed: event.changed, removed: event.removed } },
      };
    default:
      return undefined;
  }
}

/** The network plugin with default options. */
export const networkPlugin: NetworkPlugin = createNetworkPlugin();
