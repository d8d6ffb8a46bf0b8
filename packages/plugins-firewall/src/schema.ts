// The zod schemas of the firewall section's entries (tables, chains, sets, rules) and their types.
// The section's own schema, which also checks every entry's nftables encoding, is sectionSchema.ts.
import { lazySchema } from '@opdbus/core';
import type { NftExpr } from '@opdbus/nftables';
import { z } from 'zod';

/** nftables address families. */
export const families = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'] as const;
/** Hook names of base chains. */
export const hookNames = [
  'prerouting',
  'input',
  'forward',
  'output',
  'postrouting',
  'ingress',
  'egress',
] as const;
/** Set key types. */
export const setKeyTypes = [
  'ipv4_addr',
  'ipv6_addr',
  'ether_addr',
  'inet_proto',
  'inet_service',
  'mark',
  'ifname',
] as const;
/** Set flags. */
export const setFlags = ['constant', 'interval', 'timeout', 'dynamic'] as const;

const name = lazySchema(() =>
  z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^\s"]+$/, 'a name without whitespace or quotes'),
);
const scalar = lazySchema(() => z.union([z.string(), z.number().int().min(0)]));
const matchValue = lazySchema(() =>
  z
    .union([
      scalar,
      z.array(scalar).min(1),
      z.strictObject({ not: z.union([scalar, z.array(scalar).min(1)]) }).describe('A negation (nft `!=`).'),
    ])
    .describe(
      'A value as nft writes it (`10.0.0.0/8`, `10.0.0.1-10.0.0.9`, `22`, `1000-2000`, `eth*`, `established,related`), a list (an anonymous set), `@name` (a named set), or `{ not: … }`.',
    ),
);

const portMatch = lazySchema(() =>
  z.strictObject({ sport: matchValue.optional(), dport: matchValue.optional() }),
);
const icmpMatch = lazySchema(() => z.strictObject({ type: matchValue.optional() }));

/** What a rule matches (every condition must hold). */
export const matchSchema = lazySchema(() =>
  z
    .strictObject({
      iif: matchValue
        .optional()
        .describe('Input interface by name (meta iif; it must exist when the rule is written).'),
      iifname: matchValue
        .optional()
        .describe('Input interface name, or a prefix such as `eth*` (meta iifname).'),
      oif: matchValue.optional().describe('Output interface by name (meta oif).'),
      oifname: matchValue.optional().describe('Output interface name or prefix (meta oifname).'),
      nfproto: matchValue.optional().describe('`ipv4` or `ipv6` (meta nfproto).'),
      l4proto: matchValue
        .optional()
        .describe('Transport protocol: `tcp`, `udp`, `icmp`, `ipv6-icmp`, a number (meta l4proto).'),
      mark: matchValue.optional().describe('Packet mark (meta mark).'),
      ip: z
        .strictObject({
          saddr: matchValue.optional(),
          daddr: matchValue.optional(),
          protocol: matchValue.optional(),
        })
        .optional()
        .describe('IPv4 header: addresses, prefixes, ranges, sets; protocol.'),
      ip6: z
        .strictObject({
          saddr: matchValue.optional(),
          daddr: matchValue.optional(),
          nexthdr: matchValue.optional(),
        })
        .optional()
        .describe('IPv6 header.'),
      tcp: portMatch.optional().describe('TCP ports (numbers, service names, ranges, sets).'),
      udp: portMatch.optional().describe('UDP ports.'),
      icmp: icmpMatch.optional().describe('ICMP type (`echo-request` …).'),
      icmpv6: icmpMatch.optional().describe('ICMPv6 type (`nd-neighbor-solicit` …).'),
      ct: z
        .strictObject({
          state: matchValue.optional(),
          status: matchValue.optional(),
          mark: matchValue.optional(),
        })
        .optional()
        .describe(
          'Connection tracking: state (`established,related`, `new`, `invalid`), status (`dnat`, `snat` …), mark.',
        ),
    })
    .describe('Conditions, all of which must hold; written in this order with the dependencies nft adds.'),
);

/** The options every NAT statement takes (a shape, built with the statement schema). */
const natOptions = () => ({
  random: z.boolean().optional(),
  fullyRandom: z.boolean().optional(),
  persistent: z.boolean().optional(),
});
const logLevels = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug', 'audit'] as const;

/** One statement of a rule. */
export const statementSchema = lazySchema(() =>
  z
    .union([
      z.literal('counter'),
      z.literal('log'),
      z.literal('masquerade'),
      z.strictObject({
        log: z.strictObject({
          prefix: z.string().max(127).optional(),
          level: z.enum(logLevels).optional(),
          group: z.number().int().min(0).max(65535).optional(),
          snaplen: z.number().int().min(0).optional(),
          queueThreshold: z.number().int().min(0).max(65535).optional(),
        }),
      }),
      z.strictObject({
        limit: z.strictObject({
          rate: z.number().int().positive(),
          per: z.enum(['second', 'minute', 'hour', 'day', 'week']),
          unit: z.enum(['packets', 'bytes', 'kbytes', 'mbytes']).optional(),
          burst: z.number().int().min(0).optional(),
          over: z.boolean().optional(),
        }),
      }),
      z.strictObject({ masquerade: z.strictObject({ ...natOptions(), port: scalar.optional() }) }),
      z.strictObject({ redirect: z.strictObject({ ...natOptions(), port: scalar.optional() }) }),
      z.strictObject({
        snat: z.strictObject({ ...natOptions(), to: z.string(), family: z.enum(['ip', 'ip6']).optional() }),
      }),
      z.strictObject({
        dnat: z.strictObject({ ...natOptions(), to: z.string(), family: z.enum(['ip', 'ip6']).optional() }),
      }),
      z.strictObject({ mark: z.strictObject({ set: scalar }) }),
    ])
    .describe(
      '`counter`, `log`, `masquerade`, or one of `{ log }`, `{ limit }`, `{ masquerade }`, `{ redirect }`, `{ snat: { to } }`, `{ dnat: { to } }`, `{ mark: { set } }`; applied in order.',
    ),
);

