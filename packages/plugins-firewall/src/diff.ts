/** The pure diff: declared section vs observed section → changes with dependencies and risk. */
import { OpdbusError, formatPath, type ChangeSpec } from '@opdbus/core';
import { ruleKey, ruleText, type ChainSpec, type Rule, type SetSpec, type TableSpec } from '@opdbus/nftables';
import {
  CHAIN_FIELDS,
  SET_FIELDS,
  chainResource,
  chainsUsed,
  json,
  normalizeChain,
  normalizeSet,
  same,
  setResource,
  setsUsed,
  tableResource,
  tableView,
  withNamedFields,
  type FirewallValue,
} from './model.js';
import { dropsConnection, type ManagementConnection } from './risk.js';
import type { FirewallSection, SetEntry, TableEntry } from './schema.js';

/** What the plugin's `facts` reads from the host for the risk guard (passed to `diff`). */
export interface FirewallFacts {
  /** Management connections that end in the target namespace. */
  connections: ManagementConnection[];
  /** The full current content of the tables the section names (every chain, set, rule). */
  tables: TableSpec[];
}

/** Set `key` of `target` to `value`, or remove it when `value` is undefined. */
function setOrDelete<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value === undefined) Reflect.deleteProperty(target, key);
  else target[key] = value;
}

const isAbsent = (x: { state?: 'absent' | undefined } | undefined): boolean =>
  x === undefined || x.state === 'absent';

/** The rule changes between two rule lists, for people: `+ssh ~web -"tcp dport 23 drop"`. */
export function describeRules(before: readonly Rule[], after: readonly Rule[]): string {
  const label = (r: Rule): string => (r.name !== undefined ? r.name : `"${ruleText(r)}"`);
  const key = (r: Rule): string => (r.name !== undefined ? `n:${r.name}` : `c:${ruleKey(r)}`);
  const left = new Map<string, Rule[]>();
  for (const r of before) left.set(key(r), [...(left.get(key(r)) ?? []), r]);
  const parts: string[] = [];
  let kept = 0;
  for (const r of after) {
    const list = left.get(key(r));
    const match = list?.shift();
    if (match === undefined) parts.push(`+${label(r)}`);
    else if (ruleKey(match) !== ruleKey(r)) parts.push(`~${label(r)}`);
    else kept++;
  }
  for (const list of left.values()) for (const r of list) parts.push(`-${label(r)}`);
  if (parts.length === 0) return kept === after.length ? 'rules reordered' : '';
  const shown = parts.slice(0, 6).join(' ');
  return `rules ${shown}${parts.length > 6 ? ` (+${parts.length - 6} more)` : ''}`;
}

function chainSummary(c: ChainSpec): string {
  const base =
    c.hook === undefined
      ? 'regular'
      : `${c.type ?? 'filter'} hook ${c.hook} priority ${c.priority ?? 0} policy ${c.policy ?? 'accept'}`;
  return `${base}, ${c.rules?.length ?? 0} rule(s)`;
}

function fieldChanges(fields: readonly string[], before: object, after: object): string[] {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  const out: string[] = [];
  for (const f of fields) {
    if (f === 'rules' || f === 'elements' || same(b[f], a[f])) continue;
    out.push(
      `${f} ${b[f] === undefined ? '-' : JSON.stringify(b[f])} → ${a[f] === undefined ? '-' : JSON.stringify(a[f])}`,
    );
  }
  return out;
}

function elementSummary(before: SetSpec, after: SetSpec): string | undefined {
  const b = new Set((before.elements ?? []).map((e) => JSON.stringify(e)));
  const a = new Set((after.elements ?? []).map((e) => JSON.stringify(e)));
  const added = [...a].filter((x) => !b.has(x)).length;
  const removed = [...b].filter((x) => !a.has(x)).length;
  if (added === 0 && removed === 0) return undefined;
  return `elements +${added} -${removed}`;
}

const invalid = (path: (string | number)[], message: string): OpdbusError => {
  const p = formatPath(['plugins', 'firewall', ...path]);
  return new OpdbusError('OPDBUS_ERR_FIREWALL_INVALID', `${p}: ${message}.`, { data: { path: p } });
};

/**
 * The changes that take `observed` to `desired`: tables, chains (with their rules) and sets (with
 * their elements) the document names; nothing else. A chain's or set's `after` is its whole
 * resulting state (fields the document leaves out keep their current value), so apply can compute
 * the minimal rule and element operations. Given `facts` (the plugin's `facts`), changes that
 * could drop a management connection are flagged risky.
 */
