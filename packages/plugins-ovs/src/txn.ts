// Turning a batch of changes into ONE OVSDB transaction: optimistic-concurrency guards first
// (`wait` on every existing row the batch touches, with the values op-dbus read, and on the
// absence of every name it creates), then the writes, then the ovs-vswitchd handshake.
import { OpdbusError, canonicalJson } from '@opdbus/core';
import type { Mutation, Operation, ReplicaRow } from '@opdbus/ovsdb';
import type { Bridge, Controller, Interface, Manager, OpenVSwitchTables, Port } from '@opdbus/ovsdb/vswitch';
import { bridgeOwn, toJson, type BridgeCreateExtras, type OvsChange } from './diff.js';
import {
  bridgeDeltas,
  bridgeRows,
  interfaceOptions,
  managerRows,
  observeBridge,
  observeManager,
  observePort,
  ovsdbName,
  portDeltas,
  remoteDeltas,
  replicatedColumns,
  type OvsReplica,
} from './model.js';
import type { OvsBridge, OvsController, OvsInterface, OvsManager, OvsPort, StringMapSpec } from './schema.js';

type Op = Operation<OpenVSwitchTables>;
type GuardedTable = 'Bridge' | 'Port' | 'Interface' | 'Controller' | 'Manager';

/** What a resource path names. */
export type ResourceRef =
  | { kind: 'bridge'; bridge: string }
  | { kind: 'port'; bridge: string; port: string }
  | { kind: 'manager'; target: string };

/** Parse `bridge/B`, `bridge/B/port/P`, `manager/T`. */
export function parseResource(resource: string): ResourceRef {
  if (resource.startsWith('manager/')) return { kind: 'manager', target: resource.slice('manager/'.length) };
  const port = /^bridge\/([^/]+)\/port\/([^/]+)$/.exec(resource);
  if (port !== null) return { kind: 'port', bridge: port[1]!, port: port[2]! };
  const bridge = /^bridge\/([^/]+)$/.exec(resource);
  if (bridge !== null) return { kind: 'bridge', bridge: bridge[1]! };
  throw new OpdbusError(
    'OPDBUS_ERR_OVS_INVALID',
    `Unknown ovs resource ${JSON.stringify(resource)}; this is a bug in the plan.`,
    {
      data: { resource },
    },
  );
}

/** The values of a string map spec that set keys (null removes). */
function setKeys(spec: StringMapSpec | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec ?? {})) if (value !== null) out[key] = String(value);
  return out;
}

/** Mutations that bring the named keys of a map column to what the spec says. */
function mapMutations<R>(
  column: keyof R & string,
  spec: StringMapSpec | undefined,
  current: ReadonlyMap<string, string>,
): Mutation<R>[] {
  if (spec === undefined) return [];
  const remove: string[] = [];
  const add: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec)) {
    const have = current.get(key);
    if (value === null) {
      if (have !== undefined) remove.push(key);
      continue;
    }
    const want = String(value);
    if (have === want) continue;
    if (have !== undefined) remove.push(key);
    add[key] = want;
  }
  const out: Mutation<R>[] = [];
  if (remove.length > 0) out.push([column, 'delete', remove]);
  if (Object.keys(add).length > 0) out.push([column, 'insert', add]);
  return out;
}

const present = (x: { state?: 'present' | 'absent' | undefined } | null | undefined): boolean =>
  x !== null && x !== undefined && x.state !== 'absent';

/** The current state of a change's resource, in the same form as the plan's `before`. */
export function currentState(
  replica: OvsReplica,
  change: Pick<OvsChange, 'resource' | 'before' | 'after'>,
): unknown {
  const ref = parseResource(change.resource);
  switch (ref.kind) {
    case 'bridge': {
      const row = bridgeRows(replica).find((b) => b.name === ref.bridge);
      if (row === undefined) return null;
      const scope = ((change.after ?? change.before) as OvsBridge | null)?.controllers?.map((c) => c.target);
      const own = bridgeOwn(observeBridge(replica, row, scope === undefined ? {} : { controllers: scope }));
      if (scope === undefined) delete own.controllers;
      return toJson(own);
    }
    case 'port': {
      const row = portRow(replica, ref.bridge, ref.port);
      return row === undefined ? null : toJson(observePort(replica, row));
    }
    case 'manager': {
      const row = managerRows(replica).find((m) => m.target === ref.target);
      return row === undefined ? null : toJson(observeManager(row));
    }
  }
}

