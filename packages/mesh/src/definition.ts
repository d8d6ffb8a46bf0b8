import { OpdbusError, formatPath } from '@opdbus/core';
import {
  canonicalNetwork,
  hasHostBits,
  parseCidr,
  prefixContains,
  tryParseCidr,
  tryParseIp,
} from '@opdbus/netlink';
import { canonicalEndpoint, isEndpoint } from '@opdbus/plugins-wireguard';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** Mesh and node names: lowercase letters, digits and dashes. */
export const meshNamePattern = /^[a-z0-9][a-z0-9-]{0,30}$/;
/** Node names: letters, digits, `.`, `_`, `-`. */
export const nodeNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const prefix = (what: string) =>
  z.string().refine((v) => tryParseCidr(v) !== undefined && v.includes('/'), {
    message: `${what}: a prefix such as 10.99.0.0/24 or fd99::/64`,
  });

const ifname = z.string().regex(/^[^\s/:]{1,15}$/, 'an interface name of at most 15 characters');

/** A node as the definition declares it ahead of its enrollment. */
export const meshNodeSchema = z
  .strictObject({
    name: z.string().regex(nodeNamePattern, 'letters, digits, ".", "_" and "-", at most 63 characters'),
    endpoint: z
      .string()
      .refine(isEndpoint, { message: 'ADDRESS:PORT with an IP address, e.g. 192.0.2.1:51820' })
      .optional()
      .describe('Where the other nodes reach it (IP:PORT). Omitted: it initiates (behind NAT).'),
    address: z
      .string()
      .refine((v) => tryParseIp(v) !== undefined, { message: 'an IP address in the pool' })
      .optional()
      .describe('Its mesh address. Omitted: the lowest free address of the pool.'),
    subnets: z
      .array(prefix('a subnet'))
      .optional()
      .describe('Networks behind it (e.g. its container bridge), routed to it over the mesh.'),
    interface: ifname.optional().describe("Its WireGuard interface, when not the mesh's."),
  })
  .describe('A mesh node declared ahead of its enrollment.');

/** A mesh definition: what the operator writes for `opdbus mesh init`. */
export const meshDefinitionSchema = z
  .strictObject({
    name: z.string().regex(meshNamePattern, 'lowercase letters, digits and "-", at most 31 characters'),
    pool: prefix('the address pool').describe('The mesh addresses are taken from here.'),
    topology: z
      .enum(['full', 'hub-and-spoke'])
      .optional()
      .describe('full: every node peers with every other. hub-and-spoke: spokes peer with the hub only.'),
    hub: z.string().regex(nodeNamePattern).optional().describe('The hub node (hub-and-spoke).'),
    interface: ifname
      .optional()
      .describe('The WireGuard interface on every node (default `wg-NAME`, cut to 15 characters).'),
    listenPort: z.number().int().min(1).max(65535).optional().describe('Default listen port (51820).'),
    keepalive: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .optional()
      .describe('Persistent keepalive in seconds (default 25).'),
    mtu: z.number().int().min(1280).max(65535).optional().describe('MTU of the interface (default 1420).'),
    nodes: z.array(meshNodeSchema).optional().describe('Nodes declared ahead; others join with a token.'),
  })
  .describe('A WireGuard mesh: its pool, topology and nodes.');

/** A mesh definition as written. */
export type MeshDefinitionInput = z.infer<typeof meshDefinitionSchema>;
/** A node as declared. */
export type MeshNodeInput = z.infer<typeof meshNodeSchema>;

/** A mesh definition with its defaults filled in. */
export interface MeshSettings {
  name: string;
  /** Canonical network, e.g. `10.99.0.0/24`. */
  pool: string;
  topology: 'full' | 'hub-and-spoke';
  hub?: string;
  interface: string;
  listenPort: number;
  keepalive: number;
  mtu: number;
}

function invalid(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_MESH_INVALID', message, { data });
}

/** The default interface of a mesh: `wg-NAME`, at most 15 characters. */
export function defaultInterface(name: string): string {
  return `wg-${name}`.slice(0, 15);
}

/** A canonical subnet (network form); throws `OPDBUS_ERR_MESH_INVALID` for host bits. */
export function canonicalSubnet(text: string, where: string): string {
  const c = tryParseCidr(text);
  if (c === undefined || !text.includes('/'))
    throw invalid(`${where}: "${text}" is not a prefix such as 10.200.1.0/24.`);
  if (hasHostBits(c))
    throw invalid(`${where}: ${text} has host bits set; write the network (${canonicalNetwork(text)}).`);
  return canonicalNetwork(text);
}

/** Whether an address lies in the pool. */
export function inPool(pool: string, address: string): boolean {
  const ip = tryParseIp(address);
  return ip !== undefined && prefixContains(parseCidr(pool), ip);
}

/**
 * Validate a definition (schema and cross-field rules: the hub is a node, addresses in the pool
 * and unique, names unique) and fill in defaults. `source` names the file in messages.
 */
export function resolveDefinition(
  input: unknown,
  source = 'mesh definition',
): { settings: MeshSettings; nodes: MeshNodeInput[] } {
  const parsed = meshDefinitionSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(`${source}: ${formatPath(issue.path) || '(top)'}: ${issue.message}.`, {
      path: formatPath(issue.path),
    });
  }
  const d = parsed.data;
  const pool = canonicalSubnet(d.pool, `${source}: pool`);
  const c = parseCidr(pool);
  if (c.prefixLength > (c.family === 4 ? 30 : 126))
    throw invalid(`${source}: pool ${pool} is too small for a mesh; use a /30 or larger (a /24 is usual).`);
  const nodes = d.nodes ?? [];
  const names = new Set<string>();
  const addresses = new Set<string>();
  for (const [i, n] of nodes.entries()) {
    const where = `${source}: nodes[${i}]`;
    if (names.has(n.name)) throw invalid(`${where}: node "${n.name}" is declared twice.`);
    names.add(n.name);
    if (n.address !== undefined) {
      if (!inPool(pool, n.address))
        throw invalid(`${where}.address: ${n.address} is not in the pool ${pool}.`);
      if (addresses.has(n.address)) throw invalid(`${where}.address: ${n.address} is given to two nodes.`);
      addresses.add(n.address);
    }
    if (n.endpoint !== undefined) n.endpoint = canonicalEndpoint(n.endpoint);
    n.subnets = (n.subnets ?? []).map((s, j) => canonicalSubnet(s, `${where}.subnets[${j}]`));
  }
  const topology = d.topology ?? 'full';
  if (topology === 'hub-and-spoke') {
    if (d.hub === undefined) throw invalid(`${source}: a hub-and-spoke mesh needs \`hub: NODE\`.`);
    if (!names.has(d.hub)) throw invalid(`${source}: hub "${d.hub}" is not one of the declared nodes.`);
  } else if (d.hub !== undefined) throw invalid(`${source}: \`hub\` is only for topology hub-and-spoke.`);
  const settings: MeshSettings = {
    name: d.name,
    pool,
    topology,
    interface: d.interface ?? defaultInterface(d.name),
    listenPort: d.listenPort ?? 51820,
    keepalive: d.keepalive ?? 25,
    mtu: d.mtu ?? 1420,
  };
  if (d.hub !== undefined) settings.hub = d.hub;
  return { settings, nodes };
}

/** Parse a definition file's text (YAML or JSON). */
export function parseDefinition(
  text: string,
  source: string,
): { settings: MeshSettings; nodes: MeshNodeInput[] } {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw invalid(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  return resolveDefinition(value, source);
}
