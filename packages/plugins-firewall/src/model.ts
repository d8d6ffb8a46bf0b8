/**
 * Resources of the firewall section and their canonical views: what `query` shows, what `diff`
 * compares and what a change's before/after hold.
 */
import {
  elementCodec,
  formatDuration,
  normalizeElements,
  normalizeRule,
  parseDuration,
  parsePriority,
  type ChainSpec,
  type NftFamily,
  type Rule,
  type SetSpec,
  type TableSpec,
} from '@opdbus/nftables';
import type { Change } from '@opdbus/core';
import type { ChainEntry, FirewallSection, SetEntry, TableEntry } from './schema.js';

/** A resource of the section. */
export type ResourceRef =
  | { kind: 'table'; family: NftFamily; table: string }
  | { kind: 'chain'; family: NftFamily; table: string; name: string }
  | { kind: 'set'; family: NftFamily; table: string; name: string };

/** `table/inet/filter`. */
export const tableResource = (family: string, table: string): string => `table/${family}/${table}`;
/** `chain/inet/filter/input`. */
export const chainResource = (family: string, table: string, name: string): string =>
  `chain/${family}/${table}/${name}`;
/** `set/inet/filter/blocked`. */
export const setResource = (family: string, table: string, name: string): string =>
  `set/${family}/${table}/${name}`;

/** Parse a resource path of this plugin. */
export function parseResource(resource: string): ResourceRef {
  const [kind, family, table, ...rest] = resource.split('/');
  const name = rest.join('/');
  if (kind === 'table' && family !== undefined && table !== undefined)
    return { kind, family: family as NftFamily, table };
  if ((kind === 'chain' || kind === 'set') && family !== undefined && table !== undefined && name !== '')
    return { kind, family: family as NftFamily, table, name };
  throw new Error(`not a firewall resource: ${resource}`);
}

/** A table's own attributes (without chains and sets). */
export interface TableView {
  family: NftFamily;
  name: string;
  comment?: string;
  dormant?: boolean;
}

/** The table attributes of an entry. */
export function tableView(t: TableSpec | TableEntry): TableView {
  const v: TableView = { family: t.family, name: t.name };
  if (t.comment !== undefined) v.comment = t.comment;
  if (t.dormant === true) v.dormant = true;
  return v;
}

/**
 * Normalized forms by document object: a document is validated once (the schema normalizes
 * every rule and set to check it) and diffed several times (plan, verify), and a big set or chain
 * is not normalized again each time. The cached values are never mutated.
 */
const ruleCache = new WeakMap<object, { family: string; value: Rule }>();
const chainCache = new WeakMap<object, { family: string; value: ChainSpec }>();
const setCache = new WeakMap<object, SetSpec>();

/** {@link normalizeRule}, remembered per rule object. */
export function normalizeRuleCached(rule: Rule, family: NftFamily): Rule {
  const hit = ruleCache.get(rule);
  if (hit?.family === family) return hit.value;
  const value = normalizeRule(rule, family);
  ruleCache.set(rule, { family, value });
  return value;
}

/** A desired chain in canonical form (defaults of a base chain filled in; rules normalized). */
export function normalizeChain(family: NftFamily, c: ChainEntry | ChainSpec): ChainSpec {
  const hit = chainCache.get(c);
  if (hit?.family === family) return hit.value;
  const value = normalizeChainNow(family, c);
  chainCache.set(c, { family, value });
  return value;
}

function normalizeChainNow(family: NftFamily, c: ChainEntry | ChainSpec): ChainSpec {
  const out: ChainSpec = { name: c.name };
  if (c.hook !== undefined) {
    out.type = c.type ?? 'filter';
    out.hook = c.hook;
    out.priority = parsePriority(family, c.priority ?? 0);
    out.policy = c.policy ?? 'accept';
    if (c.devices !== undefined && c.devices.length > 0) out.devices = [...c.devices];
  }
  if (c.comment !== undefined) out.comment = c.comment;
  if (c.rules !== undefined) out.rules = c.rules.map((r) => normalizeRuleCached(r as Rule, family));
  return out;
}

/** Set flags in the order query shows them. */
const FLAG_ORDER = ['constant', 'interval', 'timeout', 'dynamic'] as const;

/** A desired set in canonical form (elements as the kernel would give them back). */
export function normalizeSet(s: SetEntry | SetSpec): SetSpec {
  const hit = setCache.get(s);
  if (hit !== undefined) return hit;
  const value = normalizeSetNow(s);
  setCache.set(s, value);
  return value;
}

