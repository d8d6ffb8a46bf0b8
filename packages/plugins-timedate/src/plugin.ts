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
import { Timedate1, connectBus, type DbusConnection } from '@opdbus/dbus';
import { z } from 'zod';

/** The `timedate` section. */
export interface TimedateSection {
  timezone?: string | undefined;
  ntp?: boolean | undefined;
}

/** The zod schema of the `timedate` section. */
export const timedateSchema: z.ZodType<TimedateSection> = z
  .strictObject({
    timezone: z
      .string()
      .regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'a time zone such as Europe/Berlin or UTC')
      .optional()
      .describe('The system time zone (/etc/localtime), e.g. Europe/Berlin.'),
    ntp: z
      .boolean()
      .optional()
      .describe(
        'Network time synchronization (the NTP service, e.g. systemd-timesyncd, enabled and running).',
      ),
  })
  .describe(
    'Time zone and NTP, through systemd-timedated (org.freedesktop.timedate1). The clock itself is never set.',
  );

/** The checkpoint: the settings a plan changes. */
export type TimedateCheckpoint = { timezone?: string; ntp?: boolean };

const connect = (ctx: PluginContext): Promise<DbusConnection> =>
  connectBus({
    ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
    logger: ctx.logger,
  });

async function read(bus: DbusConnection): Promise<{ timezone: string; ntp: boolean }> {
  const all = await new Timedate1(bus).getAll();
  return { timezone: all.Timezone, ntp: all.NTP };
}

async function set(bus: DbusConnection, field: 'timezone' | 'ntp', value: string | boolean): Promise<void> {
  const timedate = new Timedate1(bus);
  try {
    if (field === 'timezone') await timedate.setTimezone(String(value), false);
    else await timedate.setNTP(value === true, false);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_TIMEDATE_SET',
      `systemd-timedated refused ${field === 'timezone' ? 'the time zone' : 'NTP'} ${JSON.stringify(value)}: ${(err as Error).message}`,
      {
        data: { path: `plugins.timedate.${field}`, value, dbusError: (err as OpdbusError).data?.dbusError },
        cause: err,
      },
    );
  }
}

/**
 * The timedate plugin: the time zone and NTP, through systemd-timedated on the target bus. It
 * never calls SetTime or SetLocalRTC. `watch` follows timedated's PropertiesChanged.
 */
export function createTimedatePlugin(): Plugin<TimedateSection, TimedateCheckpoint> {
  return definePlugin<TimedateSection, TimedateCheckpoint>({
    name: 'timedate',
    version: packageVersion(import.meta.url),
    description: 'Time zone and NTP (systemd-timedated).',
    schema: timedateSchema,

    async probe(ctx) {
      try {
        await using bus = await connect(ctx);
        await new Timedate1(bus).get('Timezone');
        return { available: true, detail: bus.address };
      } catch (err) {
        return { available: false, reason: `systemd-timedated is not reachable: ${(err as Error).message}` };
      }
    },

    async query(ctx, options) {
      await using bus = await connect(ctx);
      const now = await read(bus);
      const scope = options?.scope;
      const out: TimedateSection = {};
      if (scope === undefined || scope.timezone !== undefined) out.timezone = now.timezone;
      if (scope === undefined || scope.ntp !== undefined) out.ntp = now.ntp;
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec[] = [];
      if (desired.timezone !== undefined && desired.timezone !== observed.timezone)
        changes.push({
          resource: 'timezone',
          op: 'update',
          before: observed.timezone ?? null,
          after: desired.timezone,
          summary: `set time zone ${observed.timezone ?? '(unknown)'} → ${desired.timezone}`,
        });
      if (desired.ntp !== undefined && desired.ntp !== observed.ntp)
        changes.push({
          resource: 'ntp',
          op: 'update',
          before: observed.ntp ?? null,
          after: desired.ntp,
          summary: `${desired.ntp ? 'enable' : 'disable'} NTP`,
        });
      return changes;
    },

    async apply(change, ctx) {
      await using bus = await connect(ctx);
      await set(bus, change.resource as 'timezone' | 'ntp', change.after as string | boolean);
    },

    async checkpoint(ctx, changes) {
      await using bus = await connect(ctx);
      const now = await read(bus);
      const token: TimedateCheckpoint = {};
      for (const change of changes) {
        if (change.resource === 'timezone') token.timezone = now.timezone;
        if (change.resource === 'ntp') token.ntp = now.ntp;
      }
      return token;
    },

    async restore(token, ctx) {
      await using bus = await connect(ctx);
      const now = await read(bus);
      if (token.ntp !== undefined && token.ntp !== now.ntp) await set(bus, 'ntp', token.ntp);
      if (token.timezone !== undefined && token.timezone !== now.timezone)
        await set(bus, 'timezone', token.timezone);
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const bus = await connect(ctx);
      const subscription = await new Timedate1(bus).onPropertiesChanged((changed, invalidated) => {
        for (const [property, field] of [
          ['Timezone', 'timezone'],
          ['NTP', 'ntp'],
        ] as const) {
          if (property in changed || invalidated.includes(property)) {
            const value = changed[property];
            onEvent({
              plugin: 'timedate',
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

/** The timedate plugin. */
export const timedatePlugin: Plugin<TimedateSection, TimedateCheckpoint> = createTimedatePlugin();
