import {
  OpdbusError,
  canonicalJson,
  definePlugin,
  lazySchema,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { z } from 'zod';
import {
  STANDARD_INTERFACES,
  Variant,
  connectTarget,
  fromJson,
  sameJson,
  toJson,
  walkObjectTree,
  type DbusConnection,
  type InterfaceInfo,
  type PropertyInfo,
  type Subscription,
} from '@opdbus/dbus';

/** The auto plugin's section: object path → interface → property → value (JSON). */
export type AutoSection = Record<string, Record<string, Record<string, JsonValue>>>;

/** One property of one object with a value: what an auto change sets (its `after`). */
export type AutoPropertyWrite = { path: string; interface: string; property: string; value: JsonValue };

/**
 * The values of an auto plugin's changes (`PATH:INTERFACE.PROPERTY`): `before` is the property's
 * value as read (any JSON, as D-Bus values map to it), `after` the write ({@link AutoPropertyWrite}).
 */
export type AutoValue = AutoPropertyWrite | JsonValue;

/** A change of an auto plugin. */
export type AutoChange = Change<AutoValue>;

/** An auto plugin, typed: its section, checkpoint and change values. */
export type AutoPlugin = Plugin<AutoSection, AutoCheckpoint, AutoValue>;

/** The auto plugin's checkpoint: the values a plan changes, as they were. */
export type AutoCheckpoint = { values: AutoPropertyWrite[] };

/** Options of {@link createDbusAutoPlugin}. */
export interface DbusAutoPluginOptions {
  /** The plugin's (section's) name, e.g. `hostname-props`. */
  name: string;
  /** The service's bus name, e.g. `org.freedesktop.hostname1`. */
  destination: string;
  /** Objects to expose (default: the whole tree below `root`). */
  objects?: readonly string[];
  /** Where to walk from when `objects` is not given (default `/`). */
  root?: string;
  /** Only these interfaces (default: every non-standard interface). */
  interfaces?: readonly string[];
  /**
   * Allow writing properties with access `readwrite` (Properties.Set). Default false: the plugin is
   * read-only and an apply that would change a property fails with `OPDBUS_ERR_DBUS_READ_ONLY`.
   */
  writable?: boolean;
  /** How often `watch` re-reads properties that do not emit PropertiesChanged (default 1000 ms; 0: never). */
  pollIntervalMs?: number;
  /** One line for `opdbus schema`. */
  description?: string;
}

/** The zod schema of an {@link AutoSection}. */
export const autoSectionSchema: z.ZodType<AutoSection> = lazySchema(() =>
  z.record(
    z.string().regex(/^\/$|^(\/[A-Za-z0-9_]+)+$/, 'a D-Bus object path'),
    z.record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/, 'a D-Bus interface name'),
      z.record(z.string(), z.json()),
    ),
  ),
);

/**
 * A read-only (by default) plugin exposing any D-Bus service's properties as state, without
 * generated code: `query` walks the service's objects and reads every property of every
 * interface (GetAll), as JSON (64-bit integers as numbers when exact, byte arrays as arrays,
 * variants as their value). A document can name the properties it expects; `diff` reports the
 * differences. Queried with a document as scope, it reads what the document names, an empty
 * object selecting everything below it (`{}` for an object: all its interfaces). With `writable: true`, `apply` writes `readwrite` properties (Properties.Set,
 * the value converted to the property's signature) and `restore` writes the old values back.
 * `watch` follows PropertiesChanged below the objects and polls properties that do not emit it.
 *
 * The target bus is `ctx.target.busAddress` (the CLI's `--bus`), else the system bus.
 */
