import { definePlugin, lazySchema, packageVersion, type Plugin } from '@opdbus/core';
import {
  Timedate1,
  definePropertyMap,
  probeService,
  type PropertyCheckpoint,
  type PropertyValue,
} from '@opdbus/dbus';
import { z } from 'zod';

/** The `timedate` section. */
export interface TimedateSection {
  timezone?: string | undefined;
  ntp?: boolean | undefined;
}

/** The zod schema of the `timedate` section. */
export const timedateSchema: z.ZodType<TimedateSection> = lazySchema(() =>
  z
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
    ),
);

/**
 * The checkpoint: the settings a plan changes, as they were (`values`). Journals written before
 * 0.2 hold `{ timezone?, ntp? }`; `restore` takes both.
 */
export type TimedateCheckpoint = PropertyCheckpoint | { timezone?: string; ntp?: boolean };

/**
 * The value of a timedate change (its resource is the field): a time zone (`timezone`) or whether
 * NTP is on (`ntp`).
 */
export type TimedateValue = PropertyValue<TimedateSection>;

/** The timedate plugin, typed: its section, checkpoint and change values. */
export type TimedatePlugin = Plugin<TimedateSection, TimedateCheckpoint, TimedateValue>;

/** The section's fields as timedated's properties. */
const properties = definePropertyMap<TimedateSection>({
  plugin: 'timedate',
  service: 'systemd-timedated',
  writeError: 'OPDBUS_ERR_TIMEDATE_SET',
  fields: {
    timezone: {
      property: 'Timezone',
      write: (bus, zone) => new Timedate1(bus).setTimezone(zone, false),
      summary: (before, after) => `set time zone ${before ?? '(unknown)'} → ${after}`,
    },
    ntp: {
      property: 'NTP',
      write: (bus, on) => new Timedate1(bus).setNTP(on, false),
      summary: (_, after) => `${after ? 'enable' : 'disable'} NTP`,
    },
  },
  readAll: (bus) => new Timedate1(bus).getAll(),
  onPropertiesChanged: (bus, listener) => new Timedate1(bus).onPropertiesChanged(listener),
});

/**
 * The timedate plugin: the time zone and NTP, through systemd-timedated on the target bus. It
 * never calls SetTime or SetLocalRTC. `watch` follows timedated's PropertiesChanged.
 */
export function createTimedatePlugin(): TimedatePlugin {
  return definePlugin<TimedateSection, TimedateCheckpoint, TimedateValue>({
    name: 'timedate',
    version: packageVersion(import.meta.url),
    description: 'Time zone and NTP (systemd-timedated).',
    schema: timedateSchema,
    probe: (ctx) => probeService(ctx, 'systemd-timedated', (bus) => new Timedate1(bus).get('Timezone')),
    query: properties.query,
    diff: properties.diff,
    apply: properties.apply,
    checkpoint: properties.checkpoint,
    restore: (token, ctx) => properties.restore('values' in token ? token : { values: { ...token } }, ctx),
    watch: properties.watch,
  });
}

/** The timedate plugin. */
export const timedatePlugin: TimedatePlugin = createTimedatePlugin();
