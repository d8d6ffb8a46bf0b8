import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { NLMSG_HDRLEN, rd } from './codec.js';
import { NETLINK, RTM, RTNLGRP } from './constants.js';
import { decodeAddress, decodeLink, decodeNeighbour, decodeRoute } from './decode.js';
import { Rtnetlink } from './rtnetlink.js';
import { NetlinkSocket, type NetnsTarget } from './socket.js';
import type { Address, Link, Neighbour, Route } from './types.js';

/** The rtnetlink multicast groups a monitor can join. */
export type MonitorGroup =
  'link' | 'ipv4-address' | 'ipv6-address' | 'ipv4-route' | 'ipv6-route' | 'neighbour';

const groupNumbers: Readonly<Record<MonitorGroup, number>> = {
  link: RTNLGRP.LINK,
  'ipv4-address': RTNLGRP.IPV4_IFADDR,
  'ipv6-address': RTNLGRP.IPV6_IFADDR,
  'ipv4-route': RTNLGRP.IPV4_ROUTE,
  'ipv6-route': RTNLGRP.IPV6_ROUTE,
  neighbour: RTNLGRP.NEIGH,
};

/** Every group (the default). */
export const allMonitorGroups: readonly MonitorGroup[] = Object.keys(groupNumbers) as MonitorGroup[];

/** Whether an object appeared/changed (`new`) or went away (`delete`). */
export type MonitorAction = 'new' | 'delete';

/**
 * A typed rtnetlink event. `resync: true` marks an event synthesised by comparing a full dump
 * with what the monitor knew, after the kernel dropped notifications.
 */
export type NetlinkEvent =
  | { type: 'link'; action: MonitorAction; link: Link; resync?: true }
  | { type: 'address'; action: MonitorAction; address: Address; resync?: true }
  | { type: 'route'; action: MonitorAction; route: Route; resync?: true }
  | { type: 'neighbour'; action: MonitorAction; neighbour: Neighbour; resync?: true }
  /** The kernel dropped notifications (ENOBUFS: the receive buffer overflowed); a resync follows. */
  | { type: 'overrun'; at: string }
  /** A resync after an overrun finished: the changes it found were emitted as `resync` events. */
  | { type: 'resync'; added: number; changed: number; removed: number; durationMs: number };

/** Options of {@link RtnetlinkMonitor.open}. */
export interface MonitorOptions {
  /** Watch inside this network namespace (name, path, `pid:N` or an open `Netns`). */
  netns?: NetnsTarget;
  /** Groups to join (default: all). */
  groups?: readonly MonitorGroup[];
  /**
   * Keep a view of the current objects (filled by a dump at start) so that after an overrun the
   * monitor can dump again and emit what changed (default true). Without it an overrun is
   * reported and nothing else.
   */
  resync?: boolean;
  /** Socket receive buffer in bytes (default 1 MiB; small values make overruns likely). */
  receiveBufferSize?: number;
  /** Keep the process alive while the monitor is open (default true). */
  ref?: boolean;
  logger?: Logger;
}

type Keyed = { key: string; event: NetlinkEvent };

function linkKey(l: Link): string {
  return `l:${l.index}`;
}
function addressKey(a: Address): string {
  return `a:${a.index}/${a.family}/${a.address}/${a.prefixLength}/${a.peer ?? ''}`;
}
function routeKey(r: Route): string {
  return `r:${r.family}/${r.table}/${r.destination}/${r.source ?? ''}/${r.tos}/${r.priority}`;
}
function neighbourKey(n: Neighbour): string {
  return `n:${n.index}/${n.family}/${n.destination ?? ''}/${n.lladdr ?? ''}`;
}

/**
 * Events from the rtnetlink multicast groups, typed. Emits `'event'` with a {@link NetlinkEvent}
 * and `'error'` with an `OpdbusError`.
 *
 * When the kernel outruns the reader (ENOBUFS), notifications are lost. The monitor then says
 * so (an `overrun` event), drops what is still queued (it predates the dump), dumps links,
 * addresses, routes and neighbours again, emits what differs from its view as `resync` events,
 * and ends with a `resync` summary — instead of silently missing state.
 *
 * @example
 * ```ts
 * const monitor = await RtnetlinkMonitor.open({ netns: 'blue', groups: ['link'] });
 * monitor.on('event', (e) => { if (e.type === 'link') console.log(e.action, e.link.name, e.link.up); });
 * // ... later
 * monitor.close();
 * ```
 */
