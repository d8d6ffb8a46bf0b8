import { interfaceNameProblem, lazySchema } from '@opdbus/core';
import { z } from 'zod';

/**
 * An OVSDB row name that ovs-vswitchd may turn into a file name (BRIDGE.mgmt and BRIDGE.snoop
 * sockets in its run directory) or a device name: never a path.
 */
const name = lazySchema(() =>
  z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^\s/]+$/, 'a name without spaces or "/"')
    .refine((value) => value !== '.' && value !== '..', 'a name, not "." or ".."'),
);

/**
 * Why an OVSDB connection target would name an unsafe path, or undefined: `unix:`/`punix:` take
 * a plain file name (in the OVS run directory) or a normalised absolute path, never `..`.
 */
export function targetPathProblem(target: string): string | undefined {
  const m = /^p?unix:(.*)$/.exec(target);
  if (m === null) return undefined;
  const path = m[1]!;
  if (path === '') return 'a unix socket target needs a path';
  if (!path.startsWith('/') && path.includes('/'))
    return 'a relative unix socket path is a plain file name (in the OVS run directory), or give an absolute path';
  const parts = path.split('/').slice(1);
  if (path.startsWith('/') && parts.some((p) => p === '' || p === '.' || p === '..'))
    return 'a unix socket path must be normalised: no empty, "." or ".." components';
  if (path === '.' || path === '..') return 'a unix socket path names a file, not "." or ".."';
  return undefined;
}

const target = lazySchema(() =>
  z
    .string()
    .min(1)
    .max(4096)
    .superRefine((value, ctx) => {
      const problem = targetPathProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }),
);

/** Interface types that are kernel devices: their names follow the kernel's rules. */
const deviceTypes = new Set([undefined, '', 'system', 'internal', 'tap']);

const state = lazySchema(() =>
  z
    .enum(['present', 'absent'])
    .describe(
      '`absent` removes it; the default is `present`. Nothing is removed because a document does not name it.',
    ),
);

/** A map column (other_config, external_ids, options): values are strings in OVSDB; `null` removes a key. */
const stringMap = lazySchema(() =>
  z
    .record(z.string().min(1), z.union([z.string(), z.number(), z.boolean(), z.null()]))
    .describe('Only the keys named are managed; a key set to null is removed. Values are stored as strings.'),
);

const vlan = lazySchema(() => z.number().int().min(0).max(4095));

/** An interface of a port (OVSDB table Interface). */
export const interfaceSchema = lazySchema(() =>
  z
    .strictObject({
      name,
      state: state.optional(),
      type: z
        .string()
        .regex(/^[a-z0-9_-]+$/)
        .describe(
          'Interface type: `system` (an existing network device, the default), `internal`, `tap`, `patch` (with `peer`), tunnels (`vxlan`, `geneve`, `gre`, `erspan`, `stt`, … with `options` such as remote_ip and key) or any type ovs-vswitchd lists in iface_types.',
        )
        .optional(),
      peer: name
        .describe('For a patch interface: the interface at the other end (sets options:peer).')
        .optional(),
      options: stringMap
        .describe('Type-specific options, e.g. remote_ip, key, dst_port for tunnels; null removes a key.')
        .optional(),
      mtu_request: z
        .number()
        .int()
        .min(68)
        .max(65535)
        .nullable()
        .describe('The MTU to request; null leaves it to OVS.')
        .optional(),
      mac: z
        .string()
        .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/)
        .nullable()
        .describe('The MAC address of an internal interface; null leaves it to OVS.')
        .optional(),
      ofport_request: z
        .number()
        .int()
        .min(1)
        .max(65279)
        .nullable()
        .describe('The OpenFlow port number to request.')
        .optional(),
      external_ids: stringMap.optional(),
      other_config: stringMap.optional(),
    })
    .describe('An interface of the port (OVSDB Interface).'),
);

