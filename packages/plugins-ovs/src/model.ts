// The ovs section's view of the OVSDB rows: observed resources normalised to the document's
// shape, and the comparison of a desired resource with an observed one (only what the desired
// one names is compared).
import type { Atom, Replica, ReplicaRow } from '@opdbus/ovsdb';
import type { Bridge, Controller, Interface, Manager, OpenVSwitchTables, Port } from '@opdbus/ovsdb/vswitch';
import type {
  OvsBridge,
  OvsController,
  OvsInterface,
  OvsManager,
  OvsPort,
  OvsSection,
  StringMapSpec,
} from './schema.js';

/** The columns the plugin replicates, per table (also the columns its `wait` guards compare). */
export const replicatedColumns = {
  Open_vSwitch: ['bridges', 'manager_options', 'next_cfg', 'cur_cfg', 'iface_types', 'ovs_version'],
  Bridge: [
    'name',
    'datapath_type',
    'fail_mode',
    'stp_enable',
    'protocols',
    'other_config',
    'external_ids',
    'ports',
    'controller',
  ],
  Port: [
    'name',
    'interfaces',
    'tag',
    'trunks',
    'vlan_mode',
    'bond_mode',
    'lacp',
    'bond_updelay',
    'bond_downdelay',
    'other_config',
    'external_ids',
  ],
  Interface: [
    'name',
    'type',
    'options',
    'mtu_request',
    'mac',
    'ofport_request',
    'external_ids',
    'other_config',
    'error',
  ],
  Controller: [
    'target',
    'connection_mode',
    'max_backoff',
    'inactivity_probe',
    'other_config',
    'external_ids',
  ],
  Manager: ['target', 'connection_mode', 'max_backoff', 'inactivity_probe', 'other_config', 'external_ids'],
} as const satisfies { [T in keyof OpenVSwitchTables]?: readonly (keyof OpenVSwitchTables[T] & string)[] };

/** The tables the plugin replicates. */
export type OvsReplica = Replica<OpenVSwitchTables>;

/** `""` is how OVSDB spells the default type/datapath; the document says `system`. */
export const systemName = (value: string): string => (value === '' ? 'system' : value);
/** The OVSDB spelling of a document type/datapath. */
export const ovsdbName = (value: string): string => (value === 'system' ? '' : value);

function mapObject(map: ReadonlyMap<Atom, Atom>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...map.keys()].map(String).sort()) out[key] = String(map.get(key));
  return out;
}

/** The resource path of a bridge in plans: `bridge/NAME`. */
export const bridgeResource = (bridge: string): string => `bridge/${bridge}`;
/** The resource path of a port (with its interfaces): `bridge/BRIDGE/port/NAME`. */
export const portResource = (bridge: string, port: string): string => `bridge/${bridge}/port/${port}`;
/** The resource path of a manager: `manager/TARGET`. */
export const managerResource = (target: string): string => `manager/${target}`;

// ------------------------------------------------------------------ observing

/** An interface row as the document shows it. */
export function observeInterface(row: ReplicaRow<Interface>): OvsInterface {
  const out: OvsInterface = { name: row.name, type: systemName(row.type) };
  if (row.options.size > 0) out.options = mapObject(row.options);
  if (row.mtu_request !== null) out.mtu_request = row.mtu_request;
  if (row.mac !== null) out.mac = row.mac;
  if (row.ofport_request !== null) out.ofport_request = row.ofport_request;
  if (row.external_ids.size > 0) out.external_ids = mapObject(row.external_ids);
  if (row.other_config.size > 0) out.other_config = mapObject(row.other_config);
  return out;
}

