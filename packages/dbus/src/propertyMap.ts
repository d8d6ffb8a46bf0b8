import {
  OpdbusError,
  canonicalJson,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type PluginContext,
  type ProbeResult,
  type QueryOptions,
  type Unsubscribe,
  type WatchEvent,
} from '@opdbus/core';
import { connectBus, type DbusConnection, type Subscription } from './connection.js';

/**
 * Connect to the bus a plugin acts on: `ctx.target.busAddress` (the CLI's `--bus`), else the
 * system bus, logging to the plugin's logger. Close it (`await using`) when done.
 */
export function connectTarget(ctx: Pick<PluginContext, 'target' | 'logger'>): Promise<DbusConnection> {
  return connectBus({
    ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
    logger: ctx.logger,
  });
}

/**
 * A plugin's `probe` for a D-Bus service: connects to the target bus and runs `check` (one cheap
 * call, e.g. reading a property); available with the bus address as detail, else unavailable
 * with `"<service> is not reachable: <why>"`.
 */
export async function probeService(
  ctx: Pick<PluginContext, 'target' | 'logger'>,
  service: string,
  check: (bus: DbusConnection) => Promise<unknown>,
): Promise<ProbeResult> {
  try {
    await using bus = await connectTarget(ctx);
    await check(bus);
    return { available: true, detail: bus.address };
  } catch (err) {
    return { available: false, reason: `${service} is not reachable: ${(err as Error).message}` };
  }
}

/** Whether two JSON values are equal (canonical JSON: key order does not matter). */
export function sameJson(a: JsonValue, b: JsonValue): boolean {
  return a === b || canonicalJson(a) === canonicalJson(b);
}

/** A section's fields with their values present (what a {@link PropertyMap} reads). */
export type PropertyValues<S> = { [K in keyof S]-?: NonNullable<S[K]> };

/**
 * The value of one field of a section: what a {@link PropertyMap}'s changes carry as `before` and
 * `after` (their resource is the field's name), e.g. `string | boolean` for `{ timezone?: string;
 * ntp?: boolean }`. Pass it as the plugin's change value type.
 */
export type PropertyValue<S> = NonNullable<S[keyof S]>;

/** One field of a section, backed by one D-Bus property of a service. */
export interface MappedProperty<V extends JsonValue> {
  /** The D-Bus property's name, e.g. `StaticHostname`. */
  property: string;
  /** Write a value (a setter method or Properties.Set); a failure is wrapped in the map's `writeError`. */
  readonly write: (bus: DbusConnection, value: V) => Promise<void>;
  /** The change's summary (default: `set Property "before" → "after"`). */
  readonly summary?: (before: V | undefined, after: V) => string;
}

/** Options of {@link definePropertyMap}. */
export interface PropertyMapOptions<S extends { [K in keyof S]: JsonValue | undefined }> {
  /** The plugin's section name: the `plugin` of watch events and the `plugins.<name>` of error paths. */
  plugin: string;
  /** The service as people know it, for messages, e.g. `systemd-hostnamed`. */
  service: string;
  /** The code of the error thrown when the service refuses a write, e.g. `OPDBUS_ERR_HOSTNAME_SET`. */
  writeError: `OPDBUS_ERR_${string}`;
  /** Each field of the section and its property, in the order changes are planned (restored in reverse). */
  fields: { readonly [K in keyof S]-?: MappedProperty<NonNullable<S[K]>> };
  /** Read the properties at once (e.g. a binding's `getAll()`), by property name. */
  readAll(bus: DbusConnection): Promise<object>;
  /** Subscribe to the object's PropertiesChanged (e.g. a binding's `onPropertiesChanged`). */
  onPropertiesChanged(
    bus: DbusConnection,
    listener: (changed: object, invalidated: string[]) => void,
  ): Promise<Subscription>;
}

/** What {@link PropertyMap.checkpoint} records: the values of the fields a plan changes, as they were. */
export type PropertyCheckpoint = { values: Record<string, JsonValue> };

/**
 * The plugin methods of a section whose fields are properties of one D-Bus object: spread them
 * into `definePlugin` beside the plugin's name, schema and probe.
 */
export interface PropertyMap<S> {
  /** Every field's current value. */
  readonly read: (bus: DbusConnection) => Promise<PropertyValues<S>>;
  /** The plugin's `query`: every field, or the fields a scope names. */
  readonly query: (ctx: PluginContext, options?: QueryOptions<S>) => Promise<S>;
  /** The plugin's `diff`: one update per field the desired section sets to another value. */
  readonly diff: (desired: S, observed: S) => ChangeSpec<PropertyValue<S>>[];
  /** The plugin's `apply`: write the change's field. */
  readonly apply: (change: Change<PropertyValue<S>>, ctx: PluginContext) => Promise<void>;
  /** The plugin's `checkpoint`: the changed fields' values as they are now. */
  readonly checkpoint: (
    ctx: PluginContext,
    changes: readonly Change<PropertyValue<S>>[],
  ) => Promise<PropertyCheckpoint>;
  /** The plugin's `restore`: write back the values that differ now, in reverse field order. */
  readonly restore: (token: PropertyCheckpoint, ctx: PluginContext) => Promise<void>;
  /** The plugin's `watch`: an event per mapped property in PropertiesChanged. */
  readonly watch: (ctx: PluginContext, onEvent: (event: WatchEvent) => void) => Promise<Unsubscribe>;
}

