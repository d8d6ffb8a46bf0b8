import { z } from 'zod';
import type { Change, ChangeSpec } from './change.js';
import { OpdbusError } from './errors.js';
import { isLazySchema } from './lazySchema.js';
import type { JsonValue } from './json.js';
import type { Logger } from './logger.js';

/**
 * Where op-dbus acts: serialisable, so a transaction journal can record it and a watchdog or a
 * recovery in another process can act on the same target.
 */
export interface TargetSpec {
  /** A network namespace: a name under /run/netns, or a path such as /proc/PID/ns/net. */
  netns?: string;
  /** A D-Bus address, e.g. `unix:path=/run/dbus/system_bus_socket`. */
  busAddress?: string;
  /** An OVSDB address, e.g. `unix:/run/openvswitch/db.sock` or `tcp:127.0.0.1:6640`. */
  ovsdbAddress?: string;
  /**
   * The target's filesystem root as seen from here (default `/`), for plugins that write files
   * the target reads — e.g. a container's root directory when `busAddress` is the container's
   * system bus (as `systemctl --root`).
   */
  root?: string;
}

/**
 * Runs synchronous code inside a network namespace. Sockets opened and /proc/sys/net files
 * opened inside `run` stay bound to that namespace after it returns.
 */
export interface NetnsRunner {
  /** The name or path it was opened from. */
  readonly name: string;
  /** The namespace file, e.g. /run/netns/NAME. */
  readonly path: string;
  /** Run `fn` with the calling thread inside the namespace; returns to the original one after. */
  run<T>(fn: () => T): T;
}

/** What every plugin operation receives. */
export interface PluginContext {
  /** The serialisable target (recorded in journals). */
  readonly target: TargetSpec;
  /** Set when the target is a network namespace other than the caller's. */
  readonly netns: NetnsRunner | undefined;
  /** A child logger carrying `{ plugin }` (and `{ txId }` inside a transaction). */
  readonly logger: Logger;
  /** The op-dbus state directory. */
  readonly stateDir: string;
  /** Aborted when the caller gives up (daemon shutdown, CLI interrupted). */
  readonly signal: AbortSignal | undefined;
}

/** Result of a plugin's probe. */
export type ProbeResult = { available: true; detail?: string } | { available: false; reason: string };

/** Options of a plugin's `query`. */
export interface QueryOptions<D> {
  /**
   * When set, return exactly the resources this desired section names, each with its observed
   * state, and resources it names that do not exist marked the way the schema says "absent".
   * When unset, return everything the plugin can see.
   */
  scope?: D;
  /**
   * Without a scope: also return what a document cannot or should not set (read-only values,
   * values that change on their own). By default a query returns only what a document can
   * declare, so that `query` fed back to `diff` shows no change.
   */
  all?: boolean;
}

/** One event from a plugin's native event stream. */
export interface WatchEvent {
  plugin: string;
  /** The resource it concerns, when known. */
  resource?: string;
  /** What happened, for people. */
  detail?: string;
  /** The native event, for machines. */
  raw?: JsonValue;
}

/** A function that ends a subscription. */
export type Unsubscribe = () => void | Promise<void>;

/**
 * The contract every plugin implements: a plain typed object, checked at registration.
 *
 * `D` is the plugin's section of the state document (the desired state) and also the shape its
 * `query` returns (the observed state, normalised); `T` is its checkpoint token, which must be
 * JSON-serialisable so that journals can hold it and another process can restore from it; `V` is the type of
 * its changes' `before` / `after` values (usually a union of its resource kinds, e.g.
 * `LinkSpec | AddressSpec`), so that `apply` and `checkpoint` read them without casts. `V` must
 * be JSON-serialisable (objects, arrays, strings, numbers, booleans, null; `undefined` members
 * are dropped): the engine journals every plugin's changes as JSON. `F` is what its optional
 * `facts` returns for `diff` (see {@link Plugin.facts}).
 *
 * @example
 * ```ts
 * type MotdValue = { text: string };
 * const motd: Plugin<MotdSection, JsonValue, MotdValue> = {
 *   // ...
 *   async apply(change) {
 *     if (change.after !== null) await writeFile(path, change.after.text); // typed, no cast
 *   },
 * };
 * ```
 */
