import { closeSync, openSync, constants as fsc } from 'node:fs';
import { randomInt } from 'node:crypto';
import { OpdbusError, interfaceNameProblem, isOpdbusError, quoteInput, type Logger } from '@opdbus/core';
import { NLMSG_HDRLEN, type Writer } from './codec.js';
import {
  AF,
  IFF,
  IFF_TUN_FLAGS,
  NETLINK,
  NLM_F,
  RTEXT_FILTER,
  RTM,
  RTN,
  RTNH_F,
  RTPROT,
  RT_SCOPE,
  RT_TABLE,
  NUD,
} from './constants.js';
import { decodeAddress, decodeLink, decodeNeighbour, decodeRoute, linkIndexOf } from './decode.js';
import { invalid, requestError, socketError } from './errors.js';
import { formatBytes, parseCidr, parseIp, type IpFamily } from './ip.js';
import { native } from './native.js';
import { netnsPath } from './netns.js';
import {
  ifaddrmsg,
  ifinfomsg,
  linkAttrs,
  addressAttrs,
  ndmsg,
  neighbourAttrs,
  nsidAttrs,
  routeAttrs,
  rtgenmsg,
  rtmsg,
  type RawNexthop,
} from './rtnlSpecs.js';
import { NetlinkConnection, ParallelDumps, inNetns, type NetnsTarget, type RequestSpec } from './socket.js';
import type {
  Address,
  AddressFilter,
  AddressRequest,
  CreateLinkRequest,
  Link,
  LinkFilter,
  LinkKindOptions,
  LinkRef,
  Neighbour,
  NeighbourFilter,
  NeighbourRequest,
  Route,
  RouteFilter,
  RouteRequest,
  SetLinkRequest,
} from './types.js';

/** Options of {@link Rtnetlink.open}. */
export interface RtnetlinkOptions {
  /** Act inside this network namespace: a name under /run/netns, a path, `pid:N`, or an open `Netns`. */
  netns?: NetnsTarget;
  /** Socket receive buffer in bytes (default 4 MiB). */
  receiveBufferSize?: number;
  /** Largest datagram of pipelined requests (default 64 KiB). */
  maxBatchBytes?: number;
  logger?: Logger;
}

const macvlanModes: Readonly<Record<string, number>> = {
  private: 1,
  vepa: 2,
  bridge: 4,
  passthru: 8,
  source: 16,
};
const bondModes: Readonly<Record<string, number>> = {
  'balance-rr': 0,
  'active-backup': 1,
  'balance-xor': 2,
  broadcast: 3,
  '802.3ad': 4,
  'balance-tlb': 5,
  'balance-alb': 6,
};
const scopes: Readonly<Record<string, number>> = {
  global: RT_SCOPE.UNIVERSE,
  site: RT_SCOPE.SITE,
  link: RT_SCOPE.LINK,
  host: RT_SCOPE.HOST,
};

/** ENODEV and friends: "no such link". */
const ENODEV = 19;
const EOPNOTSUPP = 95;

const afOf = (family: IpFamily | undefined): number =>
  family === 4 ? AF.INET : family === 6 ? AF.INET6 : AF.UNSPEC;

function describeLinkRef(ref: LinkRef): string {
  return typeof ref === 'number' ? `#${ref}` : ref;
}

/**
 * A typed rtnetlink client: links, addresses, routes and neighbours of one network namespace.
 *
 * Requests are pipelined: everything asked in the same tick goes to the kernel in as few
 * sendmsg(2) calls as possible, like `ip -batch`, so `Promise.all(items.map(...))` over a
 * thousand links costs a handful of system calls. Dumps are decoded straight from one receive
 * buffer. Kernel refusals reject with `OPDBUS_ERR_NETLINK_REQUEST` carrying the errno name and
 * number, the request and the kernel's extended-ack message.
 *
 * @example
 * ```ts
 * await using nl = Rtnetlink.open({ netns: 'blue' });
 * await nl.createLink({ name: 'br0', kind: 'bridge', up: true });
 * await nl.addAddress({ link: 'br0', address: '10.0.0.1/24' });
 * console.log((await nl.listLinks()).map((l) => l.name));
 * ```
 */
export class Rtnetlink implements Disposable, AsyncDisposable {
  readonly #conn: NetlinkConnection;
  readonly #netnsTarget: NetnsTarget;
  readonly #dumps: ParallelDumps;