/**
 * Map a plugin's section onto the properties of one D-Bus object (hostnamed's StaticHostname,
 * timedated's Timezone, ...): connecting to the target bus, reading, comparing, writing and
 * restoring are done here, so a plugin names its fields, their properties and their setters.
 *
 * @example
 * ```ts
 * const map = definePropertyMap<TimedateSection>({
 *   plugin: 'timedate',
 *   service: 'systemd-timedated',
 *   writeError: 'OPDBUS_ERR_TIMEDATE_SET',
 *   fields: {
 *     timezone: { property: 'Timezone', write: (bus, v) => new Timedate1(bus).setTimezone(v, false) },
 *     ntp: { property: 'NTP', write: (bus, v) => new Timedate1(bus).setNTP(v, false) },
 *   },
 *   readAll: (bus) => new Timedate1(bus).getAll(),
 *   onPropertiesChanged: (bus, listener) => new Timedate1(bus).onPropertiesChanged(listener),
 * });
 * export const timedatePlugin = definePlugin({ name: 'timedate', ...map, probe, schema, version, description });
 * ```
 */
export function definePropertyMap<S extends { [K in keyof S]: JsonValue | undefined }>(
  options: PropertyMapOptions<S>,
): PropertyMap<S> {
  type Field = keyof S & string;
  const fields = Object.entries(options.fields) as Array<[Field, MappedProperty<JsonValue>]>;
  const spec = (field: string): MappedProperty<JsonValue> => {
    const found = fields.find(([name]) => name === field)?.[1];
    if (found === undefined)
      throw new OpdbusError(
        options.writeError,
        `plugins.${options.plugin}: there is no field ${JSON.stringify(field)} (one of ${fields.map(([f]) => f).join(', ')}).`,
        { data: { path: `plugins.${options.plugin}.${field}` } },
      );
    return found;
  };

  const read = async (bus: DbusConnection): Promise<PropertyValues<S>> => {
    const all = (await options.readAll(bus)) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [field, { property }] of fields) out[field] = all[property];
    return out as PropertyValues<S>;
  };

  const write = async (bus: DbusConnection, field: string, value: JsonValue): Promise<void> => {
    const { property, write: set } = spec(field);
    try {
      await set(bus, value);
    } catch (err) {
      throw new OpdbusError(
        options.writeError,
        `${options.service} refused ${property} = ${JSON.stringify(value)}: ${(err as Error).message}`,
        {
          data: {
            path: `plugins.${options.plugin}.${field}`,
            value,
            dbusError: (err as OpdbusError).data?.dbusError,
          },
          cause: err,
        },
      );
    }
  };

  return {
    read,

    async query(ctx, queryOptions) {
      await using bus = await connectTarget(ctx);
      const now = await read(bus);
      const scope = queryOptions?.scope;
      const out: Record<string, unknown> = {};
      for (const [field] of fields)
        if (scope === undefined || scope[field] !== undefined) out[field] = now[field];
      return out as S;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<PropertyValue<S>>[] = [];
      for (const [field, { property, summary }] of fields) {
        const want = desired[field];
        const have = observed[field];
        if (want === undefined || (have !== undefined && sameJson(want, have))) continue;
        changes.push({
          resource: field,
          op: 'update',
          before: have ?? null,
          after: want,
          summary:
            summary?.(have, want) ??
            `set ${property} ${JSON.stringify(have ?? null)} → ${JSON.stringify(want)}`,
        });
      }
      return changes;
    },

    async apply(change, ctx) {
      await using bus = await connectTarget(ctx);
      await write(bus, change.resource, change.after);
    },

    async checkpoint(ctx, changes) {
      await using bus = await connectTarget(ctx);
      const now = (await read(bus)) as Record<string, JsonValue>;
      const values: Record<string, JsonValue> = {};
      for (const change of changes) {
        spec(change.resource);
        values[change.resource] = now[change.resource] ?? null;
      }
      return { values };
    },

    async restore(token, ctx) {
      await using bus = await connectTarget(ctx);
      const now = (await read(bus)) as Record<string, JsonValue>;
      for (const [field] of [...fields].reverse()) {
        if (!(field in token.values)) continue;
        const value = token.values[field] as JsonValue;
        const have = now[field];
        if (have === undefined || !sameJson(have, value)) await write(bus, field, value);
      }
    },

    async watch(ctx, onEvent) {
      const bus = await connectTarget(ctx);
      let subscription: Subscription;
      try {
        subscription = await options.onPropertiesChanged(bus, (changed, invalidated) => {
          for (const [field, { property }] of fields) {
            if (!(property in changed) && !invalidated.includes(property)) continue;
            const value = (changed as Record<string, unknown>)[property];
            onEvent({
              plugin: options.plugin,
              resource: field,
              detail: `${property} is now ${JSON.stringify(value ?? '(changed)')}`,
              raw: { property, value: (value ?? null) as JsonValue },
            });
          }
        });
      } catch (err) {
        await bus.close();
        throw err;
      }
      return async () => {
        await subscription.unsubscribe();
        await bus.close();
      };
    },
  };
}