/** The port row named `port` on bridge `bridge`. */
function portRow(replica: OvsReplica, bridge: string, port: string): ReplicaRow<Port> | undefined {
  const bridgeRow = bridgeRows(replica).find((b) => b.name === bridge);
  const row = replica.lookup('Port', 'name', port);
  return row !== undefined && bridgeRow?.ports.includes(row._uuid) === true ? row : undefined;
}

/** Whether the current state already is what the change wants (then it has nothing to do). */
function alreadyDone(change: OvsChange, current: unknown): boolean {
  if (change.after === null) return current === null;
  if (current === null) return false;
  const ref = parseResource(change.resource);
  if (ref.kind === 'bridge')
    return bridgeDeltas(change.after as OvsBridge, current as OvsBridge).length === 0;
  if (ref.kind === 'port') return portDeltas(change.after as OvsPort, current as OvsPort).length === 0;
  return remoteDeltas(change.after as OvsManager, current as OvsManager).length === 0;
}

/** A batch turned into operations, with who asked for each. */
export interface BuiltTransaction {
  operations: Op[];
  /** The change each operation belongs to (undefined for the bookkeeping ones). */
  owners: (OvsChange | undefined)[];
  /** The changes that had something to do. */
  effective: OvsChange[];
  /** Interfaces created or changed: their `error` is checked once ovs-vswitchd has applied the transaction. */
  interfaces: string[];
  /** Index of the `select` that returns the new next_cfg, when waiting for ovs-vswitchd. */
  nextCfgIndex?: number;
}

/**
 * Build the one transaction that applies `changes` (in plan order) to what the replica shows.
 * A change whose resource already is as wanted is skipped (idempotence); one whose resource no
 * longer is as the plan saw it throws `OPDBUS_ERR_OVS_CONFLICT`.
 */
export function buildTransaction(
  replica: OvsReplica,
  changes: readonly OvsChange[],
  options: { lock?: string; waitForVswitchd: boolean; comment: string },
): BuiltTransaction {
  const b = new Builder(replica);
  const effective: OvsChange[] = [];
  for (const change of changes) {
    const current = currentState(replica, change);
    if (alreadyDone(change, current)) continue;
    if (canonicalJson(current ?? null) !== canonicalJson(change.before ?? null)) {
      throw new OpdbusError(
        'OPDBUS_ERR_OVS_CONFLICT',
        `${change.resource} changed since the plan was made (${change.summary}): it was ${canonicalJson(change.before ?? null)}, it is now ${canonicalJson(current ?? null)}. Nothing was changed; run \`opdbus diff\` and apply again.`,
        { data: { changeId: change.id, resource: change.resource } },
      );
    }
    effective.push(change);
    b.owner = change;
    const ref = parseResource(change.resource);
    if (ref.kind === 'bridge') b.bridge(ref.bridge, change);
    else if (ref.kind === 'port') b.port(ref.bridge, ref.port, change);
    else b.manager(ref.target, change);
  }
  b.owner = undefined;
  const operations: Op[] = [];
  const owners: (OvsChange | undefined)[] = [];
  if (options.lock !== undefined) {
    operations.push({ op: 'assert', lock: options.lock });
    owners.push(undefined);
  }
  operations.push(...b.guards);
  owners.push(...b.guardOwners);
  operations.push(...b.writes);
  owners.push(...b.writeOwners);
  let nextCfgIndex: number | undefined;
  if (options.waitForVswitchd && effective.length > 0) {
    operations.push({ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] });
    operations.push({ op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] });
    owners.push(undefined, undefined);
    nextCfgIndex = operations.length - 1;
  }
  operations.push({ op: 'comment', comment: options.comment });
  owners.push(undefined);
  return {
    operations,
    owners,
    effective,
    interfaces: [...b.interfaces],
    ...(nextCfgIndex === undefined ? {} : { nextCfgIndex }),
  };
}