export class RtnetlinkMonitor extends EventEmitter<{ event: [NetlinkEvent]; error: [Error] }> {
  readonly #socket: NetlinkSocket;
  readonly #client: Rtnetlink | undefined;
  readonly #groups: ReadonlySet<MonitorGroup>;
  readonly #view: Map<string, NetlinkEvent> | undefined;
  readonly #logger: Logger;
  #resyncing = false;
  #closed = false;
  /** Events read while a resync dump runs: emitted after it. */
  #held: Keyed[] = [];
  #overrunWhileResyncing = false;

  private constructor(
    socket: NetlinkSocket,
    client: Rtnetlink | undefined,
    groups: ReadonlySet<MonitorGroup>,
    resync: boolean,
    logger: Logger,
  ) {
    super();
    this.#socket = socket;
    this.#client = client;
    this.#groups = groups;
    this.#view = resync ? new Map() : undefined;
    this.#logger = logger;
  }

  /**
   * Join the groups and start reading. With `resync` (the default) the current state is dumped
   * first (after joining, so nothing falls in between) to seed the view.
   */
  static async open(options: MonitorOptions = {}): Promise<RtnetlinkMonitor> {
    const groups = new Set(options.groups ?? allMonitorGroups);
    const logger = options.logger ?? silentLogger;
    const socket = NetlinkSocket.open(NETLINK.ROUTE, {
      netns: options.netns,
      receiveBufferSize: options.receiveBufferSize ?? 1 << 20,
      groups: [...groups].map((g) => groupNumbers[g]),
      logger,
    });
    const resync = options.resync !== false;
    let client: Rtnetlink | undefined;
    try {
      client = resync ? Rtnetlink.open({ netns: options.netns, logger }) : undefined;
    } catch (err) {
      socket.close();
      throw err;
    }
    const monitor = new RtnetlinkMonitor(socket, client, groups, resync, logger);
    try {
      if (resync) for (const item of await monitor.#dump()) monitor.#view!.set(item.key, item.event);
    } catch (err) {
      monitor.close();
      throw err;
    }
    socket.watch(() => monitor.#read(), options.ref !== false);
    // Events may have queued while the dump ran.
    queueMicrotask(() => monitor.#read());
    return monitor;
  }

  /** The namespace it watches (undefined: the caller's). */
  get netns(): string | undefined {
    return this.#socket.netns;
  }

  /** Objects the monitor currently knows (with `resync`), as the last events about them. */
  snapshot(): NetlinkEvent[] {
    return [...(this.#view?.values() ?? [])];
  }

  /** Keep (or stop keeping) the process alive while open. */
  ref(ref: boolean): void {
    this.#socket.ref(ref);
  }

  /** Stop watching. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    this.#client?.close();
  }

  #read(): void {
    if (this.#closed) return;
    const batch: Keyed[] = [];
    let result: 'empty' | 'read' | 'overrun';
    try {
      result = this.#socket.drain((buf, off, len) => {
        const item = this.#decode(buf, off, len);
        if (item !== undefined) batch.push(item);
      });
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.#resyncing) {
      // Keep them for after the dump (bounded: too many is another overrun).
      if (this.#held.length + batch.length > 100_000) {
        this.#held = [];
        this.#overrunWhileResyncing = true;
      } else this.#held.push(...batch);
      if (result === 'overrun') this.#overrunWhileResyncing = true;
      return;
    }
    this.#emitBatch(batch);
    if (result === 'overrun') void this.#resync();
  }

  #emitBatch(batch: readonly Keyed[]): void {
    for (const item of batch) {
      this.#remember(item);
      if (this.#closed) return;
      this.emit('event', item.event);
    }
  }

  #remember(item: Keyed): void {
    if (this.#view === undefined) return;
    const e = item.event;
    if ('action' in e && e.action === 'delete') this.#view.delete(item.key);
    else this.#view.set(item.key, e);
  }

  #decode(buf: Buffer, off: number, len: number): Keyed | undefined {
    const type = rd.u16(buf, off + 4);
    if (len < NLMSG_HDRLEN) return undefined;
    switch (type) {
      case RTM.NEWLINK:
      case RTM.DELLINK: {
        const link = decodeLink(buf, off, len);
        return {
          key: linkKey(link),
          event: { type: 'link', action: type === RTM.NEWLINK ? 'new' : 'delete', link },
        };
      }
      case RTM.NEWADDR:
      case RTM.DELADDR: {
        const address = decodeAddress(buf, off, len);
        return {
          key: addressKey(address),
          event: { type: 'address', action: type === RTM.NEWADDR ? 'new' : 'delete', address },
        };
      }
      case RTM.NEWROUTE:
      case RTM.DELROUTE: {
        const route = decodeRoute(buf, off, len);
        return {
          key: routeKey(route),
          event: { type: 'route', action: type === RTM.NEWROUTE ? 'new' : 'delete', route },
        };
      }
      case RTM.NEWNEIGH:
      case RTM.DELNEIGH: {
        const neighbour = decodeNeighbour(buf, off, len);
        return {
          key: neighbourKey(neighbour),
          event: { type: 'neighbour', action: type === RTM.NEWNEIGH ? 'new' : 'delete', neighbour },
        };
      }
      default:
        return undefined;
    }
  }

  /** The current objects of the joined groups, keyed as events. */
  async #dump(): Promise<Keyed[]> {
    const client = this.#client!;
    const g = this.#groups;
    const v4a = g.has('ipv4-address');
    const v6a = g.has('ipv6-address');
    const v4r = g.has('ipv4-route');
    const v6r = g.has('ipv6-route');
    const [links, addresses, routes, neighbours] = await Promise.all([
      g.has('link') ? client.listLinks() : [],
      v4a || v6a ? client.listAddresses(v4a && v6a ? {} : { family: v4a ? 4 : 6 }) : [],
      v4r || v6r ? client.listRoutes(v4r && v6r ? {} : { family: v4r ? 4 : 6 }) : [],
      g.has('neighbour') ? client.listNeighbours() : [],
    ]);
    return [
      ...links.map((link): Keyed => ({ key: linkKey(link), event: { type: 'link', action: 'new', link } })),
      ...addresses.map((address): Keyed => ({
        key: addressKey(address),
        event: { type: 'address', action: 'new', address },
      })),
      ...routes.map((route): Keyed => ({
        key: routeKey(route),
        event: { type: 'route', action: 'new', route },
      })),
      ...neighbours.map((neighbour): Keyed => ({
        key: neighbourKey(neighbour),
        event: { type: 'neighbour', action: 'new', neighbour },
      })),
    ];
  }

  async #resync(): Promise<void> {
    if (this.#resyncing || this.#closed) return;
    this.#resyncing = true;
    const t0 = performance.now();
    this.#logger.warn(
      { netns: this.netns },
      'netlink monitor overrun (ENOBUFS); resynchronising with a dump',
    );
    this.emit('event', { type: 'overrun', at: new Date().toISOString() });
    try {
      // What is still queued predates the dump below: drop it.
      this.#socket.drain(() => undefined);
      if (this.#view === undefined || this.#client === undefined) return;
      const fresh = await this.#dump();
      if (this.#closed) return;
      const seen = new Set<string>();
      let added = 0;
      let changed = 0;
      let removed = 0;
      const out: NetlinkEvent[] = [];
      for (const item of fresh) {
        seen.add(item.key);
        const before = this.#view.get(item.key);
        if (before === undefined) added++;
        else if (JSON.stringify(payload(before)) !== JSON.stringify(payload(item.event))) changed++;
        else continue;
        this.#view.set(item.key, item.event);
        out.push({ ...item.event, resync: true } as NetlinkEvent);
      }
      for (const [key, before] of [...this.#view]) {
        if (seen.has(key)) continue;
        this.#view.delete(key);
        removed++;
        out.push({ ...before, action: 'delete', resync: true } as NetlinkEvent);
      }
      for (const event of out) {
        if (this.#closed) return;
        this.emit('event', event);
      }
      this.emit('event', { type: 'resync', added, changed, removed, durationMs: performance.now() - t0 });
    } catch (err) {
      this.emit(
        'error',
        err instanceof OpdbusError
          ? err
          : new OpdbusError(
              'OPDBUS_ERR_NETLINK_OVERRUN',
              `Resynchronising after an overrun failed: ${(err as Error).message}.`,
              { cause: err },
            ),
      );
    } finally {
      this.#resyncing = false;
      const held = this.#held;
      this.#held = [];
      if (!this.#closed) this.#emitBatch(held);
      if (this.#overrunWhileResyncing && !this.#closed) {
        this.#overrunWhileResyncing = false;
        void this.#resync();
      } else if (!this.#closed) queueMicrotask(() => this.#read());
    }
  }
}

function payload(e: NetlinkEvent): unknown {
  switch (e.type) {
    case 'link':
      // Counters that change by themselves are not a change of state.
      return { ...e.link, carrierChanges: undefined };
    case 'address':
      return {
        ...e.address,
        validLifetime: e.address.validLifetime === 0xffffffff,
        preferredLifetime: e.address.preferredLifetime === 0xffffffff,
      };
    case 'route':
      return e.route;
    case 'neighbour':
      return { ...e.neighbour, probes: undefined };
    default:
      return e;
  }
}