export interface Plugin<D = unknown, T = JsonValue, V = JsonValue, F = unknown> {
  /** Section name in the state document: lowercase letters, digits and dashes. */
  readonly name: string;
  /** The plugin's own version (semver). */
  readonly version: string;
  /** One line for `opdbus schema` and the docs. */
  readonly description: string;
  /** zod schema of the section; strict (unknown fields are errors). */
  readonly schema: z.ZodType<D>;
  /** Whether the plugin can work here, and if not, why. */
  probe(ctx: PluginContext): Promise<ProbeResult>;
  /** The observed state, normalised to the shape of the desired section. */
  query(ctx: PluginContext, options?: QueryOptions<D>): Promise<D>;
  /**
   * Optional: what `diff` needs to know about the target besides the observed section, which a
   * document does not declare (e.g. which links carry the management connection, so that
   * changes to them are flagged risky). The engine calls it when it plans, right after `query`
   * in the same context, and passes the result to `diff`; it is not journalled or shown. This
   * keeps `diff` a pure function of its arguments (no state carried from `query` on the side).
   */
  facts?(ctx: PluginContext, observed: D): Promise<F>;
  /**
   * Pure: the changes that take `observed` to `desired`. Resources `desired` does not name are
   * left alone. `facts` is what {@link Plugin.facts} returned; it is undefined when the plugin has
   * no `facts` and when the engine diffs only to verify (risk flags do not matter there).
   */
  diff(desired: D, observed: D, facts?: F): ChangeSpec<V>[];
  /** Apply one change. Idempotent: applying it twice is the same as once. */
  apply(change: Change<V>, ctx: PluginContext): Promise<void>;
  /**
   * Optional: apply several changes of this plugin at once, all or nothing (e.g. one OVSDB
   * transaction). When present, the engine calls it instead of `apply` for every run of
   * consecutive changes of this plugin in a plan, in plan order (a plan interleaves plugins only
   * where dependencies require it). Idempotent like `apply`. When it throws, nothing of the batch
   * may remain applied; an `OpdbusError` whose `data.changeId` names a change of the batch
   * points at the change that failed.
   */
  applyBatch?(changes: readonly Change<V>[], ctx: PluginContext): Promise<void>;
  /** Record what `restore` needs to put the given changes' resources back as they are now. */
  checkpoint(ctx: PluginContext, changes: readonly Change<V>[]): Promise<T>;
  /** Put the resources of a checkpoint back. Idempotent; may run in another process than `checkpoint`. */
  restore(token: T, ctx: PluginContext): Promise<void>;
  /** Subscribe to the native event stream (or a poll, which the plugin documents). */
  watch?(ctx: PluginContext, onEvent: (event: WatchEvent) => void): Promise<Unsubscribe>;
  /** Redact secrets from an observed section for display; `query` output passes through it. */
  redact?(section: D): D;
  /**
   * Optional: one change's `before` / `after` (and summary, when it quotes them) with secrets
   * withheld, for the audit log. Replace a secret with `REDACTED` (`{ "$redacted": true }`),
   * never with a hash of it. Pure. When a plugin has `redact` but no `redactChange`, the audit log
   * keeps none of its values (both are recorded as redacted): a plugin that holds secrets says
   * which parts are secret; one without `redact` holds none.
   */
  redactChange?(change: Change<V>): RedactedChangeValues<V>;
  /**
   * Optional: contribute desired state to other plugins' sections, resolved at plan time (e.g.
   * NUMA placements become a systemd unit's CPUAffinity/NUMAPolicy/NUMAMask). The engine
   * deep-merges `sections` into the document before querying, refuses a fragment that contradicts
   * what the document says (`OPDBUS_ERR_PLAN_CONFLICT`), validates the merged sections with their
   * plugins' schemas, and records the merged document in the transaction journal.
   */
  expand?(desired: D, ctx: PluginContext): Promise<Expansion>;
}

/**
 * A plugin that only contributes to other plugins' sections (e.g. numa, whose placements become
 * systemd unit properties). Its section has no host state of its own, so it implements what it
 * needs and nothing else: its name, schema and `expand`, and optionally `probe` (default:
 * available) and `empty`. The engine handles the rest: a scoped query reports the section the
 * document gave, an unscoped one reports `empty` (or leaves the section out), and it never has
 * changes, so there is nothing to apply, checkpoint or restore.
 *
 * @example
 * ```ts
 * export const pinPlugin: ExpansionPlugin<PinSection> = {
 *   name: 'pin', version: packageVersion(import.meta.url), description: 'CPU pins', schema, empty: {},
 *   expand: async (section) => ({ sections: { systemd: { units: toUnits(section) } } }),
 * };
 * ```
 */
export interface ExpansionPlugin<D> {
  readonly name: string;
  /** Semver; use `packageVersion(import.meta.url)`. */
  readonly version: string;
  readonly description: string;
  /** zod schema of the section; strict. */
  readonly schema: z.ZodType<D>;
  /** What a query that is not scoped to a document reports (e.g. `{ placements: {} }`); left out when unset. */
  readonly empty?: D;
  /** Whether the plugin can work here (default: available). */
  probe?(ctx: PluginContext): Promise<ProbeResult>;
  /** Contribute desired state to other plugins' sections (see {@link Plugin.expand}). */
  expand(desired: D, ctx: PluginContext): Promise<Expansion>;
}

/**
 * Identity helper that types an {@link ExpansionPlugin} and infers its section type. (Before
 * contract 1.1 it filled in stub methods; the engine now calls only what a plugin has.)
 */
