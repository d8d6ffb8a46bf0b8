/**
 * From changes to ONE nftables batch: the minimal table, chain, set, element and rule operations
 * that take the current ruleset to every change's `after`, in the order the kernel needs them.
 */
import { OpdbusError } from '@opdbus/core';
import {
  NftBatch,
  chainKey,
  chainToNft,
  compileRule,
  elementCodec,
  elementsToNft,
  ruleKey,
  setToNft,
  stableJson,
  type ChainSpec,
  type InterfaceResolver,
  type NftElementData,
  type NftFamily,
  type ReadableRuleset,
  type Rule,
  type SetSpec,
  type TableSpec,
} from '@opdbus/nftables';
import {
  CHAIN_IDENTITY,
  SET_IDENTITY,
  parseResource,
  same,
  setsUsed,
  tableView,
  type ResourceRef,
  type FirewallChange,
  type TableView,
} from './model.js';

/** A batch and the change each of its messages belongs to. */
export interface PlannedBatch {
  batch: NftBatch;
  /** `owners[i]`: the change message `i` of the batch belongs to. */
  owners: FirewallChange[];
  /** The changes that were not already in effect. */
  effective: FirewallChange[];
}

type Current = {
  table: (ref: ResourceRef) => TableSpec | undefined;
};

function currentOf(rs: ReadableRuleset): Current {
  return { table: (ref) => rs.tables.find((t) => t.family === ref.family && t.name === ref.table) };
}

/** The current view of a change's resource (null: it does not exist). */
function viewOf(cur: Current, ref: ResourceRef): TableView | ChainSpec | SetSpec | null {
  const t = cur.table(ref);
  if (t === undefined) return null;
  if (ref.kind === 'table') return tableView(t);
  if (ref.kind === 'chain') return t.chains?.find((c) => c.name === ref.name) ?? null;
  return t.sets?.find((s) => s.name === ref.name) ?? null;
}

function comparable(ref: ResourceRef, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  return ref.kind === 'table' ? tableView(v as TableSpec) : v;
}

/**
 * Which changes still need doing: a change already in effect (the resource is as `after` says)
 * is skipped; a resource that is neither as `before` nor as `after` says was changed by someone
 * else since the plan was made, which is `OPDBUS_ERR_FIREWALL_CONFLICT`.
 */
export function effectiveChanges(changes: readonly FirewallChange[], rs: ReadableRuleset): FirewallChange[] {
  const cur = currentOf(rs);
  const out: FirewallChange[] = [];
  for (const change of changes) {
    const ref = parseResource(change.resource);
    const now = comparable(ref, viewOf(cur, ref));
    if (same(now, comparable(ref, change.after))) continue;
    if (same(now, comparable(ref, change.before))) {
      out.push(change);
      continue;
    }
    throw new OpdbusError(
      'OPDBUS_ERR_FIREWALL_CONFLICT',
      `${change.resource} changed after the plan was made (it is neither as the plan found it nor as it wants it), so "${change.summary}" was not applied; nothing was changed. Run \`opdbus diff\` and apply again.`,
      { data: { changeId: change.id, resource: change.resource } },
    );
  }
  return out;
}

/** Longest increasing subsequence (indexes into `seq`). */
function lis(seq: readonly number[]): Set<number> {
  const tails: number[] = [];
  const prev: number[] = new Array<number>(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]!]! < seq[i]!) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1]!;
    tails[lo] = i;
  }
  const out = new Set<number>();
  for (let k = tails.length > 0 ? tails[tails.length - 1]! : -1; k >= 0; k = prev[k]!) out.add(k);
  return out;
}

/** The rule operations that turn `current` (with handles) into `desired`, keeping what can be kept. */
export function ruleOperations(
  current: readonly { rule: Rule; handle: number }[],
  desired: readonly Rule[],
): {
  deletes: number[];
  replaces: { handle: number; rule: Rule }[];
  inserts: { rule: Rule; before: number | undefined }[];
} {
  const key = (r: Rule): string => (r.name !== undefined ? `n:${r.name}` : `c:${ruleKey(r)}`);
  const byKey = new Map<string, number[]>();
  for (const [i, c] of current.entries()) byKey.set(key(c.rule), [...(byKey.get(key(c.rule)) ?? []), i]);
  const pair: (number | undefined)[] = desired.map((d) => byKey.get(key(d))?.shift());
  const matched = pair
    .map((p, i) => ({ p, i }))
    .filter((x): x is { p: number; i: number } => x.p !== undefined);
  const keepIdx = lis(matched.map((m) => m.p));
  const kept = new Map<number, number>(); // desired index → current index
  for (const [k, m] of matched.entries()) if (keepIdx.has(k)) kept.set(m.i, m.p);
  const keptCurrent = new Set(kept.values());
  const deletes = current.filter((_, i) => !keptCurrent.has(i)).map((c) => c.handle);
  const replaces: { handle: number; rule: Rule }[] = [];
  for (const [di, ci] of kept) {
    if (ruleKey(current[ci]!.rule) !== ruleKey(desired[di]!))
      replaces.push({ handle: current[ci]!.handle, rule: desired[di]! });
  }
  const inserts: { rule: Rule; before: number | undefined }[] = [];
  for (const [di, d] of desired.entries()) {
    if (kept.has(di)) continue;
    let before: number | undefined;
    for (let j = di + 1; j < desired.length; j++) {
      const ci = kept.get(j);
      if (ci !== undefined) {
        before = current[ci]!.handle;
        break;
      }
    }
    inserts.push({ rule: d, before });
  }
  return { deletes, replaces, inserts };
}