export function createDbusAutoPlugin(options: DbusAutoPluginOptions): AutoPlugin {
  const { name, destination } = options;
  const include = (iface: InterfaceInfo): boolean =>
    !STANDARD_INTERFACES.has(iface.name) &&
    (options.interfaces === undefined || options.interfaces.includes(iface.name));
  const connect = (ctx: PluginContext): Promise<DbusConnection> => connectTarget(ctx);

  /** Objects and their (included) interfaces. */
  const objects = async (
    bus: DbusConnection,
    only?: readonly string[],
  ): Promise<Array<{ path: string; interfaces: InterfaceInfo[] }>> => {
    const paths = only ?? options.objects;
    if (paths !== undefined) {
      const out = [];
      for (const path of paths)
        out.push({ path, interfaces: (await bus.introspect(destination, path)).interfaces.filter(include) });
      return out;
    }
    return (await walkObjectTree(bus, destination, { root: options.root ?? '/' }))
      .map((o) => ({ path: o.path, interfaces: o.interfaces.filter(include) }))
      .filter((o) => o.interfaces.length > 0);
  };

  const readInterface = async (
    bus: DbusConnection,
    path: string,
    iface: InterfaceInfo,
  ): Promise<Record<string, JsonValue>> => {
    const readable = iface.properties.filter((p) => p.access !== 'write');
    if (readable.length === 0) return {};
    const all = await bus.getAllProperties(destination, path, iface.name);
    const out: Record<string, JsonValue> = {};
    for (const p of readable) if (p.name in all) out[p.name] = toJson(all[p.name]);
    return out;
  };

  const propertyInfo = async (
    bus: DbusConnection,
    path: string,
    ifaceName: string,
    prop: string,
  ): Promise<PropertyInfo> => {
    const node = await bus.introspect(destination, path);
    const iface = node.interfaces.find((i) => i.name === ifaceName);
    const info = iface?.properties.find((p) => p.name === prop);
    if (info === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_UNKNOWN_MEMBER',
        `plugins.${name}: ${destination} has no property ${ifaceName}.${prop} on ${path}; check the names with \`opdbus query --plugin ${name}\`.`,
        {
          data: {
            path: `plugins.${name}.${path}.${ifaceName}.${prop}`,
            destination,
            object: path,
            interface: ifaceName,
            property: prop,
          },
        },
      );
    }
    return info;
  };

  const writeProperty = async (
    bus: DbusConnection,
    path: string,
    ifaceName: string,
    prop: string,
    value: JsonValue,
  ): Promise<void> => {
    const info = await propertyInfo(bus, path, ifaceName, prop);
    if (options.writable !== true || info.access === 'read') {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_READ_ONLY',
        `Cannot set ${ifaceName}.${prop} on ${destination} ${path}: ${info.access === 'read' ? 'the property is read-only' : `plugin "${name}" was created read-only (pass writable: true)`}.`,
        { data: { destination, object: path, interface: ifaceName, property: prop, access: info.access } },
      );
    }
    await bus.setProperty(
      destination,
      path,
      ifaceName,
      prop,
      new Variant(info.type, fromJson(info.type, value, `${path}.${ifaceName}.${prop}`)),
    );
  };

  return definePlugin<AutoSection, AutoCheckpoint, AutoValue>({
    name,
    version: packageVersion(import.meta.url),
    description:
      options.description ??
      `Properties of the D-Bus service ${destination}${options.writable === true ? '' : ' (read-only)'}.`,
    schema: autoSectionSchema,

    async probe(ctx) {
      let bus: DbusConnection;
      try {
        bus = await connect(ctx);
      } catch (err) {
        return { available: false, reason: (err as Error).message };
      }
      try {
        if ((await bus.getNameOwner(destination)) !== undefined)
          return { available: true, detail: bus.address };
        if ((await bus.listActivatableNames()).includes(destination))
          return { available: true, detail: `${bus.address} (activatable)` };
        return {
          available: false,
          reason: `${destination} is not on the bus ${bus.address} and cannot be activated`,
        };
      } finally {
        await bus.close();
      }
    },

    async query(ctx, queryOptions) {
      const bus = await connect(ctx);
      try {
        const out: AutoSection = {};
        const scope = queryOptions?.scope;
        if (scope !== undefined) {
          // An empty object selects everything below it: every interface of an object, every
          // property of an interface.
          for (const [path, ifaces] of Object.entries(scope)) {
            const names = Object.keys(ifaces);
            if (names.length === 0) {
              for (const object of await objects(bus, [path]))
                for (const iface of object.interfaces)
                  (out[path] ??= {})[iface.name] = await readInterface(bus, path, iface);
              continue;
            }
            for (const [ifaceName, props] of Object.entries(ifaces)) {
              if (Object.keys(props).length === 0) {
                const node = await bus.introspect(destination, path);
                const iface = node.interfaces.find((i) => i.name === ifaceName);
                if (iface === undefined) {
                  throw new OpdbusError(
                    'OPDBUS_ERR_DBUS_UNKNOWN_MEMBER',
                    `plugins.${name}: ${destination} has no interface ${ifaceName} on ${path}; check the names with \`opdbus query --plugin ${name}\`.`,
                    {
                      data: {
                        path: `plugins.${name}.${path}.${ifaceName}`,
                        destination,
                        object: path,
                        interface: ifaceName,
                      },
                    },
                  );
                }
                (out[path] ??= {})[ifaceName] = await readInterface(bus, path, iface);
                continue;
              }
              const all = await bus.getAllProperties(destination, path, ifaceName);
              for (const prop of Object.keys(props)) {
                if (!(prop in all)) await propertyInfo(bus, path, ifaceName, prop);
                ((out[path] ??= {})[ifaceName] ??= {})[prop] = toJson(all[prop]);
              }
            }
          }
          return out;
        }
        for (const object of await objects(bus)) {
          for (const iface of object.interfaces) {
            try {
              const values = await readInterface(bus, object.path, iface);
              if (Object.keys(values).length > 0) (out[object.path] ??= {})[iface.name] = values;
            } catch (err) {
              ctx.logger.warn(
                { err, path: object.path, interface: iface.name },
                'cannot read properties; skipped',
              );
            }
          }
        }
        return out;
      } finally {
        await bus.close();
      }
    },

    diff(desired, observed) {
      const changes: ChangeSpec<AutoValue>[] = [];
      for (const [path, ifaces] of Object.entries(desired)) {
        for (const [ifaceName, props] of Object.entries(ifaces)) {
          for (const [prop, want] of Object.entries(props)) {
            const have = observed[path]?.[ifaceName]?.[prop];
            if (have !== undefined && sameJson(have, want)) continue;
            changes.push({
              resource: `${path}:${ifaceName}.${prop}`,
              op: 'update',
              before: have ?? null,
              after: { path, interface: ifaceName, property: prop, value: want },
              summary: `set ${ifaceName}.${prop} on ${path}: ${JSON.stringify(have ?? null)} → ${JSON.stringify(want)}`,
            });
          }
        }
      }
      return changes;
    },

    async apply(change, ctx) {
      // diff makes every change a write of one property.
      const after = change.after as AutoPropertyWrite;
      const bus = await connect(ctx);
      try {
        await writeProperty(bus, after.path, after.interface, after.property, after.value);
      } finally {
        await bus.close();
      }
    },

    async checkpoint(ctx, changes) {
      const bus = await connect(ctx);
      try {
        const values: AutoCheckpoint['values'] = [];
        for (const change of changes) {
          const after = change.after as AutoPropertyWrite;
          const value = await bus.getProperty(destination, after.path, after.interface, after.property);
          values.push({
            path: after.path,
            interface: after.interface,
            property: after.property,
            value: toJson(value),
          });
        }
        return { values };
      } finally {
        await bus.close();
      }
    },

    async restore(token, ctx) {
      const bus = await connect(ctx);
      try {
        for (const v of token.values) {
          const now = toJson(await bus.getProperty(destination, v.path, v.interface, v.property));
          if (!sameJson(now, v.value)) await writeProperty(bus, v.path, v.interface, v.property, v.value);
        }
      } finally {
        await bus.close();
      }
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const bus = await connect(ctx);
      const list = await objects(bus);
      const subscriptions: Subscription[] = [];
      const roots = options.objects ?? [options.root ?? '/'];
      for (const root of roots) {
        subscriptions.push(
          await bus.subscribe(
            {
              sender: destination,
              interface: 'org.freedesktop.DBus.Properties',
              member: 'PropertiesChanged',
              ...(options.objects === undefined ? { pathNamespace: root } : { path: root }),
            },
            (message) => {
              const [ifaceName, changed, invalidated] = message.body as [
                string,
                Record<string, unknown>,
                string[],
              ];
              for (const [prop, value] of Object.entries(changed))
                onEvent({
                  plugin: name,
                  resource: `${message.path}:${ifaceName}.${prop}`,
                  detail: `${ifaceName}.${prop} on ${message.path} is now ${JSON.stringify(toJson(value))}`,
                  raw: { path: message.path, interface: ifaceName, property: prop, value: toJson(value) },
                });
              for (const prop of invalidated)
                onEvent({
                  plugin: name,
                  resource: `${message.path}:${ifaceName}.${prop}`,
                  detail: `${ifaceName}.${prop} on ${message.path} changed`,
                });
            },
          ),
        );
      }
      // Properties that never emit PropertiesChanged: poll them (documented).
      const unsignalled = list.flatMap((o) =>
        o.interfaces.flatMap((i) =>
          i.properties
            .filter((p) => p.emitsChangedSignal === 'false' && p.access !== 'write')
            .map((p) => ({ path: o.path, iface: i.name, prop: p.name })),
        ),
      );
      const pollMs = options.pollIntervalMs ?? 1000;
      let timer: NodeJS.Timeout | undefined;
      if (unsignalled.length > 0 && pollMs > 0) {
        const last = new Map<string, string>();
        const read = async (): Promise<Map<string, JsonValue>> => {
          const now = new Map<string, JsonValue>();
          const byInterface = new Map<string, string[]>();
          for (const u of unsignalled) {
            const key = `${u.path}\n${u.iface}`;
            byInterface.set(key, [...(byInterface.get(key) ?? []), u.prop]);
          }
          for (const [key, props] of byInterface) {
            const [path, iface] = key.split('\n') as [string, string];
            const all = await bus.getAllProperties(destination, path, iface);
            for (const prop of props) if (prop in all) now.set(`${path}:${iface}.${prop}`, toJson(all[prop]));
          }
          return now;
        };
        for (const [k, v] of await read()) last.set(k, canonicalJson(v));
        let busy = false;
        timer = setInterval(() => {
          if (busy) return;
          busy = true;
          read()
            .then((now) => {
              for (const [resource, value] of now) {
                const text = canonicalJson(value);
                if (last.get(resource) === text) continue;
                last.set(resource, text);
                onEvent({
                  plugin: name,
                  resource,
                  detail: `${resource} is now ${text} (seen by polling every ${pollMs} ms)`,
                  raw: { resource, value },
                });
              }
            })
            .catch((err: unknown) => ctx.logger.warn({ err }, 'polling D-Bus properties failed'))
            .finally(() => (busy = false));
        }, pollMs);
      }
      return async () => {
        clearInterval(timer);
        for (const s of subscriptions) await s.unsubscribe();
        await bus.close();
      };
    },
  });
}