/** A port of a bridge (OVSDB table Port); several interfaces make a bond. */
export const portSchema = lazySchema(() =>
  z
    .strictObject({
      name,
      state: state.optional(),
      tag: vlan.nullable().describe('Access VLAN (0-4095); null for none.').optional(),
      trunks: z.array(vlan).describe('VLANs a trunk port carries; [] for all.').optional(),
      vlan_mode: z
        .enum(['trunk', 'access', 'native-tagged', 'native-untagged', 'dot1q-tunnel'])
        .nullable()
        .optional(),
      bond_mode: z
        .enum(['balance-tcp', 'balance-slb', 'active-backup'])
        .nullable()
        .describe('For bonds (two or more interfaces).')
        .optional(),
      lacp: z.enum(['active', 'passive', 'off']).nullable().describe('LACP for bonds.').optional(),
      bond_updelay: z
        .number()
        .int()
        .min(0)
        .describe('Milliseconds before a bond member that came up is used.')
        .optional(),
      bond_downdelay: z
        .number()
        .int()
        .min(0)
        .describe('Milliseconds before a bond member that went down is dropped.')
        .optional(),
      other_config: stringMap.optional(),
      external_ids: stringMap.optional(),
      interfaces: z
        .array(interfaceSchema)
        .min(1)
        .describe(
          'Its interfaces, by name (default when creating: one system interface named like the port). Two or more make a bond.',
        )
        .optional(),
    })
    .describe('A port (OVSDB Port), by name; port names are unique across bridges.'),
);

/** An OpenFlow controller of a bridge (OVSDB table Controller). */
export const controllerSchema = lazySchema(() =>
  z
    .strictObject({
      target: target.describe('e.g. tcp:192.0.2.1:6653, ssl:…, punix:/run/…'),
      state: state.optional(),
      connection_mode: z.enum(['in-band', 'out-of-band']).nullable().optional(),
      max_backoff: z
        .number()
        .int()
        .min(1000)
        .nullable()
        .describe('Milliseconds between connection attempts, at most.')
        .optional(),
      inactivity_probe: z
        .number()
        .int()
        .min(0)
        .nullable()
        .describe('Milliseconds of silence before probing; 0 disables.')
        .optional(),
      other_config: stringMap.optional(),
      external_ids: stringMap.optional(),
    })
    .describe('An OpenFlow controller of the bridge (OVSDB Controller), by target.'),
);

/** An OVSDB manager (OVSDB table Manager, Open_vSwitch.manager_options). */
export const managerSchema = lazySchema(() =>
  z
    .strictObject({
      target: target.describe(
        'e.g. ptcp:6640:127.0.0.1 (ovsdb-server listens) or tcp:192.0.2.1:6640 (it connects out).',
      ),
      state: state.optional(),
      connection_mode: z.enum(['in-band', 'out-of-band']).nullable().optional(),
      max_backoff: z.number().int().min(1000).nullable().optional(),
      inactivity_probe: z.number().int().min(0).nullable().optional(),
      other_config: stringMap.optional(),
      external_ids: stringMap.optional(),
    })
    .describe('A remote of ovsdb-server (OVSDB Manager), by target. Removing one can cut remote management.'),
);

/** A bridge (OVSDB table Bridge). */
export const bridgeSchema = lazySchema(() =>
  z
    .strictObject({
      name,
      state: state.optional(),
      datapath_type: z
        .string()
        .regex(/^[a-z0-9_-]*$/)
        .describe('`system` (the kernel datapath, the default) or `netdev` (the userspace datapath).')
        .optional(),
      fail_mode: z
        .enum(['secure', 'standalone'])
        .nullable()
        .describe('What the bridge does without a controller; null: OVS default (standalone).')
        .optional(),
      stp: z.boolean().describe('Spanning tree (stp_enable).').optional(),
      protocols: z
        .array(z.enum(['OpenFlow10', 'OpenFlow11', 'OpenFlow12', 'OpenFlow13', 'OpenFlow14', 'OpenFlow15']))
        .describe('OpenFlow versions; [] for the default.')
        .optional(),
      other_config: stringMap.optional(),
      external_ids: stringMap.optional(),
      controllers: z
        .array(controllerSchema)
        .describe('OpenFlow controllers, by target; those not named are left alone.')
        .optional(),
      ports: z
        .array(portSchema)
        .describe(
          'Ports, by name. A new bridge also gets its local internal port named like the bridge, as ovs-vsctl add-br makes it.',
        )
        .optional(),
    })
    .describe('An Open vSwitch bridge (OVSDB Bridge), by name.'),
);