const chainName = lazySchema(() => name.describe('A chain in the same table.'));

/** How a rule ends. */
export const verdictSchema = lazySchema(() =>
  z
    .union([
      z.enum(['accept', 'drop', 'return', 'continue', 'reject']),
      z.strictObject({ jump: chainName }),
      z.strictObject({ goto: chainName }),
      z.strictObject({
        reject: z.strictObject({
          type: z.enum(['tcp-reset', 'icmp', 'icmpv6', 'icmpx']),
          code: scalar.optional(),
        }),
      }),
    ])
    .describe(
      '`accept`, `drop`, `return`, `continue`, `reject`, `{ jump: CHAIN }`, `{ goto: CHAIN }`, `{ reject: { type, code } }`.',
    ),
);

/** A rule. */
export const ruleSchema = lazySchema(() =>
  z
    .strictObject({
      name: z
        .string()
        .min(1)
        .max(128)
        .optional()
        .describe(
          "The rule's stable name in its chain, stored as its comment: it keeps the rule's identity so diffs are minimal.",
        ),
      match: matchSchema.optional(),
      statements: z.array(statementSchema).optional(),
      verdict: verdictSchema.optional(),
      expr: z
        .array(z.looseObject({ type: z.string() }) as unknown as z.ZodType<NftExpr>)
        .optional()
        .describe(
          'The exact nf_tables expressions, for rules the readable form does not cover (query shows them so); excludes match, statements and verdict.',
        ),
    })
    .describe('A rule: matches, then statements in order, then the verdict.'),
);

const setElement = lazySchema(() =>
  z.union([
    scalar,
    z.array(scalar).min(2),
    z.strictObject({
      key: z.union([scalar, z.array(scalar).min(2)]),
      value: z.union([scalar, verdictSchema]).optional().describe("A map's value."),
      timeout: z.string().optional(),
      comment: z.string().max(200).optional(),
    }),
  ]),
);

const absent = lazySchema(() =>
  z
    .literal('absent')
    .optional()
    .describe('`absent` removes it (with everything in it); omitted, it is present.'),
);

/** A named set or map. */
export const setSchema = lazySchema(() =>
  z
    .strictObject({
      name,
      state: absent,
      type: z
        .union([z.enum(setKeyTypes), z.array(z.enum(setKeyTypes)).min(2)])
        .optional()
        .describe('The key type, or several for a concatenation. Required to create the set.'),
      map: z
        .enum([...setKeyTypes, 'verdict'])
        .optional()
        .describe('A map: the type of its values.'),
      flags: z.array(z.enum(setFlags)).optional(),
      timeout: z.string().optional().describe('Default element timeout (`1h`, `30m`, `2d`).'),
      gcInterval: z.string().optional(),
      size: z.number().int().positive().optional(),
      policy: z.enum(['performance', 'memory']).optional(),
      comment: z.string().max(200).optional(),
      elements: z
        .array(setElement)
        .optional()
        .describe(
          'When given, exactly these elements (others are removed): `10.0.0.0/8`, `1.2.3.4`, `22`, `1000-2000`, `[10.0.0.1, 22]` for a concatenation, `{ key, value, timeout, comment }`.',
        ),
    })
    .describe('A named set or map.'),
);

/** A chain. */
export const chainSchema = lazySchema(() =>
  z
    .strictObject({
      name,
      state: absent,
      type: z
        .enum(['filter', 'nat', 'route'])
        .optional()
        .describe('Base chains: filter (default), nat or route.'),
      hook: z.enum(hookNames).optional().describe('Base chains: the netfilter hook.'),
      priority: z
        .union([z.number().int(), z.string()])
        .optional()
        .describe(
          'Base chains: a number or a standard name (`filter`, `raw`, `mangle`, `dstnat`, `srcnat`, `security`, `filter + 10`).',
        ),
      policy: z
        .enum(['accept', 'drop'])
        .optional()
        .describe('Base chains: what happens at the end (default accept).'),
      devices: z.array(z.string()).optional().describe('netdev (and inet ingress) chains: the devices.'),
      comment: z.string().max(200).optional(),
      rules: z
        .array(ruleSchema)
        .optional()
        .describe(
          'When given, exactly these rules in this order (others are removed); omitted, the rules are left alone.',
        ),
    })
    .describe('A chain: a base chain (hook) or a regular chain (a jump target).'),
);

/** A table. */
export const tableSchema = lazySchema(() =>
  z
    .strictObject({
      family: z.enum(families),
      name,
      state: absent,
      comment: z.string().max(200).optional(),
      dormant: z.boolean().optional().describe('A dormant table keeps its chains unhooked.'),
      chains: z
        .array(chainSchema)
        .optional()
        .describe('Chains this document manages (others in the table are left alone).'),
      sets: z.array(setSchema).optional().describe('Sets and maps this document manages.'),
    })
    .describe('An nftables table.'),
);

/** A rule of the section. */
export type RuleEntry = z.infer<typeof ruleSchema>;
/** A set of the section. */
export type SetEntry = z.infer<typeof setSchema>;
/** A chain of the section. */
export type ChainEntry = z.infer<typeof chainSchema>;
/** A table of the section. */
export type TableEntry = z.infer<typeof tableSchema>;

/** The firewall section: the tables it names. */
export interface FirewallSection {
  tables?: TableEntry[];
}