  private constructor(conn: NetlinkConnection, target: NetnsTarget, options: RtnetlinkOptions) {
    this.#conn = conn;
    this.#netnsTarget = target;
    this.#dumps = new ParallelDumps(NETLINK.ROUTE, {
      netns: target,
      receiveBufferSize: 1 << 20,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  /**
   * Dumps run in worker threads on sockets of their own, so that several (links, addresses,
   * routes) are built by the kernel in parallel. If such a socket cannot be opened (the namespace
   * handle was closed meanwhile), the dump goes through the main socket instead.
   */
  async #dump<T>(spec: RequestSpec<T>): Promise<T[]> {
    try {
      return await this.#dumps.dump(spec);
    } catch (err) {
      if (isOpdbusError(err, 'OPDBUS_ERR_NETNS') || isOpdbusError(err, 'OPDBUS_ERR_NETLINK_SOCKET')) {
        return this.#conn.request({ ...spec, dump: true });
      }
      throw err;
    }
  }

  /** Open a client, with its socket created inside `options.netns` when given. */
  static open(options: RtnetlinkOptions = {}): Rtnetlink {
    const conn = new NetlinkConnection(NETLINK.ROUTE, {
      netns: options.netns,
      ...(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize }),
      ...(options.maxBatchBytes === undefined ? {} : { maxBatchBytes: options.maxBatchBytes }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    return new Rtnetlink(conn, options.netns, options);
  }

  /** The namespace this client acts in (undefined: the caller's). */
  get netns(): string | undefined {
    return this.#conn.netns;
  }

  /** Close the socket. Pending requests are rejected with OPDBUS_ERR_NETLINK_CLOSED. */
  close(): void {
    this.#conn.close();
    this.#dumps.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  // ---- links ----

  /** Every link (or those matching the kernel-side filter). */
  async listLinks(filter: LinkFilter = {}): Promise<Link[]> {
    const attrs: Record<string, unknown> = { extMask: RTEXT_FILTER.SKIP_STATS };
    if (filter.master !== undefined) attrs.master = await this.linkIndex(filter.master);
    if (filter.kind !== undefined) attrs.linkinfo = { kind: filter.kind };
    const links = await this.#dump<Link>({
      type: RTM.GETLINK,
      body: (w) => {
        ifinfomsg.encode({}, w);
        linkAttrs.encode(attrs, w);
      },
      decode: (buf, off, len, type) => (type === RTM.NEWLINK ? decodeLink(buf, off, len) : undefined),
      request: 'RTM_GETLINK',
      description: 'list links',
    });
    // Kernels without strict dump filtering ignore the filters: apply them here too.
    return links.filter(
      (l) =>
        (filter.kind === undefined || l.kind === filter.kind) &&
        (attrs.master === undefined || l.master === attrs.master),
    );
  }

  /** One link, or undefined when it does not exist. */
  async getLink(ref: LinkRef): Promise<Link | undefined> {
    try {
      const [link] = await this.#conn.request<Link>({
        type: RTM.GETLINK,
        body: (w) => this.#linkSelector(w, ref, { extMask: RTEXT_FILTER.SKIP_STATS }),
        decode: (buf, off, len, type) => (type === RTM.NEWLINK ? decodeLink(buf, off, len) : undefined),
        request: 'RTM_GETLINK',
        description: `get link ${describeLinkRef(ref)}`,
      });
      return link;
    } catch (err) {
      if (isOpdbusError(err, 'OPDBUS_ERR_NETLINK_REQUEST') && err.data?.errnoNumber === ENODEV)
        return undefined;
      throw err;
    }
  }

  /** The interface index of a link; rejects with ENODEV when it does not exist. */
  async linkIndex(ref: LinkRef): Promise<number> {
    if (typeof ref === 'number') return ref;
    const [index] = await this.#conn.request<number>({
      type: RTM.GETLINK,
      body: (w) => this.#linkSelector(w, ref, { extMask: RTEXT_FILTER.SKIP_STATS }),
      decode: (buf, off, _len, type) => (type === RTM.NEWLINK ? linkIndexOf(buf, off) : undefined),
      request: 'RTM_GETLINK',
      description: `find link ${ref}`,
    });
    if (index === undefined)
      throw requestError(
        { request: 'RTM_GETLINK', description: `find link ${ref}`, netns: this.netns },
        ENODEV,
      );
    return index;
  }

  #linkSelector(
    w: Writer,
    ref: LinkRef,
    attrs: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
  ): void {
    if (typeof ref === 'number') {
      ifinfomsg.encode({ ...header, index: ref }, w);
      linkAttrs.encode(attrs, w);
    } else {
      const problem = interfaceNameProblem(ref);
      if (problem !== undefined)
        throw invalid(`${quoteInput(ref)} is not an interface name: ${problem}.`, { link: ref.slice(0, 64) });
      ifinfomsg.encode({ ...header, index: 0 }, w);
      linkAttrs.encode({ ...attrs, name: ref }, w);
    }
  }

  /**
   * Create a link. `up`, `master`, MTU and the kind's options are set in the same request
   * (a bridge's MTU right after, so that it sticks when ports are added). tap/tun devices are
   * created through /dev/net/tun, as rtnetlink cannot create them.
   */
  async createLink(req: CreateLinkRequest): Promise<void> {
    const description = `create link ${req.name} (${req.kind})`;
    if (req.kind === 'tap' || req.kind === 'tun') {
      this.#createTun(req, description);
      const rest: SetLinkRequest = {};
      if (req.mtu !== undefined) rest.mtu = req.mtu;
      if (req.address !== undefined) rest.address = req.address;
      if (req.master !== undefined) rest.master = req.master;
      if (req.up !== undefined) rest.up = req.up;
      if (req.txQueueLength !== undefined) rest.txQueueLength = req.txQueueLength;
      if (req.group !== undefined) rest.group = req.group;
      if (req.alias !== undefined) rest.alias = req.alias;
      if (Object.keys(rest).length > 0) await this.setLink(req.name, rest);
      return;
    }
    for (const name of [
      req.name,
      ...(req.kind === 'veth' && req.peer !== undefined ? [req.peer.name] : []),
    ]) {
      const problem = interfaceNameProblem(name);
      if (problem !== undefined)
        throw invalid(`${quoteInput(name)} is not an interface name: ${problem}.`, {
          link: name.slice(0, 64),
        });
    }
    const attrs: Record<string, unknown> = { name: req.name };
    if (req.mtu !== undefined && req.kind !== 'bridge') attrs.mtu = req.mtu;
    if (req.address !== undefined) attrs.address = req.address;
    if (req.txQueueLength !== undefined) attrs.txQueueLength = req.txQueueLength;
    if (req.group !== undefined) attrs.group = req.group;
    const [master, parent] = await Promise.all([
      req.master === undefined ? undefined : this.linkIndex(req.master),
      req.parent === undefined ? undefined : this.linkIndex(req.parent),
    ]);
    if (master !== undefined) attrs.master = master;
    if (parent !== undefined) attrs.link = parent;
    const fds: number[] = [];
    try {
      const data = await this.#kindData(req.kind, req, true);
      if (req.kind === 'veth' && req.peer !== undefined) {
        // The peer cannot be brought up inside the create request (veth_open fails with
        // ENOTCONN before the pair is linked): that is done right after.
        const peer: Record<string, unknown> = { index: 0, name: req.peer.name };
        if (req.peer.mtu !== undefined) peer.mtu = req.peer.mtu;
        if (req.peer.address !== undefined) peer.address = req.peer.address;
        if (req.peer.netns !== undefined) peer.netnsFd = openNetnsFd(req.peer.netns, fds);
        data.peer = peer;
      }
      attrs.linkinfo = Object.keys(data).length > 0 ? { kind: req.kind, data } : { kind: req.kind };
      if (req.netns !== undefined) attrs.netnsFd = openNetnsFd(req.netns, fds);
      const up = req.up === true ? IFF.UP : 0;
      const created = this.#conn.request({
        type: RTM.NEWLINK,
        flags: NLM_F.CREATE | NLM_F.EXCL,
        body: (w) => {
          ifinfomsg.encode({ index: 0, flags: up, change: up }, w);
          linkAttrs.encode(attrs, w);
        },
        request: 'RTM_NEWLINK',
        description,
      });
      // Pipelined with the create: what cannot be given at creation. A bridge's MTU is set
      // afterwards, through the device (twice if it already has that value), so the kernel marks
      // it as set by the user and keeps it when ports with a smaller MTU join.
      const follow: SetLinkRequest[] = [];
      if (req.mtu !== undefined && req.kind === 'bridge') {
        if (req.mtu === 1500) follow.push({ mtu: req.mtu - 1 });
        follow.push({ mtu: req.mtu });
      }
      if (req.alias !== undefined) follow.push({ alias: req.alias });
      const here = req.netns === undefined;
      const followed = here ? follow.map((f) => this.setLink(req.name, f)) : [];
      await Promise.all([created, ...followed]);
      if (!here && follow.length > 0) {
        using other = Rtnetlink.open({ netns: req.netns });
        for (const f of follow) await other.setLink(req.name, f);
      }
      if (req.peer?.up === true) {
        if (req.peer.netns === undefined) await this.setLink(req.peer.name, { up: true });
        else {
          using other = Rtnetlink.open({ netns: req.peer.netns });
          await other.setLink(req.peer.name, { up: true });
        }
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  #createTun(req: CreateLinkRequest, description: string): void {
    const o = req.tun ?? {};
    let flags = req.kind === 'tap' ? IFF_TUN_FLAGS.TAP : IFF_TUN_FLAGS.TUN;
    if (o.pi !== true) flags |= IFF_TUN_FLAGS.NO_PI;
    if (o.multiQueue === true) flags |= IFF_TUN_FLAGS.MULTI_QUEUE;
    if (o.vnetHdr === true) flags |= IFF_TUN_FLAGS.VNET_HDR;
    try {
      inNetns(this.#netnsTarget, () => native().tunCreate(req.name, flags, o.owner ?? -1, o.group ?? -1));
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw requestError(
        { request: 'TUNSETIFF', description: `${description} via /dev/net/tun`, netns: this.netns },
        typeof e.errno === 'number' ? e.errno : 5,
      );
    }
  }

  /** The IFLA_INFO_DATA of a kind, from a request's kind options. */
  async #kindData(
    kind: string | undefined,
    o: LinkKindOptions,
    create: boolean,
  ): Promise<Record<string, unknown>> {
    const data: Record<string, unknown> = {};
    if (kind === 'bridge' && o.bridge !== undefined) Object.assign(data, o.bridge);
    if (kind === 'vxlan' && o.vxlan !== undefined) {
      const v = o.vxlan;
      if (v.id !== undefined) data.id = v.id;
      if (v.port !== undefined || create) data.port = v.port ?? 4789;
      if (v.local !== undefined) data[parseIp(v.local).family === 4 ? 'local' : 'local6'] = v.local;
      const remote = v.remote ?? v.group;
      if (remote !== undefined) data[parseIp(remote).family === 4 ? 'group' : 'group6'] = remote;
      if (v.dev !== undefined) data.link = await this.linkIndex(v.dev);
      if (v.ttl !== undefined) data.ttl = v.ttl;
      if (v.tos !== undefined) data.tos = v.tos;
      if (v.learning !== undefined) data.learning = v.learning;
      if (v.ageing !== undefined) data.ageing = v.ageing;
      if (v.udpCsum !== undefined) data.udpCsum = v.udpCsum;
    }
    if ((kind === 'macvlan' || kind === 'macvtap') && o.macvlan?.mode !== undefined) {
      const mode = o.macvlan.mode;
      const n = typeof mode === 'number' ? mode : macvlanModes[mode];
      if (n === undefined)
        throw invalid(`Unknown macvlan mode "${String(mode)}" (private, vepa, bridge, passthru, source).`);
      data.mode = n;
    }
    if (kind === 'vlan' && o.vlan !== undefined) {
      if (o.vlan.id !== undefined) data.id = o.vlan.id;
      const p = o.vlan.protocol;
      if (p !== undefined) data.protocol = p === '802.1Q' ? 0x8100 : p === '802.1ad' ? 0x88a8 : p;
    }
    if (kind === 'bond' && o.bond !== undefined) {
      const b = o.bond;
      if (b.mode !== undefined) {
        const n = typeof b.mode === 'number' ? b.mode : bondModes[b.mode];
        if (n === undefined) throw invalid(`Unknown bond mode "${String(b.mode)}".`);
        data.mode = n;
      }
      if (b.miimon !== undefined) data.miimon = b.miimon;
      if (b.updelay !== undefined) data.updelay = b.updelay;
      if (b.downdelay !== undefined) data.downdelay = b.downdelay;
    }
    return data;
  }

  /** Change a link: only the fields given. `master: null` releases it from its master. */
  async setLink(ref: LinkRef, req: SetLinkRequest): Promise<void> {
    const parts: string[] = [];
    const attrs: Record<string, unknown> = {};
    const fds: number[] = [];
    try {
      if (req.mtu !== undefined) {
        attrs.mtu = req.mtu;
        parts.push(`mtu ${req.mtu}`);
      }
      if (req.address !== undefined) {
        attrs.address = req.address;
        parts.push(`address ${req.address}`);
      }
      if (req.txQueueLength !== undefined) attrs.txQueueLength = req.txQueueLength;
      if (req.group !== undefined) attrs.group = req.group;
      if (req.alias !== undefined) attrs.alias = req.alias;
      if (req.master !== undefined) {
        attrs.master = req.master === null ? 0 : await this.linkIndex(req.master);
        parts.push(req.master === null ? 'nomaster' : `master ${describeLinkRef(req.master)}`);
      }
      const kind =
        req.bridge !== undefined
          ? 'bridge'
          : req.vxlan !== undefined
            ? 'vxlan'
            : req.macvlan !== undefined
              ? 'macvlan'
              : req.vlan !== undefined
                ? 'vlan'
                : req.bond !== undefined
                  ? 'bond'
                  : undefined;
      if (kind !== undefined) {
        attrs.linkinfo = { kind, data: await this.#kindData(kind, req, false) };
        parts.push(`${kind} options`);
      }
      if (req.bridgePort !== undefined) {
        const li = (attrs.linkinfo ?? {}) as Record<string, unknown>;
        li.slaveKind = 'bridge';
        li.slaveData = req.bridgePort;
        attrs.linkinfo = li;
        parts.push('bridge port options');
      }
      if (req.netns !== undefined) {
        attrs.netnsFd = openNetnsFd(req.netns, fds);
        parts.push(`netns ${req.netns}`);
      }
      let target = ref;
      if (req.name !== undefined) {
        target = await this.linkIndex(ref);
        attrs.name = req.name;
        parts.push(`name ${req.name}`);
      }
      const header: Record<string, unknown> = {};
      if (req.up !== undefined) {
        header.flags = req.up ? IFF.UP : 0;
        header.change = IFF.UP;
        parts.push(req.up ? 'up' : 'down');
      }
      await this.#conn.request({
        // RTM_NEWLINK on an existing link (no NLM_F_CREATE) changes it, kind options included.
        type: RTM.NEWLINK,
        body: (w) => this.#linkSelector(w, target, attrs, header),
        request: 'RTM_NEWLINK',
        description: `set link ${describeLinkRef(ref)} (${parts.join(', ') || 'no change'})`,
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  /** Delete a link (both ends for a veth). tap/tun devices are removed through /dev/net/tun. */
  async deleteLink(ref: LinkRef): Promise<void> {
    const description = `delete link ${describeLinkRef(ref)}`;
    try {
      await this.#conn.request({
        type: RTM.DELLINK,
        body: (w) => this.#linkSelector(w, ref),
        request: 'RTM_DELLINK',
        description,
      });
    } catch (err) {
      if (!isOpdbusError(err, 'OPDBUS_ERR_NETLINK_REQUEST') || err.data?.errnoNumber !== EOPNOTSUPP)
        throw err;
      const link = await this.getLink(ref);
      if (link?.kind !== 'tun') throw err;
      this.#deleteTun(link, description);
    }
  }

  #deleteTun(link: Link, description: string): void {
    const flags =
      (link.tun?.type === 2 ? IFF_TUN_FLAGS.TAP : IFF_TUN_FLAGS.TUN) |
      (link.tun?.pi ? 0 : IFF_TUN_FLAGS.NO_PI) |
      (link.tun?.multiQueue ? IFF_TUN_FLAGS.MULTI_QUEUE : 0) |
      (link.tun?.vnetHdr ? IFF_TUN_FLAGS.VNET_HDR : 0);
    try {
      inNetns(this.#netnsTarget, () => native().tunDelete(link.name, flags));
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw requestError(
        { request: 'TUNSETPERSIST', description: `${description} via /dev/net/tun`, netns: this.netns },
        typeof e.errno === 'number' ? e.errno : 5,
      );
    }
  }

  /**
   * Delete many links at once. Deleting a link waits for an RCU grace period in the kernel
   * (tens of milliseconds each); here the links are put in a fresh, unused interface group and
   * the group is deleted with one request, so the kernel unregisters them together and waits
   * once. Links that do not exist are ignored; tap/tun devices are removed one by one. If the
   * group delete fails, the links get their groups back and the error is thrown.
   */
  async deleteLinks(refs: readonly LinkRef[]): Promise<void> {
    if (refs.length === 0) return;
    const all = await this.listLinks();
    const byName = new Map(all.map((l) => [l.name, l]));
    const byIndex = new Map(all.map((l) => [l.index, l]));
    const targets = new Map<number, Link>();
    for (const ref of refs) {
      const link = typeof ref === 'number' ? byIndex.get(ref) : byName.get(ref);
      if (link !== undefined) targets.set(link.index, link);
    }
    const tuns = [...targets.values()].filter((l) => l.kind === 'tun');
    const rest = [...targets.values()].filter((l) => l.kind !== 'tun');
    for (const tun of tuns) this.#deleteTun(tun, `delete link ${tun.name}`);
    if (rest.length === 0) return;
    if (rest.length === 1) {
      await this.deleteLink(rest[0]!.index).catch((err: unknown) => {
        if (!isOpdbusError(err, 'OPDBUS_ERR_NETLINK_REQUEST') || err.data?.errnoNumber !== ENODEV) throw err;
      });
      return;
    }
    const used = new Set(all.map((l) => l.group ?? 0));
    let group = randomInt(0x40000000, 0x7fffffff);
    while (used.has(group)) group = randomInt(0x40000000, 0x7fffffff);
    const description = `delete ${rest.length} links (${rest
      .slice(0, 5)
      .map((l) => l.name)
      .join(', ')}${rest.length > 5 ? ', …' : ''}) as interface group ${group}`;
    const setGroup = (link: Link, g: number): Promise<unknown> =>
      this.#conn.request({
        type: RTM.NEWLINK,
        body: (w) => {
          ifinfomsg.encode({ index: link.index }, w);
          linkAttrs.encode({ group: g }, w);
        },
        request: 'RTM_NEWLINK',
        description: `set link ${link.name} group ${g} (${description})`,
      });
    const grouped = await Promise.allSettled(rest.map((l) => setGroup(l, group)));
    const failed = grouped.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      if (failed !== undefined) throw failed.reason;
      await this.#conn.request({
        type: RTM.DELLINK,
        body: (w) => {
          ifinfomsg.encode({ index: 0 }, w);
          linkAttrs.encode({ group }, w);
        },
        request: 'RTM_DELLINK',
        description,
      });
    } catch (err) {
      await Promise.allSettled(rest.map((l) => setGroup(l, l.group ?? 0)));
      throw err;
    }
  }

  // ---- addresses ----

  /** Addresses (all families, or filtered by family and link). */
  async listAddresses(filter: AddressFilter = {}): Promise<Address[]> {
    const index = filter.link === undefined ? 0 : await this.linkIndex(filter.link);
    const addresses = await this.#dump<Address>({
      type: RTM.GETADDR,
      body: (w) => ifaddrmsg.encode({ family: afOf(filter.family), index }, w),
      decode: (buf, off, len, type) => (type === RTM.NEWADDR ? decodeAddress(buf, off, len) : undefined),
      request: 'RTM_GETADDR',
      description: 'list addresses',
    });
    return addresses.filter(
      (a) =>
        (filter.family === undefined || a.family === filter.family) && (index === 0 || a.index === index),
    );
  }

  #addressMessage(req: AddressRequest, index: number, w: Writer, withDetails: boolean): void {
    const c = parseCidr(req.address, 'an interface address');
    const local = formatBytes(c.bytes);
    let scope: number | undefined;
    if (typeof req.scope === 'number') scope = req.scope;
    else if (req.scope !== undefined) {
      scope = scopes[req.scope];
      if (scope === undefined)
        throw invalid(`Unknown address scope "${String(req.scope)}" (global, site, link, host).`);
    } else if (c.family === 4 && c.bytes[0] === 127) scope = RT_SCOPE.HOST;
    const flags = req.flags ?? 0;
    ifaddrmsg.encode(
      {
        family: c.family === 4 ? AF.INET : AF.INET6,
        prefixLength: c.prefixLength,
        flags: flags & 0xff,
        scope: scope ?? 0,
        index,
      },
      w,
    );
    const attrs: Record<string, unknown> = { local, address: req.peer ?? local };
    if (withDetails) {
      if (req.label !== undefined) attrs.label = req.label;
      if (req.broadcast !== undefined) attrs.broadcast = req.broadcast;
      if (req.validLifetime !== undefined || req.preferredLifetime !== undefined) {
        const valid = req.validLifetime ?? 0xffffffff;
        attrs.cacheinfo = { valid, preferred: Math.min(req.preferredLifetime ?? valid, valid) };
      }
      if (flags !== 0) attrs.flags32 = flags;
      if (req.metric !== undefined) attrs.routePriority = req.metric;
      if (req.protocol !== undefined) attrs.protocol = req.protocol;
    }
    addressAttrs.encode(attrs, w);
  }

  /** Add an address (`replace: true` updates flags, lifetimes, metric of an existing one instead of failing). */
  async addAddress(req: AddressRequest, options: { replace?: boolean } = {}): Promise<void> {
    const index = await this.linkIndex(req.link);
    await this.#conn.request({
      type: RTM.NEWADDR,
      flags: NLM_F.CREATE | (options.replace ? NLM_F.REPLACE : NLM_F.EXCL),
      body: (w) => this.#addressMessage(req, index, w, true),
      request: 'RTM_NEWADDR',
      description: `${options.replace ? 'replace' : 'add'} address ${req.address} on ${describeLinkRef(req.link)}`,
    });
  }

  /** Delete an address. */
  async deleteAddress(req: Pick<AddressRequest, 'link' | 'address' | 'peer'>): Promise<void> {
    const index = await this.linkIndex(req.link);
    await this.#conn.request({
      type: RTM.DELADDR,
      body: (w) => this.#addressMessage(req, index, w, false),
      request: 'RTM_DELADDR',
      description: `delete address ${req.address} from ${describeLinkRef(req.link)}`,
    });
  }

  // ---- routes ----

  /** Routes of every table (FIB entries, not cached clones), or filtered. */
  async listRoutes(filter: RouteFilter = {}): Promise<Route[]> {
    const oif = filter.oif === undefined ? undefined : await this.linkIndex(filter.oif);
    const routes = await this.#dump<Route>({
      type: RTM.GETROUTE,
      body: (w) => {
        rtmsg.encode(
          {
            family: afOf(filter.family),
            table: filter.table !== undefined && filter.table < 256 ? filter.table : 0,
            protocol: filter.protocol ?? 0,
            type: filter.type ?? 0,
          },
          w,
        );
        const attrs: Record<string, unknown> = {};
        if (filter.table !== undefined) attrs.table32 = filter.table;
        if (oif !== undefined) attrs.oif = oif;
        routeAttrs.encode(attrs, w);
      },
      decode: (buf, off, len, type) => (type === RTM.NEWROUTE ? decodeRoute(buf, off, len) : undefined),
      request: 'RTM_GETROUTE',
      description: 'list routes',
    });
    return routes.filter(
      (r) =>
        (filter.family === undefined || r.family === filter.family) &&
        (filter.table === undefined || r.table === filter.table) &&
        (filter.protocol === undefined || r.protocol === filter.protocol) &&
        (filter.type === undefined || r.type === filter.type) &&
        (oif === undefined || r.oif === oif || (r.nexthops?.some((h) => h.ifindex === oif) ?? false)),
    );
  }

  async #routeMessage(req: RouteRequest, mode: 'add' | 'replace' | 'delete'): Promise<(w: Writer) => void> {
    const via = req.via === undefined ? undefined : parseIp(req.via, 'a gateway address');
    let family: IpFamily;
    let dstBytes: Uint8Array | undefined;
    let dstLength: number;
    if (req.to === 'default') {
      family = req.family ?? via?.family ?? (req.src !== undefined ? parseIp(req.src).family : 4);
      dstLength = 0;
    } else {
      const c = parseCidr(req.to, 'a route destination');
      family = c.family;
      dstBytes = c.bytes;
      dstLength = c.prefixLength;
    }
    const [oif, hops] = await Promise.all([
      req.dev === undefined ? undefined : this.linkIndex(req.dev),
      req.nexthops === undefined
        ? undefined
        : Promise.all(
            req.nexthops.map(async (h): Promise<RawNexthop> => {
              const hop: RawNexthop = {
                flags: h.onlink ? RTNH_F.ONLINK : 0,
                weight: h.weight ?? 1,
                ifindex: h.dev === undefined ? 0 : await this.linkIndex(h.dev),
              };
              if (h.via !== undefined) {
                const gw = parseIp(h.via, 'a next-hop gateway');
                if (gw.family === family) hop.gateway = h.via;
                else hop.via = h.via;
              }
              return hop;
            }),
          ),
    ]);
    const type = req.type ?? RTN.UNICAST;
    const table = req.table ?? RT_TABLE.MAIN;
    let scope = req.scope;
    if (scope === undefined) {
      if (mode === 'delete') scope = RT_SCOPE.NOWHERE;
      else if (type === RTN.LOCAL || type === RTN.NAT) scope = RT_SCOPE.HOST;
      else if (type === RTN.BROADCAST || type === RTN.MULTICAST || type === RTN.ANYCAST)
        scope = RT_SCOPE.LINK;
      else if (type === RTN.UNICAST && via === undefined && !(hops?.some((h) => h.gateway ?? h.via) ?? false))
        scope = RT_SCOPE.LINK;
      else scope = RT_SCOPE.UNIVERSE;
    }
    const header = {
      family: family === 4 ? AF.INET : AF.INET6,
      dstLength,
      tos: req.tos ?? 0,
      table: table < 256 ? table : RT_TABLE.UNSPEC,
      protocol: mode === 'delete' ? (req.protocol ?? 0) : (req.protocol ?? RTPROT.STATIC),
      scope,
      type: mode === 'delete' && req.type === undefined ? 0 : type,
      flags: req.onlink ? RTNH_F.ONLINK : 0,
    };
    const attrs: Record<string, unknown> = { table32: table };
    if (dstBytes !== undefined && dstLength > 0) attrs.dst = dstBytes;
    if (via !== undefined) {
      if (via.family === family) attrs.gateway = via.bytes;
      else attrs.via = req.via;
    }
    if (oif !== undefined) attrs.oif = oif;
    if (req.metric !== undefined) attrs.priority = req.metric;
    if (req.src !== undefined) attrs.prefsrc = req.src;
    if (req.metrics !== undefined && mode !== 'delete') attrs.metrics = req.metrics;
    if (hops !== undefined) attrs.multipath = hops;
    return (w) => {
      rtmsg.encode(header, w);
      routeAttrs.encode(attrs, w);
    };
  }

  /** Add a route (fails with EEXIST when the same route exists; see {@link Rtnetlink.replaceRoute}). */
  async addRoute(req: RouteRequest, options: { replace?: boolean } = {}): Promise<void> {
    const body = await this.#routeMessage(req, options.replace ? 'replace' : 'add');
    await this.#conn.request({
      type: RTM.NEWROUTE,
      flags: NLM_F.CREATE | (options.replace ? NLM_F.REPLACE : NLM_F.EXCL),
      body,
      request: 'RTM_NEWROUTE',
      description: `${options.replace ? 'replace' : 'add'} route ${describeRoute(req)}`,
    });
  }

  /** Add a route, or replace the route with the same destination, table and metric. */
  replaceRoute(req: RouteRequest): Promise<void> {
    return this.addRoute(req, { replace: true });
  }

  /** Delete a route: destination, table and metric identify it; gateway and device narrow it. */
  async deleteRoute(req: RouteRequest): Promise<void> {
    const body = await this.#routeMessage(req, 'delete');
    await this.#conn.request({
      type: RTM.DELROUTE,
      body,
      request: 'RTM_DELROUTE',
      description: `delete route ${describeRoute(req)}`,
    });
  }

  // ---- neighbours ----

  /** Neighbour (ARP/NDP) entries. */
  async listNeighbours(filter: NeighbourFilter = {}): Promise<Neighbour[]> {
    const index = filter.link === undefined ? 0 : await this.linkIndex(filter.link);
    const entries = await this.#dump<Neighbour>({
      type: RTM.GETNEIGH,
      body: (w) => {
        ndmsg.encode({ family: afOf(filter.family) }, w);
        neighbourAttrs.encode(index === 0 ? {} : { ifindex: index }, w);
      },
      decode: (buf, off, len, type) => (type === RTM.NEWNEIGH ? decodeNeighbour(buf, off, len) : undefined),
      request: 'RTM_GETNEIGH',
      description: 'list neighbours',
    });
    return entries.filter(
      (n) =>
        (filter.family === undefined || n.family === filter.family) && (index === 0 || n.index === index),
    );
  }

  async #neighbourBody(req: NeighbourRequest, withLladdr: boolean): Promise<(w: Writer) => void> {
    const index = await this.linkIndex(req.link);
    const ip = parseIp(req.address, 'a neighbour address');
    return (w) => {
      ndmsg.encode(
        {
          family: ip.family === 4 ? AF.INET : AF.INET6,
          index,
          state: req.state ?? NUD.PERMANENT,
          flags: req.flags ?? 0,
        },
        w,
      );
      const attrs: Record<string, unknown> = { destination: ip.bytes };
      if (withLladdr && req.lladdr !== undefined) attrs.lladdr = req.lladdr;
      neighbourAttrs.encode(attrs, w);
    };
  }

  /** Add a neighbour entry (`replace: true`: or update it). */
  async addNeighbour(req: NeighbourRequest, options: { replace?: boolean } = {}): Promise<void> {
    const body = await this.#neighbourBody(req, true);
    await this.#conn.request({
      type: RTM.NEWNEIGH,
      flags: NLM_F.CREATE | (options.replace ? NLM_F.REPLACE : NLM_F.EXCL),
      body,
      request: 'RTM_NEWNEIGH',
      description: `${options.replace ? 'replace' : 'add'} neighbour ${req.address}${req.lladdr ? ` lladdr ${req.lladdr}` : ''} on ${describeLinkRef(req.link)}`,
    });
  }

  /** Delete a neighbour entry. */
  async deleteNeighbour(req: Pick<NeighbourRequest, 'link' | 'address'>): Promise<void> {
    const body = await this.#neighbourBody(req, false);
    await this.#conn.request({
      type: RTM.DELNEIGH,
      body,
      request: 'RTM_DELNEIGH',
      description: `delete neighbour ${req.address} on ${describeLinkRef(req.link)}`,
    });
  }

  // ---- namespaces ----

  /**
   * The id this namespace gives another one (as links' `linkNetnsId` show it), or undefined when
   * none is assigned. `netns` is a name under /run/netns or a path.
   */
  async netnsId(netns: string): Promise<number | undefined> {
    const fds: number[] = [];
    try {
      const fd = openNetnsFd(netns, fds);
      const [id] = await this.#conn.request<number>({
        type: RTM.GETNSID,
        body: (w) => {
          rtgenmsg.encode({ family: AF.UNSPEC }, w);
          nsidAttrs.encode({ fd }, w);
        },
        decode: (buf, off, len, type) => {
          if (type !== RTM.NEWNSID) return undefined;
          const o = nsidAttrs.decode(buf, off + NLMSG_HDRLEN + rtgenmsg.size, off + len, {});
          return typeof o.nsid === 'number' ? o.nsid : undefined;
        },
        request: 'RTM_GETNSID',
        description: `get the id of namespace ${netns}`,
      });
      return id === undefined || id < 0 ? undefined : id;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }
}

function openNetnsFd(netns: string, fds: number[]): number {
  const path = netnsPath(netns);
  try {
    const fd = openSync(path, fsc.O_RDONLY);
    fds.push(fd);
    return fd;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new OpdbusError('OPDBUS_ERR_NETNS', `Network namespace "${netns}" does not exist (${path}).`, {
        data: { netns, path },
      });
    }
    throw socketError(`Opening network namespace ${path}`, err);
  }
}

function describeRoute(req: RouteRequest): string {
  const parts = [req.to];
  if (req.via !== undefined) parts.push(`via ${req.via}`);
  if (req.dev !== undefined) parts.push(`dev ${describeLinkRef(req.dev)}`);
  if (req.nexthops !== undefined)
    parts.push(
      `nexthops ${req.nexthops.map((h) => [h.via, h.dev].filter((x) => x !== undefined).join('/')).join(', ')}`,
    );
  if (req.table !== undefined && req.table !== RT_TABLE.MAIN) parts.push(`table ${req.table}`);
  if (req.metric !== undefined) parts.push(`metric ${req.metric}`);
  return parts.join(' ');
}