function duplicates(values: readonly string[]): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const v of values) (seen.has(v) ? dups : seen).add(v);
  return [...dups];
}

/** The zod schema of the `ovs` section. */
export const ovsSchema = lazySchema(() =>
  z
    .strictObject({
      bridges: z.array(bridgeSchema).describe('Bridges, by name; those not named are left alone.').optional(),
      managers: z
        .array(managerSchema)
        .describe(
          'Remotes of ovsdb-server (Open_vSwitch.manager_options), by target; those not named are left alone.',
        )
        .optional(),
    })
    .superRefine((section, ctx) => {
      const bridges = section.bridges ?? [];
      for (const dup of duplicates(bridges.map((b) => b.name)))
        ctx.addIssue({ code: 'custom', path: ['bridges'], message: `bridge ${dup} is named twice` });
      const portPlaces = new Map<string, string>();
      const interfaces = new Map<string, string>();
      for (const [b, bridge] of bridges.entries()) {
        // A bridge's local port is a kernel device (its internal interface, or a tap device of the
        // userspace datapath) named like the bridge.
        const bridgeProblem = interfaceNameProblem(bridge.name);
        if (bridgeProblem !== undefined)
          ctx.addIssue({ code: 'custom', path: ['bridges', b, 'name'], message: bridgeProblem });
        for (const [p, port] of (bridge.ports ?? []).entries()) {
          for (const [i, iface] of (port.interfaces ?? []).entries()) {
            const problem = deviceTypes.has(iface.type) ? interfaceNameProblem(iface.name) : undefined;
            if (problem !== undefined)
              ctx.addIssue({
                code: 'custom',
                path: ['bridges', b, 'ports', p, 'interfaces', i, 'name'],
                message: `${problem} (a ${iface.type ?? 'system'} interface is a kernel device)`,
              });
          }
        }
        for (const dup of duplicates((bridge.controllers ?? []).map((c) => c.target)))
          ctx.addIssue({
            code: 'custom',
            path: ['bridges', b, 'controllers'],
            message: `controller ${dup} is named twice`,
          });
        for (const [p, port] of (bridge.ports ?? []).entries()) {
          const other = portPlaces.get(port.name);
          if (other !== undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['bridges', b, 'ports', p, 'name'],
              message: `port ${port.name} is also named under bridge ${other}; port names are unique across bridges`,
            });
          portPlaces.set(port.name, bridge.name);
          for (const [i, iface] of (port.interfaces ?? []).entries()) {
            const owner = interfaces.get(iface.name);
            if (owner !== undefined)
              ctx.addIssue({
                code: 'custom',
                path: ['bridges', b, 'ports', p, 'interfaces', i, 'name'],
                message: `interface ${iface.name} is also named in port ${owner}; interface names are unique`,
              });
            interfaces.set(iface.name, port.name);
            if (iface.peer !== undefined && iface.type !== undefined && iface.type !== 'patch')
              ctx.addIssue({
                code: 'custom',
                path: ['bridges', b, 'ports', p, 'interfaces', i, 'peer'],
                message: `peer is for patch interfaces, but this one has type ${iface.type}`,
              });
          }
        }
      }
      for (const dup of duplicates((section.managers ?? []).map((m) => m.target)))
        ctx.addIssue({ code: 'custom', path: ['managers'], message: `manager ${dup} is named twice` });
    })
    .describe(
      'Open vSwitch over OVSDB (--ovsdb, default unix:/run/openvswitch/db.sock): bridges with their ports, interfaces and controllers, and managers.',
    ),
);

/** The `ovs` section of a state document. */
export type OvsSection = z.infer<typeof ovsSchema>;
/** A bridge of the `ovs` section. */
export type OvsBridge = z.infer<typeof bridgeSchema>;
/** A port of a bridge. */
export type OvsPort = z.infer<typeof portSchema>;
/** An interface of a port. */
export type OvsInterface = z.infer<typeof interfaceSchema>;
/** A controller of a bridge. */
export type OvsController = z.infer<typeof controllerSchema>;
/** A manager. */
export type OvsManager = z.infer<typeof managerSchema>;
/** A string map as a document gives it. */
export type StringMapSpec = z.infer<typeof stringMap>;
