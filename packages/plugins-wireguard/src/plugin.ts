import { readFile } from 'node:fs/promises';
import {
  OpdbusError,
  createPlan,
  definePlugin,
  isOpdbusError,
  makeChange,
  packageVersion,
  type Change,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { Rtnetlink, RtnetlinkMonitor, canonicalCidr, type NetlinkEvent } from '@opdbus/netlink';
import { openBackend, type BackendOptions, type WireguardBackend } from './backend.js';
import type { DeviceState, PeerUpdate } from './device.js';
import { diffSection, interfaceOnly, interfaceResource, normalizeInterface, peerResource } from './diff.js';
import { decodeKey, encodeKey, keyFromId, publicKeyOf } from './keys.js';
import { WireguardKeyStore, keyFingerprint, type StoredKeyKind } from './keyStore.js';
import {
  wireguardSchema,
  type InterfaceEntry,
  type PeerEntry,
  type InterfaceOwn,
  type SecretRef,
  type WireguardSection,
  type WireguardValue,
} from './schema.js';

/**
 * The checkpoint: every touched interface and peer as it was (null: it did not exist). Keys a
 * device held that the key store did not know are stored (sealed) first, so the token names them
 * by reference and never holds a secret.
 */
export type WireguardCheckpoint = {
  /** Interfaces' own fields by name (null: it did not exist). */
  interfaces: { [name: string]: InterfaceOwn | null };
  /** Peer entries by resource, `peer/IFNAME/KEY` (null: it did not exist). */
  peers: { [resource: string]: PeerEntry | null };
};

/** A change of the wireguard plugin. */
export type WireguardChange = Change<WireguardValue>;

/** The wireguard plugin, typed: its section, checkpoint and change values. */
export type WireguardPlugin = Plugin<WireguardSection, WireguardCheckpoint, WireguardValue>;

/** Options of {@link createWireguardPlugin}. */
export interface WireguardPluginOptions extends BackendOptions {
  /** The key store's sealing key file (default `STATE_DIR/keys/wireguard.key`). */
  sealingKeyFile?: string;
  /**
   * `watch` follows the interfaces' links and addresses over rtnetlink as they change, and polls
   * the devices' keys and peers (neither the kernel nor the UAPI announces them) every this many
   * milliseconds (default 5000).
   */
  watchPollMs?: number;
}

const isLinkLocal6 = (address: string): boolean => /^fe[89ab][0-9a-f]:/i.test(address);

function withChangeId(err: unknown, change: WireguardChange): OpdbusError {
  const e =
    err instanceof OpdbusError
      ? err
      : new OpdbusError('OPDBUS_ERR_WIREGUARD_DEVICE', (err as Error).message, { cause: err });
  return new OpdbusError(e.code, e.message, {
    data: { ...(e.data ?? {}), changeId: change.id },
    cause: e.cause ?? err,
  });
}

/** Create the WireGuard plugin. */
export function createWireguardPlugin(options: WireguardPluginOptions = {}): WireguardPlugin {
  const stores = new Map<string, WireguardKeyStore>();
  const storeOf = (ctx: PluginContext): WireguardKeyStore => {
    let store = stores.get(ctx.stateDir);
    if (store === undefined) {
      store = new WireguardKeyStore({
        stateDir: ctx.stateDir,
        ...(options.sealingKeyFile === undefined ? {} : { sealingKeyFile: options.sealingKeyFile }),
      });
      stores.set(ctx.stateDir, store);
    }
    return store;
  };

  /** One backend per namespace, closed after a second of idleness (as the network plugin's clients). */
  const backends = new WeakMap<
    object,
    { backend: Promise<WireguardBackend>; users: number; timer: NodeJS.Timeout | undefined }
  >();
  const hostKey = {};
  async function withBackend<T>(ctx: PluginContext, fn: (b: WireguardBackend) => Promise<T>): Promise<T> {
    const key = ctx.netns ?? hostKey;
    let entry = backends.get(key);
    if (entry === undefined) {
      const created = {
        backend: openBackend({ netns: ctx.netns, logger: ctx.logger }, options),
        users: 0,
        timer: undefined,
      };
      created.backend.catch(() => backends.delete(key));
      backends.set(key, created);
      entry = created;
    }
    const held = entry;
    clearTimeout(held.timer);
    held.users++;
    try {
      return await fn(await held.backend);
    } finally {
      held.users--;
      if (held.users === 0) {
        held.timer = setTimeout(() => {
          if (held.users > 0) return;
          if (backends.get(key) === held) backends.delete(key);
          void held.backend.then((b) => b.close()).catch(() => undefined);
        }, 1000).unref();
      }
    }
  }

  /** The secret a reference names; a stored private key that is missing is generated when `generate`. */
  async function secretOf(
    ctx: PluginContext,
    ref: SecretRef,
    kind: StoredKeyKind,
    generate: boolean,
  ): Promise<Buffer> {
    if ('file' in ref) {
      let text: string;
      try {
        text = (await readFile(ref.file, 'utf8')).trim();
      } catch (err) {
        throw new OpdbusError(
          'OPDBUS_ERR_WIREGUARD_KEY',
          `Cannot read the WireGuard key file ${ref.file}: ${(err as Error).message}.`,
          { data: { file: ref.file }, cause: err },
        );
      }
      return decodeKey(text, `key in ${ref.file}`);
    }
    const store = storeOf(ctx);
    if (generate && kind === 'private' && !(await store.has(ref.stored))) {
      try {
        await store.generate(ref.stored, 'private');
        ctx.logger.info({ id: ref.stored }, 'generated a WireGuard private key on this node');
      } catch (err) {
        // Another process generated it meanwhile: use that one.
        if (!isOpdbusError(err, 'OPDBUS_ERR_WIREGUARD_KEY')) throw err;
      }
    }
    return store.secret(ref.stored);
  }

  /** The fingerprint a reference's key has, undefined when the key does not exist (yet). */
  async function fingerprintOf(ctx: PluginContext, ref: SecretRef): Promise<string | undefined> {
    if ('stored' in ref) return (await storeOf(ctx).info(ref.stored))?.fingerprint;
    try {
      return keyFingerprint(await secretOf(ctx, ref, 'private', false));
    } catch {
      return undefined;
    }
  }

  /** The reference to report for a secret a device holds: the desired one when it matches, else a stored id. */
  async function refFor(
    ctx: PluginContext,
    secret: Buffer,
    wanted: SecretRef | undefined,
  ): Promise<SecretRef | undefined> {
    const fingerprint = keyFingerprint(secret);
    if (wanted !== undefined && (await fingerprintOf(ctx, wanted)) === fingerprint) return wanted;
    const found = await storeOf(ctx).findByFingerprint(fingerprint);
    return found === undefined ? undefined : { stored: found.id };
  }

  /** A secret a device holds as a reference, storing it (sealed) when the store does not have it. */
  async function stash(ctx: PluginContext, secret: Buffer, kind: StoredKeyKind): Promise<SecretRef> {
    const store = storeOf(ctx);
    const fingerprint = keyFingerprint(secret);
    const found = await store.findByFingerprint(fingerprint);
    if (found !== undefined) return { stored: found.id };
    const id = `checkpoint-${fingerprint.slice(0, 24)}`;
    try {
      await store.put(id, secret, kind);
    } catch (err) {
      if (!isOpdbusError(err, 'OPDBUS_ERR_WIREGUARD_KEY')) throw err;
    }
    return { stored: id };
  }

  async function linkFacts(
    ctx: PluginContext,
    names: readonly string[],
  ): Promise<Map<string, { up: boolean; mtu: number; addresses: string[] }>> {
    const out = new Map<string, { up: boolean; mtu: number; addresses: string[] }>();
    if (names.length === 0) return out;
    const nl = Rtnetlink.open({ netns: ctx.netns, logger: ctx.logger });
    try {
      const wanted = new Set(names);
      const links = (await nl.listLinks()).filter((l) => wanted.has(l.name));
      const byIndex = new Map(links.map((l) => [l.index, l.name]));
      for (const l of links) out.set(l.name, { up: l.up, mtu: l.mtu, addresses: [] });
      for (const a of await nl.listAddresses()) {
        const name = byIndex.get(a.index);
        if (name === undefined || (a.family === 6 && isLinkLocal6(a.address))) continue;
        out.get(name)!.addresses.push(canonicalCidr(`${a.address}/${a.prefixLength}`));
      }
      for (const f of out.values()) f.addresses.sort();
      return out;
    } finally {
      nl.close();
    }
  }

  async function peerEntry(
    ctx: PluginContext,
    p: DeviceState['peers'][number],
    wanted: PeerEntry | undefined,
  ): Promise<PeerEntry> {
    const entry: PeerEntry = { publicKey: encodeKey(p.publicKey) };
    if (p.presharedKey !== undefined) {
      const ref = await refFor(ctx, p.presharedKey, wanted?.presharedKey);
      if (ref !== undefined) entry.presharedKey = ref;
    }
    if (p.endpoint !== undefined) entry.endpoint = p.endpoint;
    entry.allowedIPs = [...new Set(p.allowedIPs)].sort();
    if (p.persistentKeepalive !== 0) entry.persistentKeepalive = p.persistentKeepalive;
    return entry;
  }

  /**
   * The observed entry of an interface. With `wanted`, peers are exactly those it names (absent
   * ones marked); without it, every peer of the device.
   */
  async function interfaceEntry(
    ctx: PluginContext,
    device: DeviceState,
    link: { up: boolean; mtu: number; addresses: string[] } | undefined,
    wanted: InterfaceEntry | undefined,
  ): Promise<InterfaceEntry> {
    const entry: InterfaceEntry = { name: device.name, state: link?.up === false ? 'down' : 'up' };
    if (device.privateKey !== undefined) {
      const ref = await refFor(ctx, device.privateKey, wanted?.privateKey);
      if (ref !== undefined) entry.privateKey = ref;
    }
    if (device.publicKey !== undefined) entry.publicKey = encodeKey(device.publicKey);
    if (device.listenPort !== 0) entry.listenPort = device.listenPort;
    if (device.fwmark !== 0) entry.fwmark = device.fwmark;
    if (link !== undefined) {
      entry.mtu = link.mtu;
      entry.addresses = link.addresses;
    }
    const byKey = new Map(device.peers.map((p) => [encodeKey(p.publicKey), p]));
    if (wanted === undefined) {
      entry.peers = await Promise.all(
        [...byKey.keys()].sort().map((k) => peerEntry(ctx, byKey.get(k)!, undefined)),
      );
    } else if (wanted.peers !== undefined) {
      entry.peers = await Promise.all(
        wanted.peers.map(async (w) => {
          const p = byKey.get(w.publicKey);
          return p === undefined
            ? { publicKey: w.publicKey, state: 'absent' as const }
            : peerEntry(ctx, p, w);
        }),
      );
    }
    return entry;
  }

  async function observe(ctx: PluginContext, scope: WireguardSection | undefined): Promise<WireguardSection> {
    return withBackend(ctx, async (backend) => {
      const names = scope === undefined ? await backend.list() : (scope.interfaces ?? []).map((i) => i.name);
      const devices = new Map<string, DeviceState>();
      for (const name of names) {
        const device = await backend.get(name);
        if (device !== undefined) devices.set(name, device);
      }
      const links = await linkFacts(ctx, [...devices.keys()]);
      if (scope === undefined) {
        const interfaces = await Promise.all(
          [...devices.values()].map((d) => interfaceEntry(ctx, d, links.get(d.name), undefined)),
        );
        return { interfaces };
      }
      const interfaces = await Promise.all(
        (scope.interfaces ?? []).map(async (w): Promise<InterfaceEntry> => {
          const device = devices.get(w.name);
          if (device === undefined) return { name: w.name, state: 'absent' };
          return interfaceEntry(ctx, device, links.get(w.name), w);
        }),
      );
      return { interfaces };
    });
  }

  /** Set an interface's link: MTU, addresses (the complete list), up or down. */
  async function applyLink(ctx: PluginContext, want: InterfaceEntry, created: boolean): Promise<void> {
    const nl = Rtnetlink.open({ netns: ctx.netns, logger: ctx.logger });
    try {
      const link = await nl.getLink(want.name);
      if (link === undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_WIREGUARD_DEVICE',
          `WireGuard interface ${want.name} has no link in ${ctx.netns ? `namespace ${ctx.netns.name}` : 'this namespace'}.`,
          { data: { interface: want.name } },
        );
      }
      if (want.mtu !== undefined && want.mtu !== link.mtu) await nl.setLink(want.name, { mtu: want.mtu });
      if (want.addresses !== undefined) {
        const have = (await nl.listAddresses({ link: want.name }))
          .filter((a) => !(a.family === 6 && isLinkLocal6(a.address)))
          .map((a) => canonicalCidr(`${a.address}/${a.prefixLength}`));
        const wantSet = new Set(want.addresses.map((a) => canonicalCidr(a)));
        for (const a of have) if (!wantSet.has(a)) await nl.deleteAddress({ link: want.name, address: a });
        for (const a of wantSet)
          if (!have.includes(a)) await nl.addAddress({ link: want.name, address: a }, { replace: true });
      }
      const up = want.state === 'down' ? false : want.state === 'up' || created ? true : undefined;
      if (up !== undefined && up !== link.up) await nl.setLink(want.name, { up });
    } finally {
      nl.close();
    }
  }

  async function applyInterface(
    ctx: PluginContext,
    backend: WireguardBackend,
    change: WireguardChange,
  ): Promise<void> {
    if (change.op === 'delete') {
      await backend.delete(change.resource.slice('interface/'.length));
      return;
    }
    const want = change.after as InterfaceOwn;
    // Resolve (and on first use generate) the key before touching the device.
    const privateKey =
      want.privateKey === undefined ? undefined : await secretOf(ctx, want.privateKey, 'private', true);
    if (
      privateKey !== undefined &&
      want.publicKey !== undefined &&
      encodeKey(publicKeyOf(privateKey)) !== want.publicKey
    ) {
      throw new OpdbusError(
        'OPDBUS_ERR_WIREGUARD_KEY',
        `The private key ${JSON.stringify(want.privateKey)} of WireGuard interface ${want.name} has the public key ${encodeKey(publicKeyOf(privateKey))}, not ${want.publicKey} as the document pins; the key was generated elsewhere or replaced.`,
        { data: { interface: want.name } },
      );
    }
    let device = await backend.get(want.name);
    const created = device === undefined;
    if (device === undefined) {
      await backend.create(want.name);
      device = await backend.get(want.name);
    }
    const update: Parameters<WireguardBackend['set']>[1] = {};
    if (privateKey !== undefined && !(device?.privateKey?.equals(privateKey) ?? false))
      update.privateKey = privateKey;
    if (want.listenPort !== undefined && want.listenPort !== device?.listenPort)
      update.listenPort = want.listenPort;
    if (want.fwmark !== undefined && want.fwmark !== device?.fwmark) update.fwmark = want.fwmark;
    if (Object.keys(update).length > 0) await backend.set(want.name, update);
    if (want.publicKey !== undefined && privateKey === undefined) {
      const now = await backend.get(want.name);
      if (now?.publicKey === undefined || encodeKey(now.publicKey) !== want.publicKey) {
        throw new OpdbusError(
          'OPDBUS_ERR_WIREGUARD_KEY',
          `WireGuard interface ${want.name} has ${now?.publicKey ? `the public key ${encodeKey(now.publicKey)}` : 'no key'}, not ${want.publicKey} as the document pins; name its private key (privateKey: { stored: ID }).`,
          { data: { interface: want.name } },
        );
      }
    }
    await applyLink(ctx, want, created);
  }

  async function peerUpdate(ctx: PluginContext, want: PeerEntry): Promise<PeerUpdate> {
    const update: PeerUpdate = { publicKey: decodeKey(want.publicKey, 'peer public key') };
    if (want.presharedKey !== undefined)
      update.presharedKey = await secretOf(ctx, want.presharedKey, 'preshared', false);
    if (want.endpoint !== undefined) update.endpoint = want.endpoint;
    if (want.persistentKeepalive !== undefined) update.persistentKeepalive = want.persistentKeepalive;
    if (want.allowedIPs !== undefined) {
      update.replaceAllowedIPs = true;
      update.allowedIPs = want.allowedIPs;
    }
    return update;
  }

  async function applyPeer(
    ctx: PluginContext,
    backend: WireguardBackend,
    change: WireguardChange,
  ): Promise<void> {
    const [, iface, id] = change.resource.split('/') as [string, string, string];
    if (change.op === 'delete') {
      if ((await backend.get(iface)) === undefined) return;
      await backend.set(iface, {
        peers: [{ publicKey: decodeKey(keyFromId(id), 'peer public key'), remove: true }],
      });
      return;
    }
    await backend.set(iface, { peers: [await peerUpdate(ctx, change.after as PeerEntry)] });
  }

  /** The update of one peer change (a removal, or its desired fields). */
  async function peerChangeUpdate(ctx: PluginContext, change: WireguardChange): Promise<PeerUpdate> {
    if (change.op === 'delete')
      return {
        publicKey: decodeKey(keyFromId(change.resource.split('/')[2]!), 'peer public key'),
        remove: true,
      };
    return peerUpdate(ctx, change.after as PeerEntry);
  }

  /** What undoes a peer change: its `before` put back (removed when it did not exist). */
  async function peerRevert(ctx: PluginContext, change: WireguardChange): Promise<PeerUpdate> {
    const publicKey = decodeKey(keyFromId(change.resource.split('/')[2]!), 'peer public key');
    if (change.before === null) return { publicKey, remove: true };
    const before = change.before as PeerEntry;
    return peerUpdate(ctx, { ...before, persistentKeepalive: before.persistentKeepalive ?? 0 });
  }

  /**
   * Consecutive peer changes of one interface go to the device as one configuration request
   * (one UAPI `set`, or one WG_CMD_SET_DEVICE series): applying 50 peers costs one round trip.
   * A request the device refuses is undone from the changes' `before` states, so nothing of the
   * batch stays applied.
   */
  async function applyBatch(
    ctx: PluginContext,
    backend: WireguardBackend,
    changes: readonly WireguardChange[],
  ): Promise<void> {
    let i = 0;
    while (i < changes.length) {
      const change = changes[i]!;
      if (!change.resource.startsWith('peer/')) {
        try {
          await applyChange(ctx, backend, change);
        } catch (err) {
          throw withChangeId(err, change);
        }
        i++;
        continue;
      }
      const iface = change.resource.split('/')[1]!;
      const run: WireguardChange[] = [];
      while (i < changes.length && changes[i]!.resource.startsWith(`peer/${iface}/`)) run.push(changes[i++]!);
      if ((await backend.get(iface)) === undefined && run.every((c) => c.op === 'delete')) continue;
      const updates = await Promise.all(run.map((c) => peerChangeUpdate(ctx, c)));
      try {
        await backend.set(iface, { peers: updates });
      } catch (err) {
        try {
          await backend.set(iface, { peers: await Promise.all(run.map((c) => peerRevert(ctx, c))) });
        } catch (undo) {
          ctx.logger.error({ err: undo, interface: iface }, 'could not undo a refused batch of peer changes');
        }
        throw withChangeId(err, run[0]!);
      }
    }
  }

  async function applyChange(
    ctx: PluginContext,
    backend: WireguardBackend,
    change: WireguardChange,
  ): Promise<void> {
    if (change.resource.startsWith('interface/')) return applyInterface(ctx, backend, change);
    if (change.resource.startsWith('peer/')) return applyPeer(ctx, backend, change);
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_INVALID',
      `Unknown WireGuard resource "${change.resource}" in a plan; it was not made by this plugin.`,
      { data: { resource: change.resource } },
    );
  }

  /** A device's secrets as references (stored when unknown), for a checkpoint. */
  async function checkpointEntry(
    ctx: PluginContext,
    device: DeviceState,
    link: { up: boolean; mtu: number; addresses: string[] } | undefined,
  ): Promise<InterfaceEntry> {
    const entry = await interfaceEntry(ctx, device, link, undefined);
    if (device.privateKey !== undefined && entry.privateKey === undefined)
      entry.privateKey = await stash(ctx, device.privateKey, 'private');
    for (const p of device.peers) {
      const e = entry.peers?.find((x) => x.publicKey === encodeKey(p.publicKey));
      if (e !== undefined && p.presharedKey !== undefined && e.presharedKey === undefined)
        e.presharedKey = await stash(ctx, p.presharedKey, 'preshared');
    }
    // Restoring puts exactly this back: keepalives and allowed IPs of every peer, off included.
    for (const e of entry.peers ?? []) e.persistentKeepalive ??= 0;
    return entry;
  }

  return definePlugin<WireguardSection, WireguardCheckpoint, WireguardValue>({
    name: 'wireguard',
    version: packageVersion(import.meta.url),
    description:
      'WireGuard interfaces and peers over the kernel generic netlink family or the wireguard-go UAPI socket; private keys sealed at rest, never shown.',
    schema: wireguardSchema,

    async probe(ctx) {
      try {
        return await withBackend(ctx, (b) => Promise.resolve({ available: true as const, detail: b.detail }));
      } catch (err) {
        return { available: false, reason: (err as Error).message };
      }
    },

    query(ctx, queryOptions) {
      return observe(ctx, queryOptions?.scope);
    },

    diff(desired, observed) {
      return diffSection(desired, observed);
    },

    apply(change, ctx) {
      return withBackend(ctx, (backend) => applyChange(ctx, backend, change));
    },

    applyBatch(changes, ctx) {
      return withBackend(ctx, (backend) => applyBatch(ctx, backend, changes));
    },

    checkpoint(ctx, changes) {
      return withBackend(ctx, async (backend) => {
        const token: WireguardCheckpoint = { interfaces: {}, peers: {} };
        const names = new Set(changes.map((c) => c.resource.split('/')[1]!));
        const devices = new Map<string, DeviceState>();
        for (const name of names) {
          const d = await backend.get(name);
          if (d !== undefined) devices.set(name, d);
        }
        const links = await linkFacts(ctx, [...devices.keys()]);
        const entries = new Map<string, InterfaceEntry>();
        for (const [name, d] of devices) entries.set(name, await checkpointEntry(ctx, d, links.get(name)));
        for (const change of changes) {
          const [kind, name] = change.resource.split('/') as [string, string];
          const entry = entries.get(name);
          if (kind === 'interface') {
            token.interfaces[name] = entry === undefined ? null : interfaceOnly(entry);
            // A deleted interface takes its peers with it: keep them all.
            if (change.op === 'delete')
              for (const p of entry?.peers ?? []) token.peers[peerResource(name, p.publicKey)] = p;
          } else {
            const key = keyFromId(change.resource.split('/')[2]!);
            const peer = entry?.peers?.find((p) => p.publicKey === key);
            token.peers[change.resource] = peer ?? null;
            token.interfaces[name] ??= entry === undefined ? null : interfaceOnly(entry);
          }
        }
        return token;
      });
    },

    restore(token, ctx) {
      return withBackend(ctx, async (backend) => {
        const interfaces = new Map<string, InterfaceEntry>();
        for (const [name, e] of Object.entries(token.interfaces)) {
          interfaces.set(name, e === null ? { name, state: 'absent' } : { ...e, peers: [] });
        }
        for (const [resource, e] of Object.entries(token.peers)) {
          const [, name, id] = resource.split('/') as [string, string, string];
          const iface = interfaces.get(name);
          if (iface === undefined || iface.state === 'absent') continue;
          iface.peers!.push(e ?? { publicKey: keyFromId(id), state: 'absent' });
        }
        const desired: WireguardSection = { interfaces: [...interfaces.values()].map(normalizeInterface) };
        const observed = await observe(ctx, desired);
        const plan = createPlan(diffSection(desired, observed).map((spec) => makeChange('wireguard', spec)));
        const failures: string[] = [];
        for (const change of plan.changes) {
          try {
            await applyChange(ctx, backend, change);
          } catch (err) {
            failures.push(`${change.summary}: ${(err as Error).message}`);
          }
        }
        if (failures.length > 0) {
          throw new OpdbusError(
            'OPDBUS_ERR_WIREGUARD_RESTORE',
            `Could not restore: ${failures.join('; ')}.`,
            {
              data: { failures },
            },
          );
        }
      });
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const names = new Set(await withBackend(ctx, (b) => b.list()));
      const monitor = await RtnetlinkMonitor.open({
        netns: ctx.netns,
        groups: ['link', 'ipv4-address', 'ipv6-address'],
        resync: true,
        logger: ctx.logger,
      });
      const indexes = new Map<number, string>();
      for (const e of monitor.snapshot()) if (e.type === 'link') indexes.set(e.link.index, e.link.name);
      monitor.on('error', (err) => ctx.logger.warn({ err }, 'wireguard watch error'));
      monitor.on('event', (event: NetlinkEvent) => {
        if (event.type === 'link') {
          if (event.action === 'delete') indexes.delete(event.link.index);
          else indexes.set(event.link.index, event.link.name);
          if (!names.has(event.link.name)) return;
          onEvent({
            plugin: 'wireguard',
            resource: interfaceResource(event.link.name),
            detail:
              event.action === 'delete'
                ? `WireGuard interface ${event.link.name} deleted`
                : `WireGuard interface ${event.link.name}: ${event.link.up ? 'up' : 'down'}, mtu ${event.link.mtu}`,
            raw: { action: event.action, name: event.link.name, up: event.link.up, mtu: event.link.mtu },
          });
        } else if (event.type === 'address') {
          const name = indexes.get(event.address.index);
          if (name === undefined || !names.has(name)) return;
          onEvent({
            plugin: 'wireguard',
            resource: interfaceResource(name),
            detail: `address ${event.address.address}/${event.address.prefixLength} ${event.action === 'delete' ? 'removed from' : 'on'} ${name}`,
            raw: {
              action: event.action,
              interface: name,
              address: `${event.address.address}/${event.address.prefixLength}`,
            },
          });
        }
      });
      // Keys, ports and peers have no event stream: poll them and report what changed.
      let last = new Map<string, string>();
      const fingerprint = async (): Promise<Map<string, string>> =>
        withBackend(ctx, async (b) => {
          const out = new Map<string, string>();
          for (const name of await b.list()) {
            const d = await b.get(name);
            if (d === undefined) continue;
            names.add(name);
            out.set(
              name,
              JSON.stringify({
                k: d.publicKey?.toString('base64'),
                p: d.listenPort,
                f: d.fwmark,
                peers: d.peers
                  .map((p) => ({
                    k: p.publicKey.toString('base64'),
                    e: p.endpoint,
                    a: [...p.allowedIPs].sort(),
                    ka: p.persistentKeepalive,
                    psk: p.presharedKey === undefined ? 0 : keyFingerprint(p.presharedKey),
                  }))
                  .sort((a, b) => a.k.localeCompare(b.k)),
              }),
            );
          }
          return out;
        });
      last = await fingerprint();
      let polling = false;
      const timer = setInterval(() => {
        if (polling) return;
        polling = true;
        fingerprint()
          .then((now) => {
            for (const [name, fp] of now) {
              if (last.get(name) === fp) continue;
              onEvent({
                plugin: 'wireguard',
                resource: interfaceResource(name),
                detail: last.has(name)
                  ? `WireGuard interface ${name}: key, port or peers changed`
                  : `WireGuard interface ${name} appeared`,
                raw: { interface: name, change: last.has(name) ? 'config' : 'created' },
              });
            }
            last = now;
          })
          .catch((err: unknown) => ctx.logger.warn({ err }, 'wireguard watch poll failed'))
          .finally(() => (polling = false));
      }, options.watchPollMs ?? 5000);
      timer.unref();
      return () => {
        clearInterval(timer);
        monitor.close();
      };
    },
  });
}

/** The WireGuard plugin with default options. */
export const wireguardPlugin: WireguardPlugin = createWireguardPlugin();
