import { interfaceNameProblem, lazySchema } from '@opdbus/core';
import { hasHostBits, isMac, tryParseCidr, tryParseIp } from '@opdbus/netlink';
import { z } from 'zod';

/** Link kinds the plugin can create (vlan, bond, dummy and ifb need their kernel modules). */
export const linkKinds = [
  'bridge',
  'veth',
  'vxlan',
  'macvlan',
  'macvtap',
  'tap',
  'tun',
  'dummy',
  'ifb',
  'vlan',
  'bond',
] as const;
/** A link kind. */
export type LinkKind = (typeof linkKinds)[number];

/** macvlan modes. */
export const macvlanModes = ['private', 'vepa', 'bridge', 'passthru', 'source'] as const;
/** bond modes. */
export const bondModes = [
  'balance-rr',
  'active-backup',
  'balance-xor',
  'broadcast',
  '802.3ad',
  'balance-tlb',
  'balance-alb',
] as const;
/** Address flags that can be declared. */
export const addressFlags = [
  'nodad',
  'noprefixroute',
  'homeaddress',
  'managetempaddr',
  'optimistic',
  'autojoin',
] as const;
/** Scope names (a number 0–255 is also accepted where a scope is). */
export const scopeNames = ['global', 'site', 'link', 'host', 'nowhere'] as const;
/** Route types. */
export const routeTypes = [
  'unicast',
  'local',
  'broadcast',
  'anycast',
  'multicast',
  'blackhole',
  'unreachable',
  'prohibit',
  'throw',
] as const;
/** Route protocol names (a number is also accepted). */
export const protocolNames = ['redirect', 'kernel', 'boot', 'static', 'ra', 'dhcp', 'bgp', 'ospf'] as const;

