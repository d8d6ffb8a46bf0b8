import { existsSync } from 'node:fs';
import {
  OpdbusError,
  definePlugin,
  isOpdbusError,
  makeChange,
  packageVersion,
  type Logger,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { OvsdbClient, parseOvsdbAddress, type RowChange } from '@opdbus/ovsdb';
import type { OpenVSwitchTables } from '@opdbus/ovsdb/vswitch';
import { diffSection, type OvsChange, type OvsValue } from './diff.js';
import {
  bridgeOfPort,
  bridgeResource,
  bridgeRows,
  managerResource,
  managerRows,
  observeAll,
  observeBridge,
  observeManager,
  observePort,
  observeScoped,
  portResource,
  replicatedColumns,
  rootRow,
  type OvsReplica,
} from './model.js';
import {
  ovsSchema,
  type OvsBridge,
  type OvsController,
  type OvsInterface,
  type OvsManager,
  type OvsPort,
  type OvsSection,
  type StringMapSpec,
} from './schema.js';
import { buildTransaction, parseResource } from './txn.js';

/** Where ovsdb-server listens on a Debian/Ubuntu host. */
export const DEFAULT_OVSDB_ADDRESS = 'unix:/run/openvswitch/db.sock';

/** The OVSDB lock op-dbus holds while it writes, so two op-dbus never interleave. */
export const OVS_LOCK = 'opdbus';

/** Options of {@link createOvsPlugin}. */
export interface OvsPluginOptions {
  /** The OVSDB address when the target names none (default {@link DEFAULT_OVSDB_ADDRESS}). */
  defaultAddress?: string;
  /**
   * Wait for ovs-vswitchd to apply each transaction, as ovs-vsctl does (bump `next_cfg`, wait
   * for `cur_cfg`), and then check the `error` column of the interfaces it touched. `auto`
   * (default): when ovs-vswitchd has been running (it has reported its interface types and has
   * caught up with `next_cfg`).
   */
  waitForVswitchd?: 'auto' | boolean;
  /** How long to wait for ovs-vswitchd (default 20 s). */
  vswitchdTimeoutMs?: number;
  /** How long to wait for the OVSDB lock another op-dbus holds (default 10 s). */
  lockTimeoutMs?: number;
  /** Bound on each OVSDB request (default 60 s). */
  requestTimeoutMs?: number;
}

/**
 * The checkpoint: the full state of every resource a plan touches, as the document shows it
 * (null: it did not exist). `bridges` by name (an {@link OvsBridge} with all its ports),
 * `ports` by `BRIDGE/PORT` (`{ bridge, port: OvsPort | null }`), `managers` by target.
 */
export interface OvsCheckpoint {
  bridges: Record<string, OvsBridge | null>;
  ports: Record<string, { bridge: string; port: OvsPort | null }>;
  managers: Record<string, OvsManager | null>;
}

/** The ovs plugin, with a way to close its OVSDB connections. */
export type OvsPlugin = Plugin<OvsSection, OvsCheckpoint, OvsValue> & {
  /** Close the OVSDB connections the plugin opened (tests, or a daemon shutting down). */
  close(): Promise<void>;
};

interface Session {
  address: string;
  client: OvsdbClient;
  replica: OvsReplica;
}

/** The replica's monitor requests: the columns the plugin uses, per table. */
function monitorRequests(): Record<string, { columns: string[] }> {
  const out: Record<string, { columns: string[] }> = {};
  for (const [table, columns] of Object.entries(replicatedColumns)) out[table] = { columns: [...columns] };
  return out;
}

/**
 * Create the ovs plugin: Open vSwitch bridges (with their ports, interfaces and controllers) and
 * managers, over OVSDB — never through ovs-vsctl.
 *
 * It keeps one connection and an in-memory replica per OVSDB address (monitor_cond_since), so a
 * query is a read of memory after a round trip that guarantees freshness. A plan is applied as ONE
 * OVSDB transaction (`applyBatch`), guarded by `wait` operations on every row it touches — a
 * concurrent writer makes it fail cleanly with `OPDBUS_ERR_OVS_CONFLICT` — and by the OVSDB lock
 * `opdbus` (`assert`). With ovs-vswitchd running it waits, as ovs-vsctl does, until the switch has
 * applied the change, and fails if an interface could not be set up. `watch` follows the monitor.
 */
export function createOvsPlugin(options: OvsPluginOptions = {}): OvsPlugin {
  const sessions = new Map<string, Promise<Session>>();
  const addressOf = (ctx: PluginContext): string =>
    ctx.target.ovsdbAddress ?? options.defaultAddress ?? DEFAULT_OVSDB_ADDRESS;

  const open = async (address: string, logger: Logger): Promise<Session> => {
    const client = await OvsdbClient.connect({
      address,
      logger,
      unrefWhenIdle: true,
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    });
    try {
      const dbs = await client.listDbs();
      if (!dbs.includes('Open_vSwitch'))
        throw new OpdbusError(
          'OPDBUS_ERR_OVSDB_CONNECT',
          `The OVSDB server at ${address} does not serve the Open_vSwitch database (it serves ${dbs.join(', ') || 'none'}).`,
          { data: { address, databases: dbs } },
        );
      const replica = await client.database<OpenVSwitchTables>('Open_vSwitch').replica(monitorRequests());
      return { address, client, replica };
    } catch (err) {
      await client.close();
      throw err;
    }
  };

  const session = (ctx: PluginContext): Promise<Session> => {
    const address = addressOf(ctx);
    let pending = sessions.get(address);
    if (pending === undefined) {
      pending = open(address, ctx.logger);
      sessions.set(address, pending);
      pending.then(
        (s) => s.client.on('close', () => sessions.delete(address)),
        () => sessions.delete(address),
      );
    }
    return pending;
  };

  /** A fresh replica: every change committed before the call is in it. */
  const fresh = async (ctx: PluginContext): Promise<Session> => {
    const s = await session(ctx);
    await s.replica.sync();
    return s;
  };

  const shouldWaitForVswitchd = (replica: OvsReplica): boolean => {
    const setting = options.waitForVswitchd ?? 'auto';
    if (setting !== 'auto') return setting;
    const root = rootRow(replica);
    return root !== undefined && root.iface_types.length > 0 && root.cur_cfg === root.next_cfg;
  };

  const applyBatch = async (changes: readonly OvsChange[], ctx: PluginContext): Promise<void> => {
    if (changes.length === 0) return;
    const { client, replica } = await fresh(ctx);
    if (rootRow(replica) === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_OVS_INVALID',
        `The Open_vSwitch database at ${addressOf(ctx)} is not initialised (its Open_vSwitch table has no row); run \`ovs-vsctl --no-wait init\`.`,
        { data: { address: addressOf(ctx) } },
      );
    try {
      await client.acquireLock(OVS_LOCK, { timeoutMs: options.lockTimeoutMs ?? 10_000 });
    } catch (err) {
      if (isOpdbusError(err, 'OPDBUS_ERR_OVSDB_TIMEOUT'))
        throw new OpdbusError(
          'OPDBUS_ERR_OVS_LOCKED',
          `Another op-dbus holds the OVSDB lock "${OVS_LOCK}" at ${addressOf(ctx)} and did not release it within ${options.lockTimeoutMs ?? 10_000} ms; nothing was changed.`,
          { data: { address: addressOf(ctx), lock: OVS_LOCK }, cause: err },
        );
      throw err;
    }
    try {
      // The lock is granted: read again so the guards compare with the latest state.
      await replica.sync();
      const waitForVswitchd = shouldWaitForVswitchd(replica);
      const built = buildTransaction(replica, changes, {
        lock: OVS_LOCK,
        waitForVswitchd,
        comment: `opdbus: ${changes.map((c) => c.summary).join('; ')}`.slice(0, 4000),
      });
      if (built.effective.length === 0) return;
      let results: unknown[];
      try {
        results = await client.transact(
          'Open_vSwitch',
          built.operations,
          ctx.signal === undefined ? {} : { signal: ctx.signal },
        );
      } catch (err) {
        throw explain(err, built.owners, built.operations);
      }
      await replica.sync();
      ctx.logger.debug(
        { changes: built.effective.map((c) => c.id), operations: built.operations.length },
        'ovs transaction committed',
      );
      if (built.nextCfgIndex !== undefined) {
        const rows = (results[built.nextCfgIndex] as { rows: { next_cfg: number }[] }).rows;
        const target = rows[0]?.next_cfg ?? 0;
        const timeoutMs = options.vswitchdTimeoutMs ?? 20_000;
        try {
          await replica.waitFor(() => (rootRow(replica)?.cur_cfg ?? 0) >= target, {
            timeoutMs,
            what: `cur_cfg ${target}`,
            ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
          });
        } catch (err) {
          throw new OpdbusError(
            'OPDBUS_ERR_OVS_VSWITCHD_TIMEOUT',
            `ovs-vswitchd did not apply the configuration within ${timeoutMs} ms (next_cfg ${target}, cur_cfg ${rootRow(replica)?.cur_cfg ?? '?'}); is it running?`,
            {
              data: { address: addressOf(ctx), next_cfg: target, cur_cfg: rootRow(replica)?.cur_cfg },
              cause: err,
            },
          );
        }
        const failed = built.interfaces
          .map((name) => replica.lookup('Interface', 'name', name))
          .filter((row) => row !== undefined && row.error !== null)
          .map((row) => ({ name: row!.name, error: row!.error! }));
        if (failed.length > 0) {
          const owner = built.effective.find((c) =>
            failed.some((f) => JSON.stringify(c.after).includes(`"${f.name}"`)),
          );
          throw new OpdbusError(
            'OPDBUS_ERR_OVS_INTERFACE',
            `ovs-vswitchd could not set up ${failed.map((f) => `interface ${f.name}: ${f.error}`).join('; ')}.`,
            {
              data: {
                interfaces: failed,
                ...(owner === undefined ? {} : { changeId: owner.id, resource: owner.resource }),
              },
            },
          );
        }
      }
    } finally {
      await client
        .unlock(OVS_LOCK)
        .catch((err: unknown) => ctx.logger.warn({ err }, 'releasing the OVSDB lock failed'));
    }
  };

  const plugin = definePlugin<OvsSection, OvsCheckpoint, OvsValue>({
    name: 'ovs',
    version: packageVersion(import.meta.url),
    description: 'Open vSwitch over OVSDB: bridges (with ports, interfaces, controllers) and managers.',
    schema: ovsSchema,

    async probe(ctx) {
      const address = addressOf(ctx);
      let parsed;
      try {
        parsed = parseOvsdbAddress(address);
      } catch (err) {
        return { available: false, reason: (err as Error).message };
      }
      if (parsed.kind === 'unix' && !existsSync(parsed.path))
        return {
          available: false,
          reason: `there is no OVSDB socket at ${parsed.path} (is ovsdb-server running? start it with \`systemctl start openvswitch-switch\`, or point op-dbus at it with --ovsdb)`,
        };
      try {
        const { replica } = await fresh(ctx);
        const root = rootRow(replica);
        if (root === undefined)
          return {
            available: false,
            reason: `the Open_vSwitch database at ${address} is not initialised; run \`ovs-vsctl --no-wait init\``,
          };
        return {
          available: true,
          detail: `Open vSwitch ${root.ovs_version ?? '(version unknown)'} at ${address}`,
        };
      } catch (err) {
        return { available: false, reason: (err as Error).message.replace(/\.$/, '') };
      }
    },

    async query(ctx, queryOptions) {
      const { replica } = await fresh(ctx);
      return queryOptions?.scope === undefined
        ? observeAll(replica)
        : observeScoped(replica, queryOptions.scope);
    },

    diff: diffSection,

    apply: (change, ctx) => applyBatch([change], ctx),
    applyBatch,

    async checkpoint(ctx, changes) {
      const { replica } = await fresh(ctx);
      const token: OvsCheckpoint = { bridges: {}, ports: {}, managers: {} };
      for (const change of changes) {
        const ref = parseResource(change.resource);
        if (ref.kind === 'bridge') {
          const row = bridgeRows(replica).find((b) => b.name === ref.bridge);
          token.bridges[ref.bridge] = row === undefined ? null : observeBridge(replica, row);
        } else if (ref.kind === 'port') {
          const row = replica.lookup('Port', 'name', ref.port);
          const onBridge = row !== undefined && bridgeOfPort(replica, row._uuid)?.name === ref.bridge;
          token.ports[`${ref.bridge}/${ref.port}`] = {
            bridge: ref.bridge,
            port: onBridge ? observePort(replica, row) : null,
          };
        } else {
          const row = managerRows(replica).find((m) => m.target === ref.target);
          token.managers[ref.target] = row === undefined ? null : observeManager(row);
        }
      }
      return JSON.parse(JSON.stringify(token)) as OvsCheckpoint;
    },

    async restore(token, ctx) {
      const { replica } = await fresh(ctx);
      const current = observeAll(replica);
      const desired = restoreSection(token, current);
      const observed = observeScoped(replica, desired);
      const changes = diffSection(desired, observed).map((spec) => makeChange('ovs', spec));
      await applyBatch(changes, ctx);
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const { replica } = await session(ctx);
      const off = replica.on('change', (changes) => {
        for (const event of watchEvents(replica, changes)) onEvent(event);
      });
      return off;
    },
  });

  return Object.assign(plugin, {
    async close(): Promise<void> {
      const all = [...sessions.values()];
      sessions.clear();
      for (const pending of all) {
        const s = await pending.catch(() => undefined);
        await s?.client.close();
      }
    },
  });
}

/** Map a failed transaction to the change it belongs to, with OVSDB's error kept. */
function explain(
  err: unknown,
  owners: readonly (OvsChange | undefined)[],
  operations: readonly { op: string }[],
): unknown {
  if (!isOpdbusError(err, 'OPDBUS_ERR_OVSDB_TRANSACTION')) return err;
  const index = typeof err.data?.operationIndex === 'number' ? err.data.operationIndex : -1;
  const owner = owners[index];
  const op = operations[index];
  const ovsdb = { error: err.data?.error, details: err.data?.details, operationIndex: index };
  const where = owner === undefined ? {} : { changeId: owner.id, resource: owner.resource };
  if ((op?.op === 'wait' && err.data?.error === 'timed out') || err.data?.error === 'not owner') {
    return new OpdbusError(
      'OPDBUS_ERR_OVS_CONFLICT',
      err.data?.error === 'not owner'
        ? `op-dbus lost the OVSDB lock "${OVS_LOCK}" before the transaction committed; nothing was changed. Apply again.`
        : `${owner?.resource ?? 'A resource'} was changed by another OVSDB client after op-dbus read it (its "wait" guard failed); nothing was changed. Run \`opdbus diff\` and apply again.`,
      { data: { ...where, ...ovsdb }, cause: err },
    );
  }
  return new OpdbusError(
    'OPDBUS_ERR_OVS_TRANSACTION',
    `ovsdb-server refused the transaction${owner === undefined ? '' : ` at "${owner.summary}"`}: ${String(err.data?.error)}${typeof err.data?.details === 'string' ? `: ${err.data.details}` : ''}. Nothing was changed.`,
    { data: { ...where, ...ovsdb }, cause: err },
  );
}

// ------------------------------------------------------------------ restore

/** Every key now present but not in the checkpoint, set to null (removed). */
function exactMap(saved: StringMapSpec | undefined, now: StringMapSpec | undefined): StringMapSpec {
  const out: StringMapSpec = { ...saved };
  for (const key of Object.keys(now ?? {})) if (!(key in out)) out[key] = null;
  return out;
}

function exactInterface(saved: OvsInterface, now: OvsInterface | undefined): OvsInterface {
  return {
    name: saved.name,
    type: saved.type ?? 'system',
    options: exactMap(saved.options, now?.options),
    mtu_request: saved.mtu_request ?? null,
    mac: saved.mac ?? null,
    ofport_request: saved.ofport_request ?? null,
    external_ids: exactMap(saved.external_ids, now?.external_ids),
    other_config: exactMap(saved.other_config, now?.other_config),
  };
}

function exactPort(saved: OvsPort, now: OvsPort | undefined): OvsPort {
  const interfaces: OvsInterface[] = (saved.interfaces ?? []).map((i) =>
    exactInterface(
      i,
      now?.interfaces?.find((n) => n.name === i.name),
    ),
  );
  for (const extra of now?.interfaces ?? [])
    if (!interfaces.some((i) => i.name === extra.name))
      interfaces.push({ name: extra.name, state: 'absent' });
  return {
    name: saved.name,
    tag: saved.tag ?? null,
    trunks: saved.trunks ?? [],
    vlan_mode: saved.vlan_mode ?? null,
    bond_mode: saved.bond_mode ?? null,
    lacp: saved.lacp ?? null,
    bond_updelay: saved.bond_updelay ?? 0,
    bond_downdelay: saved.bond_downdelay ?? 0,
    other_config: exactMap(saved.other_config, now?.other_config),
    external_ids: exactMap(saved.external_ids, now?.external_ids),
    interfaces,
  };
}

function exactRemote<T extends OvsController | OvsManager>(saved: T, now: T | undefined): T {
  return {
    target: saved.target,
    connection_mode: saved.connection_mode ?? null,
    max_backoff: saved.max_backoff ?? null,
    inactivity_probe: saved.inactivity_probe ?? null,
    other_config: exactMap(saved.other_config, now?.other_config),
    external_ids: exactMap(saved.external_ids, now?.external_ids),
  } as T;
}

/**
 * The section that puts the checkpointed resources back exactly: every field named (unset
 * ones as null, keys added since as null, controllers and interfaces added since as absent),
 * and, for a bridge that was deleted, all its ports.
 */
export function restoreSection(
  token: {
    bridges: Record<string, OvsBridge | null>;
    ports: Record<string, { bridge: string; port: OvsPort | null }>;
    managers: Record<string, OvsManager | null>;
  },
  current: OvsSection,
): OvsSection {
  const bridges = new Map<string, OvsBridge>();
  const bridgeNow = (name: string): OvsBridge | undefined => current.bridges?.find((b) => b.name === name);
  for (const [name, saved] of Object.entries(token.bridges)) {
    if (saved === null) {
      bridges.set(name, { name, state: 'absent' });
      continue;
    }
    const now = bridgeNow(name);
    const controllers = (saved.controllers ?? []).map((c) =>
      exactRemote(
        c,
        now?.controllers?.find((n) => n.target === c.target),
      ),
    );
    for (const extra of now?.controllers ?? [])
      if (!controllers.some((c) => c.target === extra.target))
        controllers.push({ target: extra.target, state: 'absent' });
    bridges.set(name, {
      name,
      datapath_type: saved.datapath_type ?? 'system',
      fail_mode: saved.fail_mode ?? null,
      stp: saved.stp ?? false,
      protocols: saved.protocols ?? [],
      other_config: exactMap(saved.other_config, now?.other_config),
      external_ids: exactMap(saved.external_ids, now?.external_ids),
      controllers,
      // A bridge that is gone comes back with all its ports.
      ports: now === undefined ? (saved.ports ?? []).map((p) => exactPort(p, undefined)) : [],
    });
  }
  for (const [key, { bridge, port }] of Object.entries(token.ports)) {
    let entry = bridges.get(bridge);
    if (entry === undefined) {
      entry = { name: bridge, ports: [] };
      bridges.set(bridge, entry);
    }
    if (entry.state === 'absent') continue;
    const ports = (entry.ports ??= []);
    const name = key.slice(bridge.length + 1);
    if (ports.some((p) => p.name === name)) continue;
    const now = bridgeNow(bridge)?.ports?.find((p) => p.name === name);
    ports.push(port === null ? { name, state: 'absent' } : exactPort(port, now));
  }
  const managers = Object.entries(token.managers).map(([target, saved]) =>
    saved === null
      ? { target, state: 'absent' as const }
      : exactRemote(
          saved,
          current.managers?.find((m) => m.target === target),
        ),
  );
  const out: OvsSection = {};
  if (bridges.size > 0) out.bridges = [...bridges.values()];
  if (managers.length > 0) out.managers = managers;
  return out;
}

// ------------------------------------------------------------------ watch

/** Watch events for the row changes of one monitor update: one per resource of the section. */
function watchEvents(
  replica: OvsReplica,
  changes: readonly RowChange<OpenVSwitchTables[keyof OpenVSwitchTables]>[],
): WatchEvent[] {
  const seen = new Map<string, WatchEvent>();
  const add = (
    resource: string,
    detail: string,
    raw: { table: string; uuid: string; kind: string },
  ): void => {
    if (!seen.has(resource)) seen.set(resource, { plugin: 'ovs', resource, detail, raw });
  };
  for (const change of changes) {
    const row = (change.new ?? change.old) as { name?: string; target?: string } | undefined;
    const raw = { table: change.table, uuid: change.uuid, kind: change.kind };
    const what = `${change.table} ${row?.name ?? row?.target ?? change.uuid} ${change.kind === 'insert' ? 'created' : change.kind === 'delete' ? 'deleted' : 'changed'}`;
    switch (change.table) {
      case 'Bridge':
        add(bridgeResource(String(row?.name)), what, raw);
        break;
      case 'Port': {
        const bridge = bridgeOfPort(replica, change.uuid);
        add(
          bridge === undefined ? `port/${String(row?.name)}` : portResource(bridge.name, String(row?.name)),
          what,
          raw,
        );
        break;
      }
      case 'Interface': {
        const port = replica.rows('Port').find((p) => p.interfaces.includes(change.uuid));
        const bridge = port === undefined ? undefined : bridgeOfPort(replica, port._uuid);
        add(
          port === undefined || bridge === undefined
            ? `interface/${String(row?.name)}`
            : portResource(bridge.name, port.name),
          what,
          raw,
        );
        break;
      }
      case 'Controller': {
        const bridge = bridgeRows(replica).find((b) => b.controller.includes(change.uuid));
        add(
          bridge === undefined ? `controller/${String(row?.target)}` : bridgeResource(bridge.name),
          what,
          raw,
        );
        break;
      }
      case 'Manager':
        add(managerResource(String(row?.target)), what, raw);
        break;
      default:
        // Open_vSwitch: bridges and managers come and go as their own rows; cur_cfg is bookkeeping.
        break;
    }
  }
  return [...seen.values()];
}

/** The ovs plugin with default options. */
export const ovsPlugin: OvsPlugin = createOvsPlugin();