export function defineExpansionPlugin<D>(plugin: ExpansionPlugin<D>): ExpansionPlugin<D> {
  return plugin;
}

/**
 * A change's values as the audit log may keep them (see {@link Plugin.redactChange}); `V` is the
 * plugin's change value type (a secret replaced by `REDACTED` must fit it).
 */
export interface RedactedChangeValues<V = JsonValue> {
  before: V | null;
  after: V | null;
  /** A summary without the secrets; default: `<op> <resource>` when the values were redacted. */
  summary?: string;
}

/** What a plugin's `expand` contributes. */
export interface Expansion {
  /** Fragments of other plugins' sections, by plugin name. */
  sections: Record<string, unknown>;
  /** Why, for people: shown with the changes of the resources they name. */
  notes?: PlanNote[];
}

/** An explanation attached to a resource of a plan (e.g. why a CPU set was chosen). */
export interface PlanNote {
  plugin: string;
  resource: string;
  note: string;
}

/** The members every kind of plugin has. */
type PluginIdentity = 'name' | 'version' | 'description' | 'schema';

/**
 * A plugin of any section type and kind, as the registry and the engine hold it: a full
 * {@link Plugin} or an {@link ExpansionPlugin}. Every method may be absent (an expansion plugin
 * has no `query`, `diff`, `apply`, `checkpoint` or `restore`); {@link assertPlugin} checks that a
 * plugin has either all of those or `expand` alone.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds plugins of any section type
type PluginOfAny = Plugin<any, any, any, any>;
export type AnyPlugin = Pick<PluginOfAny, PluginIdentity> &
  Partial<Omit<PluginOfAny, PluginIdentity>> & { readonly empty?: unknown };

const pluginNamePattern = /^[a-z][a-z0-9-]{0,62}$/;
const semverPattern = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/;
/** What a plugin with host state of its own implements (an expansion plugin has none of them). */
const stateMethods = ['probe', 'query', 'diff', 'apply', 'checkpoint', 'restore'] as const;
const optionalMethods = ['watch', 'redact', 'redactChange', 'applyBatch', 'expand', 'facts'] as const;

/**
 * Check that `value` satisfies the plugin contract; throws `OPDBUS_ERR_PLUGIN_INVALID` naming
 * every problem. Returns it typed.
 */
export function assertPlugin(value: unknown): AnyPlugin {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null) {
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_INVALID',
      `A plugin must be an object, got ${value === null ? 'null' : typeof value}.`,
    );
  }
  const p = value as Record<string, unknown>;
  const label = typeof p.name === 'string' ? `plugin "${p.name}"` : 'plugin';
  if (typeof p.name !== 'string' || !pluginNamePattern.test(p.name)) {
    problems.push(`name must match ${pluginNamePattern} (got ${JSON.stringify(p.name)})`);
  }
  if (typeof p.version !== 'string' || !semverPattern.test(p.version)) {
    problems.push(`version must be semver (got ${JSON.stringify(p.version)})`);
  }
  if (typeof p.description !== 'string' || p.description.length === 0)
    problems.push('description must be a non-empty string');
  // A lazy schema is checked when it is built (lazySchema): checking it here would build it.
  if (!isLazySchema(p.schema) && !(p.schema instanceof z.ZodType))
    problems.push('schema must be a zod schema (import { z } from "zod")');
  // An expansion plugin (expand, no host state) needs none of the state methods; it may probe.
  const expansionOnly =
    typeof p.expand === 'function' && stateMethods.every((m) => m === 'probe' || p[m] === undefined);
  if (expansionOnly) {
    if (p.probe !== undefined && typeof p.probe !== 'function')
      problems.push('probe, when present, must be a function');
  } else {
    for (const method of stateMethods) {
      if (typeof p[method] !== 'function')
        problems.push(
          `${method} must be a function (a plugin that only contributes to other plugins' sections implements expand and none of query, diff, apply, checkpoint, restore)`,
        );
    }
  }
  for (const method of optionalMethods) {
    if (p[method] !== undefined && typeof p[method] !== 'function')
      problems.push(`${method}, when present, must be a function`);
  }
  if (problems.length > 0) {
    throw new OpdbusError('OPDBUS_ERR_PLUGIN_INVALID', `Cannot register ${label}: ${problems.join('; ')}.`, {
      data: { plugin: p.name, problems },
    });
  }
  return value as AnyPlugin;
}

/**
 * Identity helper that types a plugin object and lets TypeScript infer its section type (and,
 * from `diff`'s return type or an explicit type argument, its change value type).
 *
 * @example
 * ```ts
 * export const myPlugin = definePlugin({
 *   name: 'my', version: packageVersion(import.meta.url), schema: z.strictObject({}), ...
 * });
 * ```
 */
export function definePlugin<D, T = JsonValue, V = JsonValue, F = unknown>(
  plugin: Plugin<D, T, V, F>,
): Plugin<D, T, V, F> {
  return plugin;
}
