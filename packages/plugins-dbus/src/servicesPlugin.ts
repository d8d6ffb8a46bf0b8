import {
  OpdbusError,
  definePlugin,
  lazySchema,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type Unsubscribe,
} from '@opdbus/core';
import { z } from 'zod';
import {
  autoSectionSchema,
  createDbusAutoPlugin,
  type AutoCheckpoint,
  type AutoPlugin,
  type AutoPropertyWrite,
  type AutoSection,
} from './autoPlugin.js';
import { connectTarget } from '@opdbus/dbus';

/**
 * The `dbus` section: well-known bus name → object path → interface → property → value (JSON).
 * An empty object at any level selects everything below it when querying (`{}` for a service:
 * every object of its tree), and declares nothing when diffing.
 */
export type DbusServicesSection = Record<string, AutoSection>;

/** The `dbus` plugin's checkpoint: the auto plugin's checkpoint of each service a plan changes. */
export type DbusServicesCheckpoint = { services: Record<string, AutoCheckpoint> };

/** What a `dbus` change sets: a service's property write ({@link AutoPropertyWrite}) and the service. */
export type ServicePropertyWrite = AutoPropertyWrite & { destination: string };

/**
 * The values of the `dbus` plugin's changes (`SERVICE:PATH:INTERFACE.PROPERTY`): `before` is the
 * property's value as read (any JSON), `after` the write ({@link ServicePropertyWrite}).
 */
export type DbusServicesValue = ServicePropertyWrite | JsonValue;

/** A change of the `dbus` plugin. */
export type DbusServicesChange = Change<DbusServicesValue>;

/** The `dbus` plugin, typed: its section, checkpoint and change values. */
export type DbusServicesPlugin = Plugin<DbusServicesSection, DbusServicesCheckpoint, DbusServicesValue>;

/** Options of {@link createDbusServicesPlugin}. */
export interface DbusServicesPluginOptions {
  /**
   * Services an unscoped `query` (and `watch`) covers, e.g. `org.freedesktop.hostname1` (the
   * CLI's `--dbus-service`). Default none: walking every service of a bus reads thousands of
   * properties (systemd alone has one object per unit), so a plain query asks for them by name.
   */
  services?: readonly string[];
  /** Allow writing `readwrite` properties (Properties.Set), as the auto plugin does with `writable`; default false. */
  writable?: boolean;
  /** Poll interval of `watch` for properties that do not emit PropertiesChanged (default 1000 ms). */
  pollIntervalMs?: number;
}

const busNamePattern = /^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$/;

/** The zod schema of the `dbus` section (built at its first use). */
const dbusServicesSchema: z.ZodType<DbusServicesSection> = lazySchema(() =>
  z.record(
    z.string().max(255).regex(busNamePattern, 'a well-known D-Bus name such as org.freedesktop.hostname1'),
    autoSectionSchema,
  ),
);

/** A well-known bus name, as the D-Bus specification allows them (unique names are refused: they change). */
export function isWellKnownBusName(name: string): boolean {
  return name.length <= 255 && busNamePattern.test(name);
}

/**
 * The `dbus` section: the properties of any D-Bus service as state, without generated code
 * (the "auto plugin" of {@link createDbusAutoPlugin}, for every service a document names).
 *
 * `query` with a document's section as scope reads exactly the services, objects, interfaces and
 * properties it names (an empty object selects everything below it); without a scope it reads
 * the services of `options.services`. `diff` reports every named property whose value differs;
 * read-only by default, so `apply` of a difference fails with `OPDBUS_ERR_DBUS_READ_ONLY` (with
 * `writable: true`, `readwrite` properties are set and restored like any transaction). `watch`
 * follows PropertiesChanged of `options.services`.
 *
 * The bus is `ctx.target.busAddress` (the CLI's `--bus`), else the system bus.
 */