/** Kernel elements grouped into the units that are added and removed together (an interval's start and end). */
function elementUnits(set: SetSpec): Map<string, NftElementData[]> {
  const codec = elementCodec(set);
  const elements = elementsToNft(codec, set.elements ?? []);
  const units = new Map<string, NftElementData[]>();
  if (codec.interval && codec.types.length === 1) {
    for (let i = 0; i < elements.length; i++) {
      const start = elements[i]!;
      const end = elements[i + 1];
      const unit = end !== undefined && (end.flags ?? 0) & 1 ? [start, end] : [start];
      if (unit.length === 2) i++;
      units.set(stableJson(unit), unit);
    }
  } else for (const e of elements) units.set(stableJson(e), [e]);
  return units;
}

/**
 * Build the batch for `changes` (all of one plugin run) against the current ruleset `rs`.
 * Throws `OPDBUS_ERR_FIREWALL_INVALID` (with the change id) when a rule cannot be encoded.
 */
export function planBatch(
  changes: readonly FirewallChange[],
  rs: ReadableRuleset,
  interfaces?: InterfaceResolver,
): PlannedBatch {
  const effective = effectiveChanges(changes, rs);
  const batch = new NftBatch();
  const owners: FirewallChange[] = [];
  const own = (change: FirewallChange): void => {
    while (owners.length < batch.length) owners.push(change);
  };
  const cur = currentOf(rs);
  const refs = effective.map((c) => ({ change: c, ref: parseResource(c.resource) }));
  const compile = (
    family: NftFamily,
    rule: Rule,
    change: FirewallChange,
  ): { expressions: ReturnType<typeof compileRule>; comment?: string } => {
    try {
      const expressions = compileRule(rule, { family, ...(interfaces === undefined ? {} : { interfaces }) });
      return rule.name === undefined ? { expressions } : { expressions, comment: rule.name };
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_FIREWALL_INVALID',
        `${change.resource}: a rule cannot be written: ${(err as Error).message}`,
        { data: { changeId: change.id, resource: change.resource }, cause: err },
      );
    }
  };
  const addRules = (
    family: NftFamily,
    table: string,
    chain: string,
    rules: readonly Rule[],
    change: FirewallChange,
  ): void => {
    for (const rule of rules) batch.addRule(family, { table, chain, ...compile(family, rule, change) });
    own(change);
  };

  // 1. Tables.
  for (const { change, ref } of refs) {
    if (ref.kind !== 'table' || change.op === 'delete') continue;
    const after = change.after as TableView;
    batch.addTable(ref.family, {
      name: ref.table,
      flags: after.dormant === true ? 1 : 0,
      ...(after.comment === undefined ? {} : { comment: after.comment }),
    });
    own(change);
  }

  // 2. Chains created, or updated in place (policy).
  const recreatedChains = new Set<string>();
  for (const { change, ref } of refs) {
    if (ref.kind !== 'chain' || change.op === 'delete') continue;
    const after = change.after as ChainSpec;
    if (change.op === 'create') {
      batch.addChain(ref.family, chainToNft(ref.family, ref.table, after), { exclusive: true });
    } else {
      const before = change.before as ChainSpec;
      if (CHAIN_IDENTITY.some((f) => !same(before[f], after[f])) || !same(before.comment, after.comment))
        recreatedChains.add(change.resource);
      else if (before.policy !== after.policy)
        batch.addChain(ref.family, chainToNft(ref.family, ref.table, after));
    }
    own(change);
  }

  // 3. Chains whose rules are written again: those created again, and those using a set that is
  //    created again (a set in use cannot be deleted).
  const recreatedSets = refs.filter(({ change, ref }) => {
    if (ref.kind !== 'set' || change.op !== 'update') return false;
    const before = change.before as SetSpec;
    const after = change.after as SetSpec;
    return SET_IDENTITY.some((f) => !same(before[f], after[f]));
  });
  const rewritten = new Map<
    string,
    { family: NftFamily; table: string; chain: string; rules: Rule[]; change: FirewallChange }
  >();
  const chainAfter = (family: NftFamily, table: string, name: string): Rule[] | undefined => {
    const changed = refs.find(
      (r) =>
        r.ref.kind === 'chain' && r.ref.family === family && r.ref.table === table && r.ref.name === name,
    );
    if (changed !== undefined)
      return changed.change.op === 'delete' ? undefined : ((changed.change.after as ChainSpec).rules ?? []);
    return cur.table({ kind: 'table', family, table })?.chains?.find((c) => c.name === name)?.rules ?? [];
  };
  for (const { change, ref } of recreatedSets) {
    if (ref.kind !== 'set') continue;
    for (const c of cur.table(ref)?.chains ?? []) {
      if (!setsUsed(c.rules).has(ref.name)) continue;
      const rules = chainAfter(ref.family, ref.table, c.name);
      if (rules === undefined) continue;
      rewritten.set(`${ref.family} ${ref.table} ${c.name}`, {
        family: ref.family,
        table: ref.table,
        chain: c.name,
        rules,
        change,
      });
    }
  }
  for (const { change, ref } of refs) {
    if (ref.kind !== 'chain' || !recreatedChains.has(change.resource)) continue;
    const after = change.after as ChainSpec;
    rewritten.delete(`${ref.family} ${ref.table} ${ref.name}`);
    batch.flushChain(ref.family, ref.table, ref.name);
    batch.deleteChain(ref.family, ref.table, ref.name);
    batch.addChain(ref.family, chainToNft(ref.family, ref.table, after), { exclusive: true });
    own(change);
  }
  for (const r of rewritten.values()) {
    batch.flushChain(r.family, r.table, r.chain);
    own(r.change);
  }

  // 4. Sets: created (again), and their elements.
  for (const { change, ref } of refs) {
    if (ref.kind !== 'set' || change.op === 'delete') continue;
    const after = change.after as SetSpec;
    const again = recreatedSets.some((r) => r.change === change);
    if (change.op === 'create' || again) {
      if (again) batch.deleteSet(ref.family, ref.table, ref.name);
      batch.addSet(ref.family, setToNft(ref.table, after), { exclusive: true });
      const elements = elementsToNft(elementCodec(after), after.elements ?? []);
      if (elements.length > 0) batch.addElements(ref.family, ref.table, ref.name, elements);
    } else {
      const before = change.before as SetSpec;
      const was = elementUnits(before);
      const will = elementUnits(after);
      const removed = [...was].filter(([k]) => !will.has(k)).flatMap(([, v]) => v);
      const added = [...will].filter(([k]) => !was.has(k)).flatMap(([, v]) => v);
      if (removed.length > 0) batch.deleteElements(ref.family, ref.table, ref.name, removed);
      if (added.length > 0) batch.addElements(ref.family, ref.table, ref.name, added);
    }
    own(change);
  }

  // 5. Rules.
  for (const { change, ref } of refs) {
    if (ref.kind !== 'chain' || change.op === 'delete') continue;
    const after = change.after as ChainSpec;
    const rules = after.rules ?? [];
    if (change.op === 'create' || recreatedChains.has(change.resource)) {
      addRules(ref.family, ref.table, ref.name, rules, change);
      continue;
    }
    if (rewritten.has(`${ref.family} ${ref.table} ${ref.name}`)) continue;
    const before = (change.before as ChainSpec).rules ?? [];
    const handles = rs.handles.get(chainKey(ref.family, ref.table, ref.name)) ?? [];
    const ops = ruleOperations(
      before.map((rule, i) => ({ rule, handle: handles[i]! })),
      rules,
    );
    for (const h of ops.deletes) batch.deleteRule(ref.family, ref.table, ref.name, h);
    for (const r of ops.replaces)
      batch.replaceRule(ref.family, r.handle, {
        table: ref.table,
        chain: ref.name,
        ...compile(ref.family, r.rule, change),
      });
    for (const ins of ops.inserts)
      batch.addRule(
        ref.family,
        { table: ref.table, chain: ref.name, ...compile(ref.family, ins.rule, change) },
        ins.before === undefined ? { at: 'end' } : { before: ins.before },
      );
    own(change);
  }
  for (const r of rewritten.values()) addRules(r.family, r.table, r.chain, r.rules, r.change);

  // 6. Removals: chains (emptied first), sets, tables.
  const deletes = refs.filter((r) => r.change.op === 'delete');
  for (const { change, ref } of deletes)
    if (ref.kind === 'chain') {
      batch.flushChain(ref.family, ref.table, ref.name);
      own(change);
    }
  for (const { change, ref } of deletes)
    if (ref.kind === 'chain') {
      batch.deleteChain(ref.family, ref.table, ref.name);
      own(change);
    }
  for (const { change, ref } of deletes)
    if (ref.kind === 'set') {
      batch.deleteSet(ref.family, ref.table, ref.name);
      own(change);
    }
  for (const { change, ref } of deletes)
    if (ref.kind === 'table') {
      batch.deleteTable(ref.family, ref.table);
      own(change);
    }
  return { batch, owners, effective };
}