const ifname = lazySchema(() =>
  z
    .string()
    .superRefine((name, ctx) => {
      const problem = interfaceNameProblem(name);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .describe(
      'Interface name: 1 to 15 bytes, not "." or "..", no whitespace, "/" or ":" (as the kernel checks it).',
    ),
);
const ipAddress = lazySchema(() =>
  z.string().refine((v) => tryParseIp(v) !== undefined, {
    message: 'an IPv4 or IPv6 address, e.g. 10.0.0.254 or fd00::1',
  }),
);
const cidr = lazySchema(() =>
  z.string().refine((v) => v.includes('/') && tryParseCidr(v) !== undefined, {
    message: 'an address with its prefix length, e.g. 10.0.0.1/24 or fd00::1/64',
  }),
);
const mac = lazySchema(() =>
  z
    .string()
    .refine(isMac, { message: 'a MAC address, six hex pairs separated by colons, e.g. 02:00:00:00:00:01' }),
);
const lifetime = lazySchema(() => z.union([z.literal('forever'), z.number().int().min(0).max(0xfffffffe)]));
const scope = lazySchema(() => z.union([z.enum(scopeNames), z.number().int().min(0).max(255)]));

/** The other end of a veth: a name here, or a name in another namespace. */
export const peerSchema = lazySchema(() =>
  z.union([
    ifname.describe('The peer, in the same namespace.'),
    z
      .strictObject({
        name: ifname,
        netns: z
          .string()
          .min(1)
          .optional()
          .describe('Namespace of the peer: a name under /run/netns or a path. Omitted: this namespace.'),
      })
      .describe('The peer, possibly in another namespace.'),
  ]),
);

/** One link. */
export const linkSchema = lazySchema(() =>
  z
    .strictObject({
      name: ifname,
      kind: z
        .enum(linkKinds)
        .optional()
        .describe('What to create when the link does not exist. Omitted: the link must exist (e.g. a NIC).'),
      state: z
        .enum(['up', 'down', 'absent'])
        .optional()
        .describe(
          'Administrative state; `absent` deletes the link. Omitted: left as it is (created links start down).',
        ),
      mtu: z
        .number()
        .int()
        .min(1)
        .max(0x7fffffff)
        .optional()
        .describe("MTU in bytes (the kernel checks the link kind's range)."),
      mac: mac.optional().describe('Hardware address.'),
      master: ifname
        .nullable()
        .optional()
        .describe('The bridge (or bond) this link is a port of; `null` releases it.'),
      parent: ifname.optional().describe('Lower device of a vlan, macvlan or macvtap.'),
      peer: peerSchema.optional().describe('veth: the other end (created with it).'),
      bridge: z
        .strictObject({
          stp: z.boolean().optional().describe('Spanning tree (kernel STP).'),
          vlanFiltering: z.boolean().optional().describe('VLAN filtering (needs a kernel built with it).'),
          forwardDelay: z.number().min(0).max(300).optional().describe('Seconds.'),
          priority: z.number().int().min(0).max(65535).optional().describe('Bridge priority (STP).'),
        })
        .optional()
        .describe('Bridge options.'),
      vxlan: z
        .strictObject({
          id: z.number().int().min(0).max(16777215).describe('VNI.'),
          local: ipAddress.optional().describe('Source address.'),
          remote: ipAddress.optional().describe('Unicast remote.'),
          group: ipAddress.optional().describe('Multicast group (needs `dev`).'),
          port: z.number().int().min(1).max(65535).optional().describe('UDP destination port. Default 4789.'),
          dev: ifname.optional().describe('Underlying device.'),
          ttl: z.number().int().min(0).max(255).optional().describe('TTL of the outer packets (0: inherit).'),
          learning: z.boolean().optional().describe('Learn remote MAC addresses from received packets.'),
        })
        .optional()
        .describe('VXLAN options (required to create a vxlan).'),
      macvlan: z
        .strictObject({
          mode: z.enum(macvlanModes).describe('How macvlans on the same parent reach each other.'),
        })
        .optional()
        .describe('macvlan/macvtap options.'),
      vlan: z
        .strictObject({
          id: z.number().int().min(0).max(4094).describe('VLAN id.'),
          protocol: z.enum(['802.1Q', '802.1ad']).optional().describe('Default 802.1Q.'),
        })
        .optional()
        .describe('VLAN options (required to create a vlan; needs the 8021q module).'),
      bond: z
        .strictObject({
          mode: z.enum(bondModes).describe('Bonding mode.'),
          miimon: z.number().int().min(0).optional().describe('Link monitoring interval in ms.'),
        })
        .optional()
        .describe('Bond options (needs the bonding module).'),
      tap: z
        .strictObject({
          owner: z.number().int().min(0).optional().describe('Owner uid.'),
          group: z.number().int().min(0).optional().describe('Owner gid.'),
          multiQueue: z.boolean().optional().describe('Several queues (IFF_MULTI_QUEUE).'),
        })
        .optional()
        .describe('tap/tun options.'),
    })
    .describe('A network link (interface).'),
);

/** One address. */
export const addressSchema = lazySchema(() =>
  z
    .strictObject({
      link: ifname.describe('The link the address is on.'),
      address: cidr.describe('Address and prefix length, e.g. 10.0.0.1/24.'),
      state: z
        .enum(['present', 'absent'])
        .optional()
        .describe('`absent` removes the address. Default present.'),
      scope: scope
        .optional()
        .describe('global, site, link, host or a number. Default: host for 127.0.0.0/8, else global.'),
      broadcast: ipAddress.optional().describe('IPv4 broadcast address.'),
      label: z.string().min(1).max(15).optional().describe('IPv4 label (default: the link name).'),
      peer: ipAddress.optional().describe('Point-to-point peer address.'),
      flags: z.array(z.enum(addressFlags)).optional().describe('Address flags to set.'),
      validLifetime: lifetime.optional().describe('Seconds or `forever`.'),
      preferredLifetime: lifetime.optional().describe('Seconds or `forever`.'),
      metric: z.number().int().min(0).max(0xffffffff).optional().describe('Metric of the prefix route.'),
    })
    .describe('An interface address.'),
);

/** One next hop of a multipath route. */
export const nexthopSchema = lazySchema(() =>
  z.strictObject({
    via: ipAddress.optional().describe('Gateway of this next hop.'),
    dev: ifname.optional().describe('Outgoing link of this next hop.'),
    weight: z.number().int().min(1).max(256).optional().describe('Relative weight (default 1).'),
    onlink: z.boolean().optional().describe('Treat the gateway as on link.'),
  }),
);

/** One route. */
export const routeSchema = lazySchema(() =>
  z
    .strictObject({
      to: z
        .string()
        .refine((v) => v === 'default' || tryParseCidr(v) !== undefined, {
          message: 'a destination prefix (10.9.0.0/16, fd00::/64), a host address, or `default`',
        })
        .describe(
          'Destination prefix, a host address, or `default` (IPv4 unless `via` is IPv6; `::/0` for IPv6).',
        ),
      via: ipAddress.optional().describe('Gateway.'),
      dev: ifname.optional().describe('Outgoing link.'),
      metric: z
        .number()
        .int()
        .min(0)
        .max(0xffffffff)
        .optional()
        .describe("Metric (priority). Part of the route's identity. Default 0 for IPv4, 1024 for IPv6."),
      table: z
        .union([z.enum(['main', 'local', 'default']), z.number().int().min(1).max(0xffffffff)])
        .optional()
        .describe("Routing table. Default main (254). Part of the route's identity."),
      scope: scope
        .optional()
        .describe('Default: link for a unicast route without gateway, host for local, else global.'),
      type: z.enum(routeTypes).optional().describe('Default unicast.'),
      protocol: z
        .union([z.enum(protocolNames), z.number().int().min(0).max(255)])
        .optional()
        .describe('Who owns the route (default static when created).'),
      src: ipAddress.optional().describe('Preferred source address.'),
      onlink: z.boolean().optional().describe('Treat the gateway as on link (no route to it needed).'),
      nexthops: z.array(nexthopSchema).min(1).optional().describe('Multipath: several next hops.'),
      mtu: z.number().int().min(68).max(65535).optional().describe('Path MTU (route metric).'),
      advmss: z.number().int().min(1).optional().describe('Advertised MSS (route metric).'),
      state: z
        .enum(['present', 'absent'])
        .optional()
        .describe('`absent` removes the route. Default present.'),
    })
    .describe('A route.'),
);

/** A link as declared or observed. */
export type LinkEntry = z.infer<typeof linkSchema>;
/** An address as declared or observed. */
export type AddressEntry = z.infer<typeof addressSchema>;
/** A route as declared or observed. */
export type RouteEntry = z.infer<typeof routeSchema>;
/** One next hop. */
export type NexthopEntry = z.infer<typeof nexthopSchema>;

/**
 * The values of the network plugin's changes: a link entry (`link/NAME`), an address entry
 * (`address/LINK/CIDR`) or a route entry (`route/...`), as the document declares it (`after`) or
 * as it was observed (`before`) — which one, the change's resource says.
 */
export type NetworkValue = LinkEntry | AddressEntry | RouteEntry;

function checkSection(section: NetworkSection, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => {
    ctx.addIssue({ code: 'custom', path, message });
  };
  const links = new Map<string, number>();
  for (const [i, link] of (section.links ?? []).entries()) {
    const first = links.get(link.name);
    if (first !== undefined)
      issue(
        ['links', i, 'name'],
        `link "${link.name}" is already declared at links[${first}]; declare each link once`,
      );
    else links.set(link.name, i);
    if (link.state === 'absent') continue;
    if (link.kind === 'vxlan' && link.vxlan === undefined)
      issue(['links', i, 'vxlan'], 'a vxlan link needs `vxlan: { id: ... }`');
    if (link.vxlan !== undefined && link.kind !== undefined && link.kind !== 'vxlan')
      issue(['links', i, 'vxlan'], `vxlan options on a ${link.kind} link; remove them or set kind: vxlan`);
    if (link.vlan !== undefined && link.kind !== undefined && link.kind !== 'vlan')
      issue(['links', i, 'vlan'], `vlan options on a ${link.kind} link`);
    if (link.peer !== undefined && link.kind !== undefined && link.kind !== 'veth')
      issue(['links', i, 'peer'], `a peer on a ${link.kind} link; only veth links have a peer`);
    if (link.master !== undefined && link.master !== null && link.master === link.name)
      issue(['links', i, 'master'], 'a link cannot be its own master');
    const peerName =
      typeof link.peer === 'string'
        ? link.peer
        : link.peer?.netns === undefined
          ? link.peer?.name
          : undefined;
    if (peerName === link.name) issue(['links', i, 'peer'], 'a veth cannot be its own peer');
  }
  const absentLinks = new Set((section.links ?? []).filter((l) => l.state === 'absent').map((l) => l.name));
  const addresses = new Map<string, number>();
  for (const [i, a] of (section.addresses ?? []).entries()) {
    const c = tryParseCidr(a.address);
    const key = `${a.link} ${c === undefined ? a.address : `${String(c.bytes)}/${c.prefixLength}`}`;
    const first = addresses.get(key);
    if (first !== undefined)
      issue(['addresses', i], `address ${a.address} on ${a.link} is already declared at addresses[${first}]`);
    else addresses.set(key, i);
    if (a.state !== 'absent' && absentLinks.has(a.link))
      issue(
        ['addresses', i, 'link'],
        `link "${a.link}" is declared absent; an address on it cannot be present`,
      );
    if (a.broadcast !== undefined && c?.family === 6)
      issue(['addresses', i, 'broadcast'], 'IPv6 addresses have no broadcast address');
  }
  const routes = new Map<string, number>();
  for (const [i, r] of (section.routes ?? []).entries()) {
    const path = ['routes', i];
    if (r.to !== 'default') {
      const c = tryParseCidr(r.to);
      if (c !== undefined && hasHostBits(c))
        issue([...path, 'to'], `${r.to} has host bits set; write the network (e.g. 10.9.0.0/16)`);
    }
    if (
      r.state !== 'absent' &&
      (r.type ?? 'unicast') === 'unicast' &&
      r.via === undefined &&
      r.dev === undefined &&
      r.nexthops === undefined
    )
      issue(path, 'a unicast route needs `via`, `dev` or `nexthops`');
    if (r.via !== undefined && r.nexthops !== undefined)
      issue(path, 'give either `via` or `nexthops`, not both');
    const key = `${r.to}|${String(r.table ?? 'main')}|${String(r.metric ?? '')}`;
    const first = routes.get(key);
    if (first !== undefined)
      issue(path, `this route (to, table, metric) is already declared at routes[${first}]`);
    else routes.set(key, i);
    if (r.state !== 'absent' && r.dev !== undefined && absentLinks.has(r.dev))
      issue([...path, 'dev'], `link "${r.dev}" is declared absent; a route through it cannot be present`);
  }
}

const sectionObject = lazySchema(() =>
  z.strictObject({
    links: z
      .array(linkSchema)
      .optional()
      .describe('Links (interfaces): created, changed or deleted by name.'),
    addresses: z
      .array(addressSchema)
      .optional()
      .describe('Interface addresses, identified by link and address/prefix.'),
    routes: z
      .array(routeSchema)
      .optional()
      .describe('Routes, identified by destination, table and metric (as the kernel identifies them).'),
  }),
);

/** The `network` section. */
export type NetworkSection = z.infer<typeof sectionObject>;

/** The zod schema of the `network` section. */
export const networkSchema: z.ZodType<NetworkSection> = lazySchema(() =>
  sectionObject
    .superRefine(checkSection)
    .describe(
      'Links, addresses and routes over rtnetlink. Only what is named is managed; `state: absent` removes.',
    ),
);