export function createDbusServicesPlugin(options: DbusServicesPluginOptions = {}): DbusServicesPlugin {
  for (const name of options.services ?? []) {
    if (!isWellKnownBusName(name))
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        `"${name}" is not a well-known D-Bus name; name a service such as org.freedesktop.hostname1.`,
        { data: { service: name } },
      );
  }
  const plugins = new Map<string, AutoPlugin>();
  const service = (destination: string): AutoPlugin => {
    let plugin = plugins.get(destination);
    if (plugin === undefined) {
      plugin = createDbusAutoPlugin({
        name: 'dbus',
        destination,
        ...(options.writable === undefined ? {} : { writable: options.writable }),
        ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      });
      plugins.set(destination, plugin);
    }
    return plugin;
  };
  const available = async (ctx: PluginContext, destination: string): Promise<void> => {
    const probe = await service(destination).probe(ctx);
    if (!probe.available)
      throw new OpdbusError(
        'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
        `plugins.dbus.${destination}: ${probe.reason}.`,
        {
          data: { plugin: 'dbus', path: `plugins.dbus.${destination}`, reason: probe.reason },
        },
      );
  };
  const queryService = async (
    ctx: PluginContext,
    destination: string,
    section: AutoSection | undefined,
  ): Promise<AutoSection> => {
    await available(ctx, destination);
    // `{}` for a service: its whole tree (the auto plugin's unscoped query).
    const scope = section === undefined || Object.keys(section).length === 0 ? undefined : section;
    return service(destination).query(ctx, scope === undefined ? undefined : { scope });
  };

  return definePlugin<DbusServicesSection, DbusServicesCheckpoint, DbusServicesValue>({
    name: 'dbus',
    version: packageVersion(import.meta.url),
    description:
      'Properties of any D-Bus service, by bus name, object path and interface (read-only unless created writable).',
    schema: dbusServicesSchema,

    async probe(ctx) {
      try {
        await using bus = await connectTarget(ctx);
        return { available: true, detail: bus.address };
      } catch (err) {
        return { available: false, reason: (err as Error).message };
      }
    },

    async query(ctx, queryOptions) {
      const out: DbusServicesSection = {};
      const scope = queryOptions?.scope;
      if (scope === undefined) {
        for (const destination of options.services ?? [])
          out[destination] = await queryService(ctx, destination, undefined);
        return out;
      }
      for (const [destination, section] of Object.entries(scope))
        out[destination] = await queryService(ctx, destination, section);
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<DbusServicesValue>[] = [];
      for (const [destination, section] of Object.entries(desired)) {
        for (const spec of service(destination).diff(section, observed[destination] ?? {})) {
          changes.push({
            ...spec,
            resource: `${destination}:${spec.resource}`,
            // The auto plugin's diff makes every change a write of one property.
            after: { destination, ...(spec.after as AutoPropertyWrite) },
            summary: `${destination}: ${spec.summary}`,
          });
        }
      }
      return changes;
    },

    async apply(change, ctx) {
      const after = change.after as ServicePropertyWrite;
      await service(after.destination).apply(change, ctx);
    },

    async checkpoint(ctx, changes) {
      const byService = new Map<string, DbusServicesChange[]>();
      for (const change of changes) {
        const { destination } = change.after as ServicePropertyWrite;
        byService.set(destination, [...(byService.get(destination) ?? []), change]);
      }
      const services: Record<string, AutoCheckpoint> = {};
      for (const [destination, list] of byService)
        services[destination] = await service(destination).checkpoint(ctx, list);
      return { services };
    },

    async restore(token, ctx) {
      for (const [destination, checkpoint] of Object.entries(token.services))
        await service(destination).restore(checkpoint, ctx);
    },

    async watch(ctx, onEvent) {
      const stops: Unsubscribe[] = [];
      try {
        for (const destination of options.services ?? []) {
          const plugin = service(destination);
          if (plugin.watch === undefined) continue;
          stops.push(
            await plugin.watch(ctx, (event) =>
              onEvent({
                ...event,
                ...(event.resource === undefined ? {} : { resource: `${destination}:${event.resource}` }),
                ...(event.detail === undefined ? {} : { detail: `${destination}: ${event.detail}` }),
              }),
            ),
          );
        }
      } catch (err) {
        for (const stop of stops) await stop();
        throw err;
      }
      return async () => {
        for (const stop of stops) await stop();
      };
    },
  });
}