class Builder {
  readonly guards: Op[] = [];
  readonly guardOwners: (OvsChange | undefined)[] = [];
  readonly writes: Op[] = [];
  readonly writeOwners: (OvsChange | undefined)[] = [];
  readonly interfaces = new Set<string>();
  owner: OvsChange | undefined;
  readonly #replica: OvsReplica;
  readonly #guarded = new Set<string>();
  /** Bridges created in this transaction: name → named uuid. */
  readonly #newBridges = new Map<string, string>();
  #names = 0;

  constructor(replica: OvsReplica) {
    this.#replica = replica;
  }

  #name(prefix: string): string {
    return `${prefix}${this.#names++}`;
  }

  #write(op: Op): void {
    this.writes.push(op);
    this.writeOwners.push(this.owner);
  }

  /** Fail unless the row still has the values op-dbus read (every replicated column). */
  #guardRow(table: GuardedTable, row: ReplicaRow<Bridge | Port | Interface | Controller | Manager>): void {
    if (this.#guarded.has(row._uuid)) return;
    this.#guarded.add(row._uuid);
    const columns = (replicatedColumns[table] as readonly string[]).filter((c) => c !== 'error');
    const values: Record<string, unknown> = {};
    for (const column of columns) values[column] = (row as unknown as Record<string, unknown>)[column];
    this.guards.push({
      op: 'wait',
      table,
      where: [['_uuid', '==', row._uuid]],
      columns,
      until: '==',
      rows: [values],
      timeout: 0,
    } as Op);
    this.guardOwners.push(this.owner);
  }

  /** Fail if a row with this name exists (someone created it meanwhile). */
  #guardAbsent(
    table: 'Bridge' | 'Port' | 'Interface' | 'Manager',
    column: 'name' | 'target',
    value: string,
  ): void {
    const key = `${table}:${value}`;
    if (this.#guarded.has(key)) return;
    this.#guarded.add(key);
    this.guards.push({
      op: 'wait',
      table,
      where: [[column, '==', value]],
      columns: [column],
      until: '==',
      rows: [],
      timeout: 0,
    } as Op);
    this.guardOwners.push(this.owner);
  }

  #invalid(message: string, change: OvsChange | undefined): never {
    throw new OpdbusError('OPDBUS_ERR_OVS_INVALID', message, {
      data: { ...(change === undefined ? {} : { changeId: change.id, resource: change.resource }) },
    });
  }

  // ---------------------------------------------------------------- bridges

  bridge(name: string, change: OvsChange): void {
    const row = bridgeRows(this.#replica).find((b) => b.name === name);
    if (change.after === null) {
      if (row === undefined) return;
      this.#guardRow('Bridge', row);
      this.#write({
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['bridges', 'delete', [row._uuid]]],
      });
      return;
    }
    const want = change.after as OvsBridge & BridgeCreateExtras;
    if (row === undefined) {
      this.#guardAbsent('Bridge', 'name', name);
      const uuidName = this.#name('bridge');
      this.#newBridges.set(name, uuidName);
      const ports: string[] = [];
      if (want.$localPort === true)
        ports.push(this.#createPort({ name, interfaces: [{ name, type: 'internal' }] }));
      const controllers = (want.controllers ?? [])
        .filter(present)
        .map((c) => this.#createRemote('Controller', c));
      this.#write({
        op: 'insert',
        table: 'Bridge',
        uuidName,
        row: {
          name,
          ...(want.datapath_type === undefined ? {} : { datapath_type: ovsdbName(want.datapath_type) }),
          ...(want.fail_mode === undefined ? {} : { fail_mode: want.fail_mode }),
          ...(want.stp === undefined ? {} : { stp_enable: want.stp }),
          ...(want.protocols === undefined ? {} : { protocols: [...new Set(want.protocols)] }),
          other_config: setKeys(want.other_config),
          external_ids: setKeys(want.external_ids),
          controller: controllers,
          ports,
        },
      });
      this.#write({
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['bridges', 'insert', [uuidName]]],
      });
      return;
    }
    this.#guardRow('Bridge', row);
    const update: Record<string, unknown> = {};
    if (want.datapath_type !== undefined && ovsdbName(want.datapath_type) !== row.datapath_type)
      update.datapath_type = ovsdbName(want.datapath_type);
    if (want.fail_mode !== undefined && want.fail_mode !== row.fail_mode) update.fail_mode = want.fail_mode;
    if (want.stp !== undefined && want.stp !== row.stp_enable) update.stp_enable = want.stp;
    if (want.protocols !== undefined) update.protocols = [...new Set(want.protocols)];
    if (Object.keys(update).length > 0)
      this.#write({ op: 'update', table: 'Bridge', where: [['_uuid', '==', row._uuid]], row: update });
    const mutations: Mutation<Bridge>[] = [
      ...mapMutations<Bridge>('other_config', want.other_config, row.other_config),
      ...mapMutations<Bridge>('external_ids', want.external_ids, row.external_ids),
    ];
    for (const controller of want.controllers ?? []) {
      const existing = row.controller
        .map((uuid) => this.#replica.get('Controller', uuid))
        .find((c) => c?.target === controller.target);
      if (!present(controller)) {
        if (existing !== undefined) mutations.push(['controller', 'delete', [existing._uuid]]);
      } else if (existing === undefined) {
        mutations.push(['controller', 'insert', [this.#createRemote('Controller', controller)]]);
      } else {
        this.#updateRemote('Controller', existing, controller);
      }
    }
    if (mutations.length > 0)
      this.#write({ op: 'mutate', table: 'Bridge', where: [['_uuid', '==', row._uuid]], mutations });
  }

  /** Insert a controller or manager row; returns its named uuid. */
  #createRemote(table: 'Controller' | 'Manager', want: OvsController | OvsManager): string {
    const uuidName = this.#name(table.toLowerCase());
    this.#write({
      op: 'insert',
      table,
      uuidName,
      row: {
        target: want.target,
        ...(want.connection_mode === undefined ? {} : { connection_mode: want.connection_mode }),
        ...(want.max_backoff === undefined ? {} : { max_backoff: want.max_backoff }),
        ...(want.inactivity_probe === undefined ? {} : { inactivity_probe: want.inactivity_probe }),
        other_config: setKeys(want.other_config),
        external_ids: setKeys(want.external_ids),
      },
    });
    return uuidName;
  }

  #updateRemote(
    table: 'Controller' | 'Manager',
    row: ReplicaRow<Controller | Manager>,
    want: OvsController | OvsManager,
  ): void {
    this.#guardRow(table, row);
    const update: Record<string, unknown> = {};
    if (want.connection_mode !== undefined && want.connection_mode !== row.connection_mode)
      update.connection_mode = want.connection_mode;
    if (want.max_backoff !== undefined && want.max_backoff !== row.max_backoff)
      update.max_backoff = want.max_backoff;
    if (want.inactivity_probe !== undefined && want.inactivity_probe !== row.inactivity_probe)
      update.inactivity_probe = want.inactivity_probe;
    if (Object.keys(update).length > 0)
      this.#write({ op: 'update', table, where: [['_uuid', '==', row._uuid]], row: update });
    const mutations = [
      ...mapMutations<Controller>('other_config', want.other_config, row.other_config),
      ...mapMutations<Controller>('external_ids', want.external_ids, row.external_ids),
    ];
    if (mutations.length > 0)
      this.#write({ op: 'mutate', table, where: [['_uuid', '==', row._uuid]], mutations } as Op);
  }

  // ---------------------------------------------------------------- ports

  /** Insert a port with its interfaces (guarding that none of the names exist); returns its named uuid. */
  #createPort(want: OvsPort): string {
    this.#guardAbsent('Port', 'name', want.name);
    const interfaces = (want.interfaces ?? [{ name: want.name }])
      .filter(present)
      .map((i) => this.#createInterface(i));
    if (interfaces.length === 0)
      this.#invalid(
        `Port ${want.name} would have no interface; a port needs at least one (name one that is not absent).`,
        this.owner,
      );
    const uuidName = this.#name('port');
    this.#write({
      op: 'insert',
      table: 'Port',
      uuidName,
      row: {
        name: want.name,
        interfaces,
        ...(want.tag === undefined ? {} : { tag: want.tag }),
        ...(want.trunks === undefined ? {} : { trunks: [...new Set(want.trunks)] }),
        ...(want.vlan_mode === undefined ? {} : { vlan_mode: want.vlan_mode }),
        ...(want.bond_mode === undefined ? {} : { bond_mode: want.bond_mode }),
        ...(want.lacp === undefined ? {} : { lacp: want.lacp }),
        ...(want.bond_updelay === undefined ? {} : { bond_updelay: want.bond_updelay }),
        ...(want.bond_downdelay === undefined ? {} : { bond_downdelay: want.bond_downdelay }),
        other_config: setKeys(want.other_config),
        external_ids: setKeys(want.external_ids),
      },
    });
    return uuidName;
  }

  #createInterface(want: OvsInterface): string {
    this.#guardAbsent('Interface', 'name', want.name);
    const existing = this.#replica.lookup('Interface', 'name', want.name);
    if (existing !== undefined)
      this.#invalid(
        `Interface ${want.name} already exists in another port; interface names are unique. Remove it there first.`,
        this.owner,
      );
    this.interfaces.add(want.name);
    const uuidName = this.#name('iface');
    this.#write({
      op: 'insert',
      table: 'Interface',
      uuidName,
      row: {
        name: want.name,
        ...(want.type === undefined ? {} : { type: ovsdbName(want.type) }),
        options: setKeys(interfaceOptions(want)),
        ...(want.mtu_request === undefined ? {} : { mtu_request: want.mtu_request }),
        ...(want.mac === undefined ? {} : { mac: want.mac }),
        ...(want.ofport_request === undefined ? {} : { ofport_request: want.ofport_request }),
        other_config: setKeys(want.other_config),
        external_ids: setKeys(want.external_ids),
      },
    });
    return uuidName;
  }

  #updateInterface(row: ReplicaRow<Interface>, want: OvsInterface): void {
    this.#guardRow('Interface', row);
    const update: Record<string, unknown> = {};
    if (want.type !== undefined && ovsdbName(want.type) !== row.type) update.type = ovsdbName(want.type);
    if (want.mtu_request !== undefined && want.mtu_request !== row.mtu_request)
      update.mtu_request = want.mtu_request;
    if (want.mac !== undefined && want.mac?.toLowerCase() !== row.mac?.toLowerCase()) update.mac = want.mac;
    if (want.ofport_request !== undefined && want.ofport_request !== row.ofport_request)
      update.ofport_request = want.ofport_request;
    const mutations = [
      ...mapMutations<Interface>('options', interfaceOptions(want), row.options),
      ...mapMutations<Interface>('other_config', want.other_config, row.other_config),
      ...mapMutations<Interface>('external_ids', want.external_ids, row.external_ids),
    ];
    if (Object.keys(update).length > 0 || mutations.length > 0) this.interfaces.add(row.name);
    if (Object.keys(update).length > 0)
      this.#write({ op: 'update', table: 'Interface', where: [['_uuid', '==', row._uuid]], row: update });
    if (mutations.length > 0)
      this.#write({ op: 'mutate', table: 'Interface', where: [['_uuid', '==', row._uuid]], mutations });
  }

  port(bridge: string, name: string, change: OvsChange): void {
    const bridgeRow = bridgeRows(this.#replica).find((b) => b.name === bridge);
    const existing = this.#replica.lookup('Port', 'name', name);
    const onBridge =
      existing !== undefined && bridgeRow?.ports.includes(existing._uuid) === true ? existing : undefined;
    if (change.after === null) {
      if (onBridge === undefined || bridgeRow === undefined) return;
      this.#guardRow('Port', onBridge);
      this.#write({
        op: 'mutate',
        table: 'Bridge',
        where: [['_uuid', '==', bridgeRow._uuid]],
        mutations: [['ports', 'delete', [onBridge._uuid]]],
      });
      return;
    }
    const want = change.after as OvsPort;
    if (onBridge === undefined) {
      if (existing !== undefined) {
        const other =
          bridgeRows(this.#replica).find((b) => b.ports.includes(existing._uuid))?.name ?? '(none)';
        this.#invalid(
          `Port ${name} already exists on bridge ${other}; port names are unique across bridges. Name it under bridge ${other}, or remove it there first (state: absent).`,
          change,
        );
      }
      const bridgeRef = this.#newBridges.get(bridge) ?? bridgeRow?._uuid;
      if (bridgeRef === undefined)
        this.#invalid(
          `Bridge ${bridge} does not exist; add it to the document (bridges: - name: ${bridge}).`,
          change,
        );
      const port = this.#createPort(want);
      this.#write({
        op: 'mutate',
        table: 'Bridge',
        where: [['_uuid', '==', bridgeRef]],
        mutations: [['ports', 'insert', [port]]],
      });
      return;
    }
    this.#guardRow('Port', onBridge);
    const update: Record<string, unknown> = {};
    if (want.tag !== undefined && want.tag !== onBridge.tag) update.tag = want.tag;
    if (want.trunks !== undefined) update.trunks = [...new Set(want.trunks)];
    if (want.vlan_mode !== undefined && want.vlan_mode !== onBridge.vlan_mode)
      update.vlan_mode = want.vlan_mode;
    if (want.bond_mode !== undefined && want.bond_mode !== onBridge.bond_mode)
      update.bond_mode = want.bond_mode;
    if (want.lacp !== undefined && want.lacp !== onBridge.lacp) update.lacp = want.lacp;
    if (want.bond_updelay !== undefined && want.bond_updelay !== onBridge.bond_updelay)
      update.bond_updelay = want.bond_updelay;
    if (want.bond_downdelay !== undefined && want.bond_downdelay !== onBridge.bond_downdelay)
      update.bond_downdelay = want.bond_downdelay;
    if (Object.keys(update).length > 0)
      this.#write({ op: 'update', table: 'Port', where: [['_uuid', '==', onBridge._uuid]], row: update });
    const mutations: Mutation<Port>[] = [
      ...mapMutations<Port>('other_config', want.other_config, onBridge.other_config),
      ...mapMutations<Port>('external_ids', want.external_ids, onBridge.external_ids),
    ];
    const current = onBridge.interfaces
      .map((uuid) => this.#replica.get('Interface', uuid))
      .filter((i): i is ReplicaRow<Interface> => i !== undefined);
    let remaining = current.length;
    for (const iface of want.interfaces ?? []) {
      const row = current.find((i) => i.name === iface.name);
      if (!present(iface)) {
        if (row !== undefined) {
          this.#guardRow('Interface', row);
          mutations.push(['interfaces', 'delete', [row._uuid]]);
          remaining--;
        }
      } else if (row === undefined) {
        mutations.push(['interfaces', 'insert', [this.#createInterface(iface)]]);
        remaining++;
      } else {
        this.#updateInterface(row, iface);
      }
    }
    if (remaining === 0)
      this.#invalid(
        `Port ${name} would have no interface left; a port needs at least one. Delete the port instead (state: absent).`,
        change,
      );
    if (mutations.length > 0)
      this.#write({ op: 'mutate', table: 'Port', where: [['_uuid', '==', onBridge._uuid]], mutations });
  }

  // ---------------------------------------------------------------- managers

  manager(target: string, change: OvsChange): void {
    const row: ReplicaRow<Manager> | undefined = managerRows(this.#replica).find((m) => m.target === target);
    if (change.after === null) {
      if (row === undefined) return;
      this.#guardRow('Manager', row);
      this.#write({
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['manager_options', 'delete', [row._uuid]]],
      });
      return;
    }
    const want = change.after as OvsManager;
    if (row === undefined) {
      this.#guardAbsent('Manager', 'target', target);
      const uuidName = this.#createRemote('Manager', want);
      this.#write({
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['manager_options', 'insert', [uuidName]]],
      });
      return;
    }
    this.#updateRemote('Manager', row, want);
  }
}
