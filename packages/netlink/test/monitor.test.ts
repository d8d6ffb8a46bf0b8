import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Rtnetlink, RtnetlinkMonitor, type NetlinkEvent, type Netns } from '../src/index.js';
import { dropAllNetns, freshNetns, ip, ipBatch, describeAsRoot, waitFor } from './helpers.js';

/** Collect a monitor's events; `until(pred)` waits (with a deadline) for an event matching it. */
function collect(monitor: RtnetlinkMonitor): {
  events: NetlinkEvent[];
  until: <T extends NetlinkEvent>(pred: (e: NetlinkEvent) => e is T, what: string, ms?: number) => Promise<T>;
} {
  const events: NetlinkEvent[] = [];
  const listeners = new Set<() => void>();
  monitor.on('event', (e) => {
    events.push(e);
    for (const l of listeners) l();
  });
  return {
    events,
    until: (pred, what, ms = 10_000) =>
      waitFor(
        (wake) => {
          listeners.add(wake);
          return () => listeners.delete(wake);
        },
        () => events.find(pred),
        ms,
        what,
      ),
  };
}

describeAsRoot('RtnetlinkMonitor', () => {
  let ns: Netns;
  const monitors: RtnetlinkMonitor[] = [];
  beforeAll(() => {
    ns = freshNetns();
  });
  afterEach(() => {
    for (const m of monitors.splice(0)) m.close();
  });
  afterAll(() => dropAllNetns());

  it('reports link, address and route changes made by another tool, typed', async () => {
    const monitor = await RtnetlinkMonitor.open({ netns: ns.name });
    monitors.push(monitor);
    const { until } = collect(monitor);
    ip(ns.name, 'link', 'add', 'mon0', 'type', 'bridge');
    const created = await until(
      (e): e is Extract<NetlinkEvent, { type: 'link' }> =>
        e.type === 'link' && e.action === 'new' && e.link.name === 'mon0',
      'link mon0 created',
    );
    expect(created.link).toMatchObject({ kind: 'bridge', up: false });
    ip(ns.name, 'link', 'set', 'mon0', 'up');
    await until(
      (e): e is Extract<NetlinkEvent, { type: 'link' }> =>
        e.type === 'link' && e.link.name === 'mon0' && e.link.up,
      'link mon0 up',
    );
    ip(ns.name, 'addr', 'add', '10.77.0.1/24', 'dev', 'mon0');
    const addr = await until(
      (e): e is Extract<NetlinkEvent, { type: 'address' }> =>
        e.type === 'address' && e.address.address === '10.77.0.1',
      'address added',
    );
    expect(addr.address).toMatchObject({ family: 4, prefixLength: 24, index: created.link.index });
    ip(ns.name, 'route', 'add', '10.78.0.0/16', 'via', '10.77.0.254', 'metric', '9');
    await until(
      (e): e is Extract<NetlinkEvent, { type: 'route' }> =>
        e.type === 'route' &&
        e.action === 'new' &&
        e.route.destination === '10.78.0.0/16' &&
        e.route.priority === 9,
      'route added',
    );
    ip(ns.name, 'link', 'del', 'mon0');
    await until(
      (e): e is Extract<NetlinkEvent, { type: 'link' }> =>
        e.type === 'link' && e.action === 'delete' && e.link.name === 'mon0',
      'link mon0 deleted',
    );
    // The view follows the events.
    expect(monitor.snapshot().some((e) => e.type === 'link' && e.link.name === 'mon0')).toBe(false);
  });

  it('joins only the groups asked for', async () => {
    const monitor = await RtnetlinkMonitor.open({ netns: ns.name, groups: ['ipv4-address'] });
    monitors.push(monitor);
    const { events, until } = collect(monitor);
    ip(ns.name, 'link', 'add', 'grp0', 'type', 'bridge');
    ip(ns.name, 'addr', 'add', '10.79.0.1/24', 'dev', 'grp0');
    await until((e): e is NetlinkEvent => e.type === 'address', 'address event');
    expect(events.filter((e) => e.type === 'link')).toEqual([]);
  });

  it('on ENOBUFS says so, resynchronises with a dump, and emits what it had missed', async () => {
    // A tiny receive buffer, and a burst made while this thread is blocked (execFileSync), so the
    // kernel must drop notifications.
    const monitor = await RtnetlinkMonitor.open({ netns: ns.name, receiveBufferSize: 4096 });
    monitors.push(monitor);
    const { events, until } = collect(monitor);
    ipBatch(
      ns.name,
      Array.from({ length: 150 }, (_, i) => [
        `link add burst${i} type bridge`,
        `addr add 10.80.${i}.1/24 dev burst${i}`,
      ]).flat(),
    );
    await until((e): e is NetlinkEvent => e.type === 'overrun', 'an overrun event');
    const resync = await until(
      (e): e is Extract<NetlinkEvent, { type: 'resync' }> => e.type === 'resync',
      'the resync summary',
      20_000,
    );
    expect(resync.added + resync.changed).toBeGreaterThan(0);
    // After the resync the monitor's view is the kernel's: every burst link and address is known.
    using nl = Rtnetlink.open({ netns: ns.name });
    const links = (await nl.listLinks()).filter((l) => l.name.startsWith('burst'));
    expect(links).toHaveLength(150);
    const known = new Set(monitor.snapshot().flatMap((e) => (e.type === 'link' ? [e.link.name] : [])));
    for (const l of links) expect(known.has(l.name), l.name).toBe(true);
    const addresses = new Set(
      monitor.snapshot().flatMap((e) => (e.type === 'address' ? [e.address.address] : [])),
    );
    for (let i = 0; i < 150; i++) expect(addresses.has(`10.80.${i}.1`)).toBe(true);
    // Every link the burst made was reported, live or by the resync.
    const reported = new Set(events.flatMap((e) => (e.type === 'link' ? [e.link.name] : [])));
    for (const l of links) expect(reported.has(l.name), l.name).toBe(true);
    // And it keeps working afterwards.
    ip(ns.name, 'link', 'set', 'burst0', 'mtu', '1400');
    await until(
      (e): e is NetlinkEvent =>
        e.type === 'link' && e.link.name === 'burst0' && e.link.mtu === 1400 && e.resync === undefined,
      'a live event after the resync',
    );
  });

  it('takes in a queue many times larger than its read buffer, every event in order, without an overrun', async () => {
    // A receive buffer large enough for the burst, made while this thread is blocked: the queued
    // notifications (more than 1 MiB) are read in many rounds of the 256 KiB read buffer.
    const monitor = await RtnetlinkMonitor.open({
      netns: ns.name,
      receiveBufferSize: 64 << 20,
      resync: false,
      groups: ['link'],
    });
    monitors.push(monitor);
    const { events, until } = collect(monitor);
    ipBatch(
      ns.name,
      Array.from({ length: 300 }, (_, i) => [
        `link add queue${i} type bridge`,
        `link set queue${i} up`,
        `link set queue${i} mtu 1400`,
      ]).flat(),
    );
    await until(
      (e): e is NetlinkEvent => e.type === 'link' && e.link.name === 'queue299' && e.link.mtu === 1400,
      'the last change of the burst',
      20_000,
    );
    expect(events.some((e) => e.type === 'overrun')).toBe(false);
    for (let i = 0; i < 300; i++) {
      const seen = events.flatMap((e) =>
        e.type === 'link' && e.link.name === `queue${i}` ? [`${e.link.up}/${e.link.mtu}`] : [],
      );
      // Created (down), up, then the new MTU: the kernel's order, each reported.
      expect(seen.at(0), `queue${i}`).toBe('false/1500');
      expect(seen.at(-1), `queue${i}`).toBe('true/1400');
      expect(seen.length, `queue${i}`).toBeGreaterThanOrEqual(3);
    }
  });

  it('without resync an overrun is still reported', async () => {
    const monitor = await RtnetlinkMonitor.open({ netns: ns.name, receiveBufferSize: 4096, resync: false });
    monitors.push(monitor);
    const { until } = collect(monitor);
    ipBatch(
      ns.name,
      Array.from({ length: 100 }, (_, i) => `link add nr${i} type bridge`),
    );
    await until((e): e is NetlinkEvent => e.type === 'overrun', 'an overrun event');
    expect(monitor.snapshot()).toEqual([]);
  });
});