/** A port row (with its interfaces) as the document shows it. */
export function observePort(replica: OvsReplica, row: ReplicaRow<Port>): OvsPort {
  const out: OvsPort = { name: row.name };
  if (row.tag !== null) out.tag = row.tag;
  if (row.trunks.length > 0) out.trunks = [...row.trunks].sort((a, b) => a - b);
  if (row.vlan_mode !== null) out.vlan_mode = row.vlan_mode;
  if (row.bond_mode !== null) out.bond_mode = row.bond_mode;
  if (row.lacp !== null) out.lacp = row.lacp;
  if (row.bond_updelay !== 0) out.bond_updelay = row.bond_updelay;
  if (row.bond_downdelay !== 0) out.bond_downdelay = row.bond_downdelay;
  if (row.other_config.size > 0) out.other_config = mapObject(row.other_config);
  if (row.external_ids.size > 0) out.external_ids = mapObject(row.external_ids);
  out.interfaces = row.interfaces
    .map((uuid) => replica.get('Interface', uuid))
    .filter((i): i is ReplicaRow<Interface> => i !== undefined)
    .map(observeInterface)
    .sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

/** Fields shared by controllers and managers. */
function observeRemote<T extends OvsController | OvsManager>(
  row: ReplicaRow<Controller> | ReplicaRow<Manager>,
): T {
  const out: OvsController = { target: row.target };
  if (row.connection_mode !== null) out.connection_mode = row.connection_mode;
  if (row.max_backoff !== null) out.max_backoff = row.max_backoff;
  if (row.inactivity_probe !== null) out.inactivity_probe = row.inactivity_probe;
  if (row.other_config.size > 0) out.other_config = mapObject(row.other_config);
  if (row.external_ids.size > 0) out.external_ids = mapObject(row.external_ids);
  return out as T;
}

/**
 * A bridge row as the document shows it. `ports` and `controllers` are limited to the names the
 * scope gives (and a named one that does not exist is marked absent); all of them without scope.
 */
export function observeBridge(
  replica: OvsReplica,
  row: ReplicaRow<Bridge>,
  scope?: { ports?: readonly string[]; controllers?: readonly string[] },
): OvsBridge {
  const out: OvsBridge = { name: row.name, datapath_type: systemName(row.datapath_type) };
  if (row.fail_mode !== null) out.fail_mode = row.fail_mode;
  out.stp = row.stp_enable;
  if (row.protocols.length > 0) out.protocols = [...row.protocols].sort();
  if (row.other_config.size > 0) out.other_config = mapObject(row.other_config);
  if (row.external_ids.size > 0) out.external_ids = mapObject(row.external_ids);
  const controllers = row.controller
    .map((uuid) => replica.get('Controller', uuid))
    .filter((c): c is ReplicaRow<Controller> => c !== undefined)
    .map((c) => observeRemote<OvsController>(c))
    .sort((a, b) => a.target.localeCompare(b.target));
  if (scope?.controllers !== undefined) {
    out.controllers = scope.controllers.map(
      (target) => controllers.find((c) => c.target === target) ?? { target, state: 'absent' as const },
    );
  } else if (controllers.length > 0) out.controllers = controllers;
  const ports = row.ports
    .map((uuid) => replica.get('Port', uuid))
    .filter((p): p is ReplicaRow<Port> => p !== undefined);
  if (scope?.ports !== undefined) {
    out.ports = scope.ports.map((name) => {
      const port = ports.find((p) => p.name === name);
      return port === undefined ? { name, state: 'absent' as const } : observePort(replica, port);
    });
  } else {
    out.ports = ports.map((p) => observePort(replica, p)).sort((a, b) => a.name.localeCompare(b.name));
  }
  return out;
}

/** A manager row as the document shows it. */
export function observeManager(row: ReplicaRow<Manager>): OvsManager {
  return observeRemote<OvsManager>(row);
}

/** The root row (Open_vSwitch has exactly one after `ovs-vsctl init`). */
export function rootRow(replica: OvsReplica): ReplicaRow<OpenVSwitchTables['Open_vSwitch']> | undefined {
  return replica.rows('Open_vSwitch')[0];
}

/** The bridges in the database, i.e. those the root row refers to. */
export function bridgeRows(replica: OvsReplica): ReplicaRow<Bridge>[] {
  const root = rootRow(replica);
  if (root === undefined) return [];
  return root.bridges
    .map((uuid) => replica.get('Bridge', uuid))
    .filter((b): b is ReplicaRow<Bridge> => b !== undefined);
}

/** The manager rows the root refers to. */
export function managerRows(replica: OvsReplica): ReplicaRow<Manager>[] {
  const root = rootRow(replica);
  if (root === undefined) return [];
  return root.manager_options
    .map((uuid) => replica.get('Manager', uuid))
    .filter((m): m is ReplicaRow<Manager> => m !== undefined);
}

/** The bridge a port row belongs to. */
export function bridgeOfPort(replica: OvsReplica, portUuid: string): ReplicaRow<Bridge> | undefined {
  return bridgeRows(replica).find((b) => b.ports.includes(portUuid));
}

/** Everything the plugin manages, as a section. */
export function observeAll(replica: OvsReplica): OvsSection {
  const out: OvsSection = {};
  const bridges = bridgeRows(replica)
    .map((row) => observeBridge(replica, row))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (bridges.length > 0) out.bridges = bridges;
  const managers = managerRows(replica)
    .map(observeManager)
    .sort((a, b) => a.target.localeCompare(b.target));
  if (managers.length > 0) out.managers = managers;
  return out;
}

/** Exactly the resources a desired section names, observed; those that do not exist marked absent. */
export function observeScoped(replica: OvsReplica, scope: OvsSection): OvsSection {
  const out: OvsSection = {};
  if (scope.bridges !== undefined) {
    const rows = bridgeRows(replica);
    out.bridges = scope.bridges.map((desired) => {
      const row = rows.find((b) => b.name === desired.name);
      if (row === undefined) return { name: desired.name, state: 'absent' as const };
      return observeBridge(replica, row, {
        ports: (desired.ports ?? []).map((p) => p.name),
        controllers: (desired.controllers ?? []).map((c) => c.target),
      });
    });
  }
  if (scope.managers !== undefined) {
    const rows = managerRows(replica);
    out.managers = scope.managers.map((desired) => {
      const row = rows.find((m) => m.target === desired.target);
      return row === undefined ? { target: desired.target, state: 'absent' as const } : observeManager(row);
    });
  }
  return out;
}

// ------------------------------------------------------------------ comparing

/** A difference between a desired and an observed resource, for people. */
export interface FieldDelta {
  field: string;
  from: unknown;
  to: unknown;
}

const present = (x: { state?: 'present' | 'absent' | undefined } | undefined): boolean =>
  x !== undefined && x.state !== 'absent';

function mapDeltas(
  prefix: string,
  desired: StringMapSpec | undefined,
  observed: StringMapSpec | undefined,
): FieldDelta[] {
  if (desired === undefined) return [];
  const out: FieldDelta[] = [];
  for (const [key, value] of Object.entries(desired)) {
    const raw = observed?.[key];
    const have = raw === null || raw === undefined ? undefined : String(raw);
    const want = value === null ? undefined : String(value);
    if (have !== want) out.push({ field: `${prefix}.${key}`, from: have ?? null, to: want ?? null });
  }
  return out;
}

function scalarDelta(
  field: string,
  desired: unknown,
  observed: unknown,
  fallback: unknown = null,
): FieldDelta[] {
  if (desired === undefined) return [];
  const have = observed === undefined ? fallback : observed;
  return desired === have ? [] : [{ field, from: have, to: desired }];
}

function setDelta(
  field: string,
  desired: readonly (string | number)[] | undefined,
  observed: readonly (string | number)[] | undefined,
): FieldDelta[] {
  if (desired === undefined) return [];
  const want = [...new Set(desired)].sort();
  const have = [...new Set(observed ?? [])].sort();
  return JSON.stringify(want) === JSON.stringify(have) ? [] : [{ field, from: observed ?? [], to: desired }];
}

/** The options an interface asks for, `peer` folded in. */
export function interfaceOptions(desired: OvsInterface): StringMapSpec | undefined {
  if (desired.peer === undefined) return desired.options;
  return { ...desired.options, peer: desired.peer };
}

/** How an interface differs from what is desired (only named fields). */
export function interfaceDeltas(
  desired: OvsInterface,
  observed: OvsInterface | undefined,
  prefix = '',
): FieldDelta[] {
  const p = prefix === '' ? '' : `${prefix}.`;
  if (!present(desired))
    return present(observed) ? [{ field: `${p}state`, from: 'present', to: 'absent' }] : [];
  if (!present(observed)) return [{ field: `${p}state`, from: 'absent', to: 'present' }];
  return [
    ...scalarDelta(`${p}type`, desired.type, observed?.type, 'system'),
    ...mapDeltas(`${p}options`, interfaceOptions(desired), observed?.options),
    ...scalarDelta(`${p}mtu_request`, desired.mtu_request, observed?.mtu_request),
    ...scalarDelta(`${p}mac`, desired.mac?.toLowerCase() ?? desired.mac, observed?.mac?.toLowerCase()),
    ...scalarDelta(`${p}ofport_request`, desired.ofport_request, observed?.ofport_request),
    ...mapDeltas(`${p}external_ids`, desired.external_ids, observed?.external_ids),
    ...mapDeltas(`${p}other_config`, desired.other_config, observed?.other_config),
  ];
}

/** How a port (with its named interfaces) differs from what is desired. */
export function portDeltas(desired: OvsPort, observed: OvsPort | undefined): FieldDelta[] {
  if (!present(desired)) return present(observed) ? [{ field: 'state', from: 'present', to: 'absent' }] : [];
  if (!present(observed)) return [{ field: 'state', from: 'absent', to: 'present' }];
  const out = [
    ...scalarDelta('tag', desired.tag, observed?.tag),
    ...setDelta('trunks', desired.trunks, observed?.trunks),
    ...scalarDelta('vlan_mode', desired.vlan_mode, observed?.vlan_mode),
    ...scalarDelta('bond_mode', desired.bond_mode, observed?.bond_mode),
    ...scalarDelta('lacp', desired.lacp, observed?.lacp),
    ...scalarDelta('bond_updelay', desired.bond_updelay, observed?.bond_updelay, 0),
    ...scalarDelta('bond_downdelay', desired.bond_downdelay, observed?.bond_downdelay, 0),
    ...mapDeltas('other_config', desired.other_config, observed?.other_config),
    ...mapDeltas('external_ids', desired.external_ids, observed?.external_ids),
  ];
  for (const iface of desired.interfaces ?? [])
    out.push(
      ...interfaceDeltas(
        iface,
        observed?.interfaces?.find((i) => i.name === iface.name),
        `interfaces.${iface.name}`,
      ),
    );
  return out;
}

/** How a controller or manager differs from what is desired. */
export function remoteDeltas(
  desired: OvsController | OvsManager,
  observed: OvsController | OvsManager | undefined,
  prefix = '',
): FieldDelta[] {
  const p = prefix === '' ? '' : `${prefix}.`;
  if (!present(desired))
    return present(observed) ? [{ field: `${p}state`, from: 'present', to: 'absent' }] : [];
  if (!present(observed)) return [{ field: `${p}state`, from: 'absent', to: 'present' }];
  return [
    ...scalarDelta(`${p}connection_mode`, desired.connection_mode, observed?.connection_mode),
    ...scalarDelta(`${p}max_backoff`, desired.max_backoff, observed?.max_backoff),
    ...scalarDelta(`${p}inactivity_probe`, desired.inactivity_probe, observed?.inactivity_probe),
    ...mapDeltas(`${p}other_config`, desired.other_config, observed?.other_config),
    ...mapDeltas(`${p}external_ids`, desired.external_ids, observed?.external_ids),
  ];
}

/** How a bridge's own settings and controllers (not its ports) differ from what is desired. */
export function bridgeDeltas(desired: OvsBridge, observed: OvsBridge | undefined): FieldDelta[] {
  if (!present(desired)) return present(observed) ? [{ field: 'state', from: 'present', to: 'absent' }] : [];
  if (!present(observed)) return [{ field: 'state', from: 'absent', to: 'present' }];
  const out = [
    ...scalarDelta(
      'datapath_type',
      desired.datapath_type === undefined ? undefined : systemName(desired.datapath_type),
      observed?.datapath_type,
      'system',
    ),
    ...scalarDelta('fail_mode', desired.fail_mode, observed?.fail_mode),
    ...scalarDelta('stp', desired.stp, observed?.stp, false),
    ...setDelta('protocols', desired.protocols, observed?.protocols),
    ...mapDeltas('other_config', desired.other_config, observed?.other_config),
    ...mapDeltas('external_ids', desired.external_ids, observed?.external_ids),
  ];
  for (const controller of desired.controllers ?? [])
    out.push(
      ...remoteDeltas(
        controller,
        observed?.controllers?.find((c) => c.target === controller.target),
        `controllers.${controller.target}`,
      ),
    );
  return out;
}

/** `from → to` for a summary. */
export function formatDeltas(deltas: readonly FieldDelta[]): string {
  const show = (v: unknown): string =>
    v === null || v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v);
  return deltas.map((d) => `${d.field} ${show(d.from)} → ${show(d.to)}`).join(', ');
}
