/**
 * Whole tables in readable form: reading them from the kernel, and the kernel chain of a
 * readable chain (hook numbers, priority names).
 */
import { Rtnetlink } from '@opdbus/netlink';
import type { NftClient, NftRuleset, NftTableRef } from '../client.js';
import { NF_ARP_HOOK, NF_INET_HOOK, NF_NETDEV_HOOK, NFT_TABLE_F } from '../constants.js';
import { invalid } from '../errors.js';
import type { NftChain, NftFamily, NftHook } from '../wire.js';
import { decompileRule, type InterfaceResolver } from './rules.js';
import { elementCodec, elementsFromNft, setFromNft } from './sets.js';
import type { ChainSpec, HookName, Rule, SetSpec, TableSpec } from './types.js';

/** Hook numbers by family. */
function hooksOf(family: NftFamily): Readonly<Record<string, number>> {
  if (family === 'netdev') return NF_NETDEV_HOOK;
  if (family === 'arp') return NF_ARP_HOOK;
  return NF_INET_HOOK;
}

/** Standard priority names (nft's), by family. */
function prioritiesOf(family: NftFamily): Readonly<Record<string, number>> {
  if (family === 'bridge') return { dstnat: -300, filter: -200, out: 100, srcnat: 300 };
  return { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };
}

/** A priority written as a number, a name, or `name + n` / `name - n`. */
export function parsePriority(family: NftFamily, p: number | string): number {
  if (typeof p === 'number') return p;
  if (/^-?\d+$/.test(p.trim())) return Number(p);
  const m = /^([a-z]+)\s*(?:([+-])\s*(\d+))?$/.exec(p.trim());
  const base = m === null ? undefined : prioritiesOf(family)[m[1]!];
  if (m === null || base === undefined)
    throw invalid(
      `"${p}" is not a chain priority; use a number or one of ${Object.keys(prioritiesOf(family)).join(', ')} (optionally "+ N" / "- N").`,
    );
  return base + (m[2] === undefined ? 0 : (m[2] === '-' ? -1 : 1) * Number(m[3]));
}

/** The kernel chain attributes of a readable chain. */
export function chainToNft(
  family: NftFamily,
  table: string,
  spec: ChainSpec,
): {
  table: string;
  name: string;
  type?: string;
  hook?: NftHook;
  policy?: 'accept' | 'drop';
  comment?: string;
} {
  const out: {
    table: string;
    name: string;
    type?: string;
    hook?: NftHook;
    policy?: 'accept' | 'drop';
    comment?: string;
  } = {
    table,
    name: spec.name,
  };
  if (spec.hook !== undefined) {
    const hooknum = hooksOf(family)[spec.hook];
    if (hooknum === undefined)
      throw invalid(
        `Chain ${spec.name}: ${family} tables have no ${spec.hook} hook (they have ${Object.keys(hooksOf(family)).join(', ')}).`,
      );
    out.hook = { hooknum, priority: parsePriority(family, spec.priority ?? 0) };
    if (spec.devices !== undefined && spec.devices.length > 0) out.hook.devices = [...spec.devices];
    out.type = spec.type ?? 'filter';
    out.policy = spec.policy ?? 'accept';
  } else if (spec.type !== undefined || spec.policy !== undefined || spec.priority !== undefined) {
    throw invalid(
      `Chain ${spec.name}: a type, priority or policy needs a hook (only base chains have them).`,
    );
  }
  if (spec.comment !== undefined) out.comment = spec.comment;
  return out;
}

/** The readable chain (without rules) of a kernel chain. */
export function chainFromNft(c: NftChain): ChainSpec {
  const spec: ChainSpec = { name: c.name };
  if (c.hook !== undefined) {
    const hooks = hooksOf(c.family);
    spec.type = (c.type ?? 'filter') as ChainSpec['type'] & string;
    spec.hook = (Object.entries(hooks).find(([, n]) => n === c.hook!.hooknum)?.[0] ?? 'input') as HookName;
    spec.priority = c.hook.priority;
    spec.policy = c.policy ?? 'accept';
    if (c.hook.devices !== undefined && c.hook.devices.length > 0) spec.devices = [...c.hook.devices];
  }
  if (c.comment !== undefined) spec.comment = c.comment;
  return spec;
}

