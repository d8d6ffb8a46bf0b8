import { definePlugin, lazySchema, packageVersion, type Plugin } from '@opdbus/core';
import {
  Hostname1,
  definePropertyMap,
  probeService,
  type MappedProperty,
  type PropertyCheckpoint,
  type PropertyValue,
} from '@opdbus/dbus';
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
export const hostnameSchema: z.ZodType<HostnameSection> = lazySchema(() =>
  z
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
      chassis: z
        .enum(chassisTypes)
        .optional()
        .describe('The chassis type; "" goes back to the detected one.'),
      deployment: z
        .string()
        .regex(/^[A-Za-z0-9.:-]*$/, 'letters, digits, ".", ":", "-", e.g. production')
        .optional()
        .describe('The deployment environment, e.g. production.'),
      location: z.string().optional().describe('Where the machine is, free text.'),
      iconName: z.string().optional().describe('The icon name (XDG icon naming).'),
    })
    .describe('Host names and machine information, through systemd-hostnamed (org.freedesktop.hostname1).'),
);

/** The checkpoint: the values of the fields a plan changes. */
export type HostnameCheckpoint = PropertyCheckpoint;

/** The value of a hostname change (its resource is the field, e.g. `static`): the field's text. */
export type HostnameValue = PropertyValue<HostnameSection>;

/** The hostname plugin, typed: its section, checkpoint and change values. */
export type HostnamePlugin = Plugin<HostnameSection, HostnameCheckpoint, HostnameValue>;

type Setter =
  'setStaticHostname' | 'setPrettyHostname' | 'setChassis' | 'setDeployment' | 'setLocation' | 'setIconName';
const field = (property: string, method: Setter): MappedProperty<string> => ({
  property,
  write: (bus, value) => new Hostname1(bus)[method](value, false),
});

/** The section's fields as hostnamed's properties. */
const properties = definePropertyMap<HostnameSection>({
  plugin: 'hostname',
  service: 'systemd-hostnamed',
  writeError: 'OPDBUS_ERR_HOSTNAME_SET',
  fields: {
    static: field('StaticHostname', 'setStaticHostname'),
    pretty: field('PrettyHostname', 'setPrettyHostname'),
    chassis: field('Chassis', 'setChassis'),
    deployment: field('Deployment', 'setDeployment'),
    location: field('Location', 'setLocation'),
    iconName: field('IconName', 'setIconName'),
  },
  readAll: (bus) => new Hostname1(bus).getAll(),
  onPropertiesChanged: (bus, listener) => new Hostname1(bus).onPropertiesChanged(listener),
});

/**
 * The hostname plugin: static and pretty hostname, chassis, deployment, location and icon name,
 * through systemd-hostnamed on the target bus (`ctx.target.busAddress`, else the system bus).
 * `watch` follows hostnamed's PropertiesChanged.
 */
export function createHostnamePlugin(): HostnamePlugin {
  return definePlugin<HostnameSection, HostnameCheckpoint, HostnameValue>({
    name: 'hostname',
    version: packageVersion(import.meta.url),
    description: 'Static and pretty hostname, chassis, deployment, location (systemd-hostnamed).',
    schema: hostnameSchema,
    probe: (ctx) => probeService(ctx, 'systemd-hostnamed', (bus) => new Hostname1(bus).get('StaticHostname')),
    query: properties.query,
    diff: properties.diff,
    apply: properties.apply,
    checkpoint: properties.checkpoint,
    restore: properties.restore,
    watch: properties.watch,
  });
}

/** The hostname plugin. */
export const hostnamePlugin: HostnamePlugin = createHostnamePlugin();
