import {
  OpdbusError,
  definePlugin,
  packageVersion,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { Hostname1, connectBus, type DbusConnection } from '@opdbus/dbus';
import { z } from 'zod';

/** The chassis types hostnamed accepts (machine-info(5)); "" resets to the detected one. */
export const chassisTypes = [
  '',
  'desktop',
  'laptop',
  'convertible',
  'server',
  'tablet',
  'handset',
  'watch',
  'embedded',
  'vm',
  'container',
] as const;

/** The `hostname` section. */
export interface HostnameSection {
  static?: string | undefined;
  pretty?: string | undefined;
  chassis?: (typeof chassisTypes)[number] | undefined;
  deployment?: string | undefined;
  location?: string | undefined;
  iconName?: string | undefined;
}

/** The zod schema of the `hostname` section. */
export const hostnameSchema: z.ZodType<HostnameSection> = z
  .strictObject({
    static: z
      .string()
      .regex(
        /^$|^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
        'a hostname (letters, digits, dashes, dots; up to 64)',
      )
      .optional()
      .describe('The static hostname (/etc/hostname); "" removes it.'),
    pretty: z
      .string()
      .optional()
      .describe('The pretty hostname, free text (PRETTY_HOSTNAME in /etc/machine-info).'),
    chassis: z.enum(chassisTypes).optional().describe('The chassis type; "" goes back to the detected one.'),
    deployment: z
      .string()
      .regex(/^[A-Za-z0-9.:-]*$/, 'letters, digits, ".", ":", "-", e.g. production')
      .optional()
      .describe('The deployment environment, e.g. production.'),
    location: z.string().optional().describe('Where the machine is, free text.'),
    iconName: z.string().optional().describe('The icon name (XDG icon naming).'),
  })
  .describe('Host names and machine information, through systemd-hostnamed (org.freedesktop.hostname1).');

type Field = keyof HostnameSection;
const fields: ReadonlyArray<{
  field: Field;
  property: string;
  method:
    | 'setStaticHostname'
    | 'setPrettyHostname'
    | 'setChassis'
    | 'setDeployment'
    | 'setLocation'
    | 'setIconName';
}> = [
  { field: 'static', property: 'StaticHostname', method: 'setStaticHostname' },
  { field: 'pretty', property: 'PrettyHostname', method: 'setPrettyHostname' },
  { field: 'chassis', property: 'Chassis', method: 'setChassis' },
  { field: 'deployment', property: 'Deployment', method: 'setDeployment' },
  { field: 'location', property: 'Location', method: 'setLocation' },
  { field: 'iconName', property: 'IconName', method: 'setIconName' },
];

/** The checkpoint: the values of the fields a plan changes. */
export type HostnameCheckpoint = { values: Record<string, string> };

const connect = (ctx: PluginContext): Promise<DbusConnection> =>
  connectBus({
    ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
    logger: ctx.logger,
  });

async function read(bus: DbusConnection): Promise<Required<Record<Field, string>>> {
  const all = await new Hostname1(bus).getAll();
  return {
    static: all.StaticHostname,
    pretty: all.PrettyHostname,
    chassis: all.Chassis,
    deployment: all.Deployment,
    location: all.Location,
    iconName: all.IconName,
  };
}

async function set(bus: DbusConnection, field: Field, value: string): Promise<void> {
  const spec = fields.find((f) => f.field === field);
  if (spec === undefined)
    throw new OpdbusError('OPDBUS_ERR_HOSTNAME_SET', `Unknown hostname field ${field}.`);
  try {
    await new Hostname1(bus)[spec.method](value, false);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_HOSTNAME_SET',
      `systemd-hostnamed refused ${spec.property} = ${JSON.stringify(value)}: ${(err as Error).message}`,
      {
        data: { path: `plugins.hostname.${field}`, value, dbusError: (err as OpdbusError).data?.dbusError },
        cause: err,
      },
    );
  }
}

/**
 * The hostname plugin: static and pretty hostname, chassis, deployment, location and icon name,
 * through systemd-hostnamed on the target bus (`ctx.target.busAddress`, else the system bus).
 * `watch` follows hostnamed's PropertiesChanged.
 */
export function createHostnamePlugin(): Plugin<HostnameSection, HostnameCheckpoint> {
  return definePlugin<HostnameSection, HostnameCheckpoint>({
    name: 'hostname',
    version: packageVersion(import.meta.url),
    description: 'Static and pretty hostname, chassis, deployment, location (systemd-hostnamed).',
    schema: hostnameSchema,

    async probe(ctx) {
      try {
        await using bus = await connect(ctx);
        await new Hostname1(bus).get('StaticHostname');
        return { available: true, detail: bus.address };
      } catch (err) {
        return { available: false, reason: `systemd-hostnamed is not reachable: ${(err as Error).message}` };
      }
    },

    async query(ctx, options) {
      await using bus = await connect(ctx);
      const all = await read(bus);
      const out: HostnameSection = {};
      const wanted =
        options?.scope === undefined ? fields.map((f) => f.field) : (Object.keys(options.scope) as Field[]);
      for (const field of wanted) (out as Record<Field, string>)[field] = all[field];
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec[] = [];
      for (const { field, property } of fields) {
        const want = desired[field];
        if (want === undefined || want === observed[field]) continue;
        changes.push({
          resource: field,
          op: 'update',
          before: observed[field] ?? null,
          after: want,
          summary: `set ${property} ${JSON.stringify(observed[field] ?? null)} → ${JSON.stringify(want)}`,
        });
      }
      return changes;
    },

    async apply(change, ctx) {
      await using bus = await connect(ctx);
      const value = typeof change.after === 'string' ? change.after : '';
      await set(bus, change.resource as Field, value);
    },

    async checkpoint(ctx, changes) {
      await using bus = await connect(ctx);
      const all = await read(bus);
      const values: Record<string, string> = {};
      for (const change of changes) values[change.resource] = all[change.resource as Field];
      return { values };
    },

    async restore(token, ctx) {
      await using bus = await connect(ctx);
      const all = await read(bus);
      for (const [field, value] of Object.entries(token.values))
        if (all[field as Field] !== value) await set(bus, field as Field, value);
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const bus = await connect(ctx);
      const subscription = await new Hostname1(bus).onPropertiesChanged((changed, invalidated) => {
        for (const { field, property } of fields) {
          if (property in changed || invalidated.includes(property)) {
            const value = (changed as Record<string, unknown>)[property];
            onEvent({
              plugin: 'hostname',
              resource: field,
              detail: `${property} is now ${JSON.stringify(value ?? '(changed)')}`,
              raw: { property, value: (value ?? null) as JsonValue },
            });
          }
        }
      });
      return async () => {
        await subscription.unsubscribe();
        await bus.close();
      };
    },
  });
}

/** The hostname plugin. */
export const hostnamePlugin: Plugin<HostnameSection, HostnameCheckpoint> = createHostnamePlugin();