/** The handles of the rules of each chain, in order (`family table chain` → handles). */
export type RuleHandles = Map<string, number[]>;

/** The key of a chain in {@link RuleHandles}. */
export const chainKey = (family: NftFamily, table: string, chain: string): string =>
  `${family} ${table} ${chain}`;

/** Readable tables read from the kernel, with what writing to them needs. */
export interface ReadableRuleset {
  generation: number;
  tables: TableSpec[];
  /** Rule handles per chain, in the order of each chain's `rules`. */
  handles: RuleHandles;
  /** Sets that have no readable form (typeof keys, object maps …), by `family table set`. */
  unreadableSets: string[];
  /** The low-level ruleset it was read from. */
  raw: NftRuleset;
}

/** Build an interface resolver from the links of a namespace (only when rules use iif/oif). */
async function interfacesFor(
  raw: NftRuleset,
  netns: string | undefined,
): Promise<InterfaceResolver | undefined> {
  const uses = raw.rules.some((r) =>
    r.expressions.some((e) => e.type === 'meta' && (e.key === 'iif' || e.key === 'oif')),
  );
  if (!uses) return undefined;
  const nl = Rtnetlink.open(netns === undefined ? {} : { netns });
  try {
    return resolverFromLinks((await nl.listLinks()).map((l) => ({ name: l.name, index: l.index })));
  } finally {
    nl.close();
  }
}

/** An interface resolver over a list of links. */
export function resolverFromLinks(links: readonly { name: string; index: number }[]): InterfaceResolver {
  const byName = new Map(links.map((l) => [l.name, l.index]));
  const byIndex = new Map(links.map((l) => [l.index, l.name]));
  return { index: (n) => byName.get(n), name: (i) => byIndex.get(i) };
}

/** Convert a low-level ruleset into readable tables. */
export function readableFromRaw(raw: NftRuleset, interfaces?: InterfaceResolver): ReadableRuleset {
  const handles: RuleHandles = new Map();
  const unreadableSets: string[] = [];
  const tables: TableSpec[] = raw.tables.map((t) => {
    const spec: TableSpec = { family: t.family, name: t.name };
    if (t.comment !== undefined) spec.comment = t.comment;
    if (t.flags & NFT_TABLE_F.DORMANT) spec.dormant = true;
    const chains: ChainSpec[] = raw.chains
      .filter((c) => c.family === t.family && c.table === t.name)
      .map((c) => {
        const chain = chainFromNft(c);
        const rules: Rule[] = [];
        const hs: number[] = [];
        for (const r of raw.rules) {
          if (r.family !== t.family || r.table !== t.name || r.chain !== c.name) continue;
          const body = decompileRule(r.expressions, {
            family: t.family,
            ...(interfaces === undefined ? {} : { interfaces }),
          });
          rules.push(r.comment === undefined ? body : { name: r.comment, ...body });
          hs.push(r.handle);
        }
        chain.rules = rules;
        handles.set(chainKey(t.family, t.name, c.name), hs);
        return chain;
      });
    const sets: SetSpec[] = [];
    for (const s of raw.sets) {
      if (s.family !== t.family || s.table !== t.name) continue;
      const readable = setFromNft(s);
      if ('unreadable' in readable) {
        unreadableSets.push(`${s.family} ${s.table} ${s.name}`);
        continue;
      }
      readable.elements = elementsFromNft(elementCodec(readable), s.elements, s.timeout);
      sets.push(readable);
    }
    if (chains.length > 0) spec.chains = chains;
    if (sets.length > 0) spec.sets = sets;
    return spec;
  });
  return { generation: raw.generation, tables, handles, unreadableSets, raw };
}

/**
 * Read tables (all, or the given ones) in readable form, at one generation. Interface indexes
 * of `iif`/`oif` matches are named from the namespace's links.
 */
export async function readRuleset(
  client: NftClient,
  options: { tables?: readonly NftTableRef[] } = {},
): Promise<ReadableRuleset> {
  const raw = await client.listRuleset(options);
  return readableFromRaw(raw, await interfacesFor(raw, client.netns));
}
