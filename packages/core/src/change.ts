import { hashJson, type JsonValue } from './json.js';

/** What a change does to its resource. */
export type ChangeOp = 'create' | 'update' | 'delete';

/** Why a change is dangerous to apply without a safety net. */
export interface ChangeRisk {
  /** Human-readable reason, e.g. "link eth0 carries the default route". */
  reason: string;
}

/**
 * One step of a plan: a plugin's resource moved from `before` to `after`.
 *
 * `resource` is a path unique within the plugin (e.g. `link/br0`, `net.ipv4.ip_forward`);
 * `dependsOn` names resources (`plugin:resource`, or a bare resource of the same plugin) that
 * must be changed first when they are part of the same plan.
 *
 * `V` is the type of the plugin's resource values (see {@link Plugin}'s third parameter): a
 * plugin sees its own changes as `Change<V>`, the engine, journal and ledger hold every plugin's
 * as `Change` (JSON). Values must be JSON (members that are `undefined` are dropped when the
 * change is hashed and journalled; anything else JSON cannot carry is refused by
 * {@link makeChange}).
 */
export interface Change<V = JsonValue> {
  /** Stable content id: the same change computed twice has the same id. */
  id: string;
  plugin: string;
  resource: string;
  op: ChangeOp;
  /** The resource's observed state before, `null` when it does not exist. */
  before: V | null;
  /** The resource's desired state after, `null` when it is removed. */
  after: V | null;
  /**
   * Resource keys (`plugin:resource`, see {@link resourceKey}) this change must follow when they are
   * changed by the same plan. Plugin names never contain `:`, so the first `:` splits the key.
   */
  dependsOn: string[];
  /** Set when the change can cut the management connection or otherwise lock the operator out. */
  risk?: ChangeRisk;
  /** One line for people: `set net.ipv4.ip_forward 0 → 1`. */
  summary: string;
}

/**
 * What a plugin's `diff` returns for each change; the core fills in `id` and `plugin`. `V` is the
 * plugin's resource value type, as in {@link Change}.
 */
export interface ChangeSpec<V = JsonValue> {
  resource: string;
  op: ChangeOp;
  /** The resource's observed state, `null` when it does not exist. */
  before: V | null;
  /** The resource's desired state, `null` when it is to be removed. */
  after: V | null;
  /** Resources to change first: a bare string names one of the same plugin. */
  dependsOn?: ReadonlyArray<string | ResourceRef>;
  risk?: ChangeRisk;
  summary?: string;
}

/** A resource of another plugin. */
export interface ResourceRef {
  plugin: string;
  resource: string;
}

/**
 * Build a {@link Change} with its stable id from a plugin's {@link ChangeSpec}. Throws a
 * `TypeError` naming the path when a value is not JSON (a bigint, a function, a non-finite number).
 */
export function makeChange<V = JsonValue>(plugin: string, spec: ChangeSpec<V>): Change<V> {
  const dependsOn = (spec.dependsOn ?? []).map((dep) =>
    typeof dep === 'string' ? resourceKey({ plugin, resource: dep }) : resourceKey(dep),
  );
  const body = {
    plugin,
    resource: spec.resource,
    op: spec.op,
    before: spec.before,
    after: spec.after,
    dependsOn,
  };
  const change: Change<V> = {
    id: hashJson(body).slice(0, 16),
    ...body,
    summary: spec.summary ?? defaultSummary(spec),
  };
  if (spec.risk !== undefined) change.risk = { reason: spec.risk.reason };
  return change;
}

function defaultSummary(spec: ChangeSpec<unknown>): string {
  switch (spec.op) {
    case 'create':
      return `create ${spec.resource}`;
    case 'delete':
      return `delete ${spec.resource}`;
    case 'update':
      return `update ${spec.resource}`;
  }
}

/** The key of a change's resource across plugins: `plugin:resource`. */
export function resourceKey(change: Pick<Change<unknown>, 'plugin' | 'resource'>): string {
  return `${change.plugin}:${change.resource}`;
}