export function diffSection(
  desired: FirewallSection,
  observed: FirewallSection,
  facts?: FirewallFacts,
): ChangeSpec<FirewallValue>[] {
  const out: ChangeSpec<FirewallValue>[] = [];
  for (const [ti, dt] of (desired.tables ?? []).entries()) {
    const family = dt.family;
    const ot = observed.tables?.find((t) => t.family === dt.family && t.name === dt.name);
    const exists = !isAbsent(ot);
    const tres = tableResource(family, dt.name);
    const tableChanges: ChangeSpec<FirewallValue>[] = [];
    if (dt.state === 'absent') {
      if (exists)
        out.push({
          resource: tres,
          op: 'delete',
          before: json(ot!),
          after: null,
          summary: `delete table ${family} ${dt.name} (with its ${ot!.chains?.length ?? 0} chain(s) and ${ot!.sets?.length ?? 0} set(s))`,
        });
      continue;
    }
    const tableCreated = !exists;
    if (!exists) {
      tableChanges.push({
        resource: tres,
        op: 'create',
        before: null,
        after: json(tableView(dt)),
        summary: `create table ${family} ${dt.name}`,
      });
    } else {
      const before = tableView(ot!);
      const after = { ...before };
      if (dt.comment !== undefined) after.comment = dt.comment;
      if (dt.dormant !== undefined) {
        if (dt.dormant) after.dormant = true;
        else delete after.dormant;
      }
      if (!same(before, after))
        tableChanges.push({
          resource: tres,
          op: 'update',
          before: json(before),
          after: json(after),
          summary: `update table ${family} ${dt.name}: ${fieldChanges(['comment', 'dormant'], before, after).join(', ')}`,
        });
    }
    const tableDep = tableCreated ? [tres] : [];
    const chainChanges: ChangeSpec<FirewallValue>[] = [];
    const chainDeletes: ChangeSpec<FirewallValue>[] = [];
    const setChanges: ChangeSpec<FirewallValue>[] = [];
    const setDeletes: ChangeSpec<FirewallValue>[] = [];
    const afterChains = new Map<string, ChainSpec | null>();
    const afterSets = new Map<string, SetSpec | null>();

    for (const [si, ds] of (dt.sets ?? []).entries()) {
      const os = exists ? ot!.sets?.find((s) => s.name === ds.name) : undefined;
      const res = setResource(family, dt.name, ds.name);
      if (ds.state === 'absent') {
        afterSets.set(ds.name, null);
        if (!isAbsent(os))
          setDeletes.push({
            resource: res,
            op: 'delete',
            before: json(os!),
            after: null,
            summary: `delete set ${family} ${dt.name} ${ds.name}`,
          });
        continue;
      }
      if (ds.type === undefined && isAbsent(os))
        throw invalid(
          ['tables', ti, 'sets', si],
          `set ${ds.name} does not exist and has no type, so it cannot be created; add a type`,
        );
      const want = normalizeSet(
        ds.type === undefined ? { ...(os as SetEntry), ...ds, type: (os as SetEntry).type } : ds,
      );
      if (isAbsent(os)) {
        const after = { ...want, elements: want.elements ?? [] };
        afterSets.set(ds.name, after);
        setChanges.push({
          resource: res,
          op: 'create',
          before: null,
          after: json(after),
          dependsOn: tableDep,
          summary: `create ${want.map === undefined ? 'set' : 'map'} ${family} ${dt.name} ${ds.name} (${JSON.stringify(want.type)}, ${after.elements.length} element(s))`,
        });
        continue;
      }
      const before = os as SetSpec;
      const after = withNamedFields(before, SET_FIELDS, ds, want);
      afterSets.set(ds.name, after);
      if (same(before, after)) continue;
      const what = [...fieldChanges(SET_FIELDS, before, after), elementSummary(before, after)].filter(
        Boolean,
      );
      setChanges.push({
        resource: res,
        op: 'update',
        before: json(before),
        after: json(after),
        dependsOn: tableDep,
        summary: `update set ${family} ${dt.name} ${ds.name}: ${what.join(', ')}`,
      });
    }

    for (const [, dc] of (dt.chains ?? []).entries()) {
      const oc = exists ? ot!.chains?.find((c) => c.name === dc.name) : undefined;
      const res = chainResource(family, dt.name, dc.name);
      if (dc.state === 'absent') {
        afterChains.set(dc.name, null);
        if (!isAbsent(oc))
          chainDeletes.push({
            resource: res,
            op: 'delete',
            before: json(oc!),
            after: null,
            summary: `delete chain ${family} ${dt.name} ${dc.name} (${oc!.rules?.length ?? 0} rule(s))`,
          });
        continue;
      }
      const want = normalizeChain(family, dc);
      const deps = new Set<string>(tableDep);
      const rulesOf = (c: ChainSpec): Rule[] => c.rules ?? [];
      if (isAbsent(oc)) {
        const after = { ...want, rules: want.rules ?? [] };
        afterChains.set(dc.name, after);
        for (const s of setsUsed(after.rules)) deps.add(setResource(family, dt.name, s));
        for (const c of chainsUsed(after.rules)) deps.add(chainResource(family, dt.name, c));
        chainChanges.push({
          resource: res,
          op: 'create',
          before: null,
          after: json(after),
          dependsOn: [...deps],
          summary: `create chain ${family} ${dt.name} ${dc.name} (${chainSummary(after)})`,
        });
        continue;
      }
      const before = oc as ChainSpec;
      const after = withNamedFields(before, CHAIN_FIELDS, dc, want);
      // A base chain named with a hook gets its defaults (type filter, policy accept).
      if (dc.hook !== undefined) {
        if (dc.type === undefined) setOrDelete(after, 'type', want.type);
        if (dc.priority === undefined) setOrDelete(after, 'priority', want.priority);
      }
      afterChains.set(dc.name, after);
      if (same(before, after)) continue;
      for (const s of setsUsed(rulesOf(after))) deps.add(setResource(family, dt.name, s));
      for (const c of chainsUsed(rulesOf(after))) deps.add(chainResource(family, dt.name, c));
      deps.delete(res);
      const what = [
        ...fieldChanges(CHAIN_FIELDS, before, after),
        describeRules(rulesOf(before), rulesOf(after)),
      ].filter(Boolean);
      chainChanges.push({
        resource: res,
        op: 'update',
        before: json(before),
        after: json(after),
        dependsOn: [...deps],
        summary: `update chain ${family} ${dt.name} ${dc.name}: ${what.join(', ')}`,
      });
    }
    // Removals follow the chain changes of the table, which may drop the references to them:
    // chains after the chains that jumped to them, sets after the chains that looked them up.
    const updated = chainChanges.map((c) => c.resource);
    for (const d of chainDeletes) d.dependsOn = updated;
    for (const d of setDeletes) d.dependsOn = [...updated, ...chainDeletes.map((c) => c.resource)];

    const changes = [...tableChanges, ...setChanges, ...chainChanges, ...chainDeletes, ...setDeletes];
    if (facts !== undefined && changes.length > 0)
      flagRisk(
        changes,
        facts,
        dt,
        exists ? facts.tables.find((t) => t.family === family && t.name === dt.name) : undefined,
        afterChains,
        afterSets,
      );
    out.push(...changes);
  }
  return out;
}