function normalizeSetNow(s: SetEntry | SetSpec): SetSpec {
  if (s.type === undefined) throw new Error(`set ${s.name} has no type`);
  const out: SetSpec = { name: s.name, type: Array.isArray(s.type) ? [...s.type] : s.type };
  if (s.map !== undefined) out.map = s.map;
  if (s.flags !== undefined && s.flags.length > 0) out.flags = FLAG_ORDER.filter((f) => s.flags!.includes(f));
  const timeout = s.timeout === undefined ? undefined : parseDuration(s.timeout);
  if (timeout !== undefined && timeout > 0) out.timeout = formatDuration(timeout);
  if (s.gcInterval !== undefined) out.gcInterval = formatDuration(parseDuration(s.gcInterval));
  if (s.size !== undefined) out.size = s.size;
  if (s.policy === 'memory') out.policy = 'memory';
  if (s.comment !== undefined) out.comment = s.comment;
  if (s.elements !== undefined)
    out.elements = normalizeElements(elementCodec(out), s.elements as SetSpec['elements'] & object, timeout);
  return out;
}

/** Chain fields a document can name, in order. */
export const CHAIN_FIELDS = ['type', 'hook', 'priority', 'policy', 'devices', 'comment', 'rules'] as const;
/** Set fields a document can name. */
export const SET_FIELDS = [
  'type',
  'map',
  'flags',
  'timeout',
  'gcInterval',
  'size',
  'policy',
  'comment',
  'elements',
] as const;
/** Chain fields that cannot change in place (the chain is created again). */
export const CHAIN_IDENTITY = ['type', 'hook', 'priority', 'devices'] as const;
/** Set fields that cannot change in place (the set is created again). */
export const SET_IDENTITY = [
  'type',
  'map',
  'flags',
  'timeout',
  'gcInterval',
  'size',
  'policy',
  'comment',
] as const;

/** Deep equality of JSON values (object key order ignored; undefined properties count as absent). */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], bb[i])) return false;
    return true;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!same(ra[k], rb[k])) return false;
  return true;
}

/**
 * The values of the firewall plugin's changes: a table's own attributes (a deleted table: the
 * whole table as it was), a chain, or a set — which one, the change's resource says.
 */
export type FirewallValue = TableView | TableEntry | ChainSpec | ChainEntry | SetSpec | SetEntry;

/** A change of the firewall plugin. */
export type FirewallChange = Change<FirewallValue>;

/** A plain JSON copy (drops undefined members) of a change's before/after. */
export const json = <V extends FirewallValue>(v: V): V => JSON.parse(JSON.stringify(v)) as V;

/**
 * `target` with each of `fields` that `named` sets (a document entry) taken from `from` (and
 * removed when `from` has none).
 */
export function withNamedFields<T extends object>(
  target: T,
  fields: readonly (keyof T & string)[],
  named: object,
  from: T,
): T {
  const out = { ...target };
  for (const f of fields) {
    if ((named as Record<string, unknown>)[f] === undefined) continue;
    const v = from[f];
    if (v === undefined) Reflect.deleteProperty(out, f);
    else out[f] = v;
  }
  return out;
}

/** The names of the sets a chain's rules look up (`@name`). */
export function setsUsed(rules: readonly Rule[] | undefined): Set<string> {
  const out = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string' && v.startsWith('@')) out.add(v.slice(1));
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(visit);
  };
  for (const r of rules ?? []) {
    visit(r.match);
    for (const e of r.expr ?? []) if (e.type === 'lookup' && e.anonymous === undefined) out.add(e.set);
  }
  return out;
}

/** The chains a chain's rules jump or go to. */
export function chainsUsed(rules: readonly Rule[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const r of rules ?? []) {
    const v = r.verdict;
    if (typeof v === 'object' && 'jump' in v) out.add(v.jump);
    if (typeof v === 'object' && 'goto' in v) out.add(v.goto);
    for (const e of r.expr ?? [])
      if (e.type === 'immediate' && e.verdict?.chain !== undefined) out.add(e.verdict.chain);
  }
  return out;
}

/** The section of a full read: every table with its chains (rules) and sets (elements). */
export function fullSection(tables: readonly TableSpec[]): FirewallSection {
  return { tables: tables.map((t) => t as TableEntry) };
}

/** The observed section for exactly what `desired` names (absent ones marked). */
export function scopedSection(desired: FirewallSection, tables: readonly TableSpec[]): FirewallSection {
  const out: TableEntry[] = [];
  for (const d of desired.tables ?? []) {
    const t = tables.find((x) => x.family === d.family && x.name === d.name);
    if (t === undefined) {
      out.push({ family: d.family, name: d.name, state: 'absent' });
      continue;
    }
    const entry: TableEntry = tableView(t);
    if (d.chains !== undefined)
      entry.chains = d.chains.map(
        (dc) =>
          (t.chains?.find((c) => c.name === dc.name) as ChainEntry | undefined) ?? {
            name: dc.name,
            state: 'absent',
          },
      );
    if (d.sets !== undefined)
      entry.sets = d.sets.map(
        (ds) =>
          (t.sets?.find((s) => s.name === ds.name) as SetEntry | undefined) ?? {
            name: ds.name,
            state: 'absent',
          },
      );
    out.push(entry);
  }
  return { tables: out };
}
