// The pure part of the plugin: the changes that take the observed section to the desired one.
import type { Change, ChangeSpec } from '@opdbus/core';
import {
  bridgeDeltas,
  bridgeResource,
  formatDeltas,
  managerResource,
  portDeltas,
  portResource,
  remoteDeltas,
} from './model.js';
import type { OvsBridge, OvsManager, OvsPort, OvsSection } from './schema.js';

/** A JSON copy without `undefined` members (change payloads are hashed as canonical JSON). */
export function toJson<V>(value: V): V {
  return JSON.parse(JSON.stringify(value ?? null)) as V;
}

/** The bridge's own part (what the `bridge/NAME` resource covers): everything but its ports. */
export function bridgeOwn(bridge: OvsBridge): Omit<OvsBridge, 'ports'> {
  const { ports: _ports, ...own } = bridge;
  return own;
}

const isPresent = (x: { state?: 'present' | 'absent' | undefined } | undefined): x is { state?: 'present' } =>
  x !== undefined && x.state !== 'absent';

/** What a change to a new bridge carries besides the bridge: whether to add its local port. */
export interface BridgeCreateExtras {
  /** Create the local internal port named like the bridge (as ovs-vsctl add-br does). */
  $localPort?: boolean;
}

/** A bridge's own part: what a `bridge/NAME` change carries (a new bridge: with {@link BridgeCreateExtras}). */
export type OvsBridgeOwn = Omit<OvsBridge, 'ports'> & BridgeCreateExtras;

/** The values of the ovs plugin's changes: a bridge's own part, a port, or a manager (as the resource says). */
export type OvsValue = OvsBridgeOwn | OvsPort | OvsManager;

/** A change of the ovs plugin. */
export type OvsChange = Change<OvsValue>;

/**
 * The changes, in dependency order: each bridge (create / update / delete), then its ports
 * (which depend on it); then managers. Only what `desired` names is compared; nothing it does
 * not name is removed. A bridge that is to be absent takes its ports with it.
 */
export function diffSection(desired: OvsSection, observed: OvsSection): ChangeSpec<OvsValue>[] {
  const changes: ChangeSpec<OvsValue>[] = [];
  for (const want of desired.bridges ?? []) {
    const have = observed.bridges?.find((b) => b.name === want.name);
    const resource = bridgeResource(want.name);
    const before = isPresent(have) ? toJson(scopedBridge(have, want)) : null;
    if (!isPresent(want)) {
      if (isPresent(have))
        changes.push({
          resource,
          op: 'delete',
          before,
          after: null,
          summary: `delete bridge ${want.name} and its ports`,
        });
      continue;
    }
    const deltas = bridgeDeltas(want, have);
    if (!isPresent(have)) {
      const extras: BridgeCreateExtras = {
        $localPort: !(want.ports ?? []).some((p) => p.name === want.name),
      };
      changes.push({
        resource,
        op: 'create',
        before: null,
        after: toJson({ ...bridgeOwn(want), ...extras }),
        summary: `create bridge ${want.name}${want.datapath_type === undefined ? '' : ` (datapath_type ${want.datapath_type})`}`,
      });
    } else if (deltas.length > 0) {
      changes.push({
        resource,
        op: 'update',
        before,
        after: toJson(bridgeOwn(want)),
        summary: `update bridge ${want.name}: ${formatDeltas(deltas)}`,
      });
    }
    for (const port of want.ports ?? []) {
      const change = diffPort(
        want.name,
        port,
        have?.ports?.find((p) => p.name === port.name),
      );
      if (change !== undefined) changes.push(change);
    }
  }
  for (const want of desired.managers ?? []) {
    const change = diffManager(
      want,
      observed.managers?.find((m) => m.target === want.target),
    );
    if (change !== undefined) changes.push(change);
  }
  return changes;
}

/** The observed bridge as the change's `before`: its own part, controllers limited to those named. */
function scopedBridge(have: OvsBridge, want: OvsBridge): Omit<OvsBridge, 'ports'> {
  const own = bridgeOwn(have);
  if (want.controllers === undefined) {
    const { controllers: _c, ...rest } = own;
    return rest;
  }
  return {
    ...own,
    controllers: want.controllers.map(
      (c) =>
        have.controllers?.find((h) => h.target === c.target) ?? {
          target: c.target,
          state: 'absent' as const,
        },
    ),
  };
}

function diffPort(
  bridge: string,
  want: OvsPort,
  have: OvsPort | undefined,
): ChangeSpec<OvsValue> | undefined {
  const resource = portResource(bridge, want.name);
  const dependsOn = [bridgeResource(bridge)];
  const before = isPresent(have) ? toJson(have) : null;
  if (!isPresent(want)) {
    if (!isPresent(have)) return undefined;
    return {
      resource,
      op: 'delete',
      before,
      after: null,
      dependsOn,
      summary: `delete port ${want.name} from bridge ${bridge}`,
    };
  }
  if (!isPresent(have)) {
    const interfaces = (want.interfaces ?? [{ name: want.name }])
      .filter((i) => i.state !== 'absent')
      .map((i) => `${i.name}${i.type === undefined ? '' : ` ${i.type}`}`)
      .join(', ');
    return {
      resource,
      op: 'create',
      before: null,
      after: toJson(want),
      dependsOn,
      summary: `create port ${want.name} on bridge ${bridge}${want.tag === undefined || want.tag === null ? '' : ` (tag ${want.tag})`} with interface(s) ${interfaces}`,
    };
  }
  const deltas = portDeltas(want, have);
  if (deltas.length === 0) return undefined;
  return {
    resource,
    op: 'update',
    before,
    after: toJson(want),
    dependsOn,
    summary: `update port ${want.name} on bridge ${bridge}: ${formatDeltas(deltas)}`,
  };
}

function diffManager(want: OvsManager, have: OvsManager | undefined): ChangeSpec<OvsValue> | undefined {
  const resource = managerResource(want.target);
  const before = isPresent(have) ? toJson(have) : null;
  if (!isPresent(want)) {
    if (!isPresent(have)) return undefined;
    return {
      resource,
      op: 'delete',
      before,
      after: null,
      summary: `delete manager ${want.target}`,
      risk: { reason: `removing manager ${want.target} can cut remote management of ovsdb-server` },
    };
  }
  if (!isPresent(have))
    return {
      resource,
      op: 'create',
      before: null,
      after: toJson(want),
      summary: `create manager ${want.target}`,
    };
  const deltas = remoteDeltas(want, have);
  if (deltas.length === 0) return undefined;
  return {
    resource,
    op: 'update',
    before,
    after: toJson(want),
    summary: `update manager ${want.target}: ${formatDeltas(deltas)}`,
  };
}