/** Flag the changes of a table when the table after them would drop a management connection it lets through now. */
function flagRisk(
  changes: ChangeSpec<FirewallValue>[],
  facts: FirewallFacts,
  dt: TableEntry,
  current: TableSpec | undefined,
  afterChains: ReadonlyMap<string, ChainSpec | null>,
  afterSets: ReadonlyMap<string, SetSpec | null>,
): void {
  if (facts.connections.length === 0) return;
  const before: TableSpec = current ?? {
    family: dt.family,
    name: dt.name,
    chains: [],
    sets: [],
  };
  const overlay = <T extends { name: string }>(
    now: readonly T[] | undefined,
    next: ReadonlyMap<string, T | null>,
  ): T[] => {
    const out: T[] = [];
    for (const x of now ?? []) {
      const n = next.get(x.name);
      if (n === null) continue;
      out.push(n ?? x);
    }
    for (const [name, x] of next) if (x !== null && !(now ?? []).some((y) => y.name === name)) out.push(x);
    return out;
  };
  const after: TableSpec = {
    ...before,
    chains: overlay(before.chains, afterChains),
    sets: overlay(before.sets, afterSets),
  };
  for (const c of facts.connections) {
    const now = current === undefined ? undefined : dropsConnection(before, c);
    if (now !== undefined) continue; // it is not let through now either
    const reason = dropsConnection(after, c);
    if (reason === undefined) continue;
    for (const ch of changes) if (ch.op !== 'delete') ch.risk = { reason };
    return;
  }
}
