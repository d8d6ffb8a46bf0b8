import { resourceKey, type Change } from './change.js';
import { OpdbusError } from './errors.js';
import { hashJson, type JsonValue } from './json.js';

/**
 * One ordered, serialisable, content-hashed list of changes across plugins.
 * Two plans with the same changes in the same order have the same hash. `V` is the changes'
 * value type: a plugin ordering its own changes keeps them typed; the engine's plans are JSON.
 */
export interface Plan<V = JsonValue> {
  version: 1;
  /** SHA-256 (hex) of the canonical JSON of `{ version, changes }`. */
  hash: string;
  /** In apply order: every change comes after the changes it depends on. */
  changes: Change<V>[];
}

/**
 * Order changes so that each follows what it depends on (Kahn's algorithm). Among changes that
 * are free to go, the earlier one in the input goes first, so the order is deterministic and
 * keeps each plugin's own order where dependencies allow. Several changes of the same resource
 * keep their input order. A dependency on a resource the plan does not change is already met.
 *
 * Throws `OPDBUS_ERR_PLAN_CYCLE` naming the cycle, `OPDBUS_ERR_PLAN_INVALID` on duplicate ids.
 */
export function createPlan<V = JsonValue>(changes: readonly Change<V>[]): Plan<V> {
  const n = changes.length;
  const seen = new Map<string, number>();
  const byResource = new Map<string, number[]>();
  for (const [i, change] of changes.entries()) {
    const dup = seen.get(change.id);
    if (dup !== undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_PLAN_INVALID',
        `Plugin "${change.plugin}" produced the same change twice (${change.summary}, id ${change.id}); this is a bug in the plugin's diff.`,
        { data: { changeId: change.id, plugin: change.plugin, resource: change.resource } },
      );
    }
    seen.set(change.id, i);
    const key = resourceKey(change);
    const list = byResource.get(key);
    if (list === undefined) byResource.set(key, [i]);
    else list.push(i);
  }

  const successors: number[][] = Array.from({ length: n }, () => []);
  const indegree = new Array<number>(n).fill(0);
  const addEdge = (from: number, to: number): void => {
    successors[from]!.push(to);
    indegree[to]!++;
  };
  for (const indexes of byResource.values()) {
    for (let k = 1; k < indexes.length; k++) addEdge(indexes[k - 1]!, indexes[k]!);
  }
  for (const [i, change] of changes.entries()) {
    for (const dep of new Set(change.dependsOn)) {
      for (const j of byResource.get(dep) ?? []) if (j !== i) addEdge(j, i);
    }
  }

  const ready = new MinHeap();
  for (let i = 0; i < n; i++) if (indegree[i] === 0) ready.push(i);
  const order: number[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(i);
    for (const j of successors[i]!) if (--indegree[j]! === 0) ready.push(j);
  }
  if (order.length < n) {
    const cycle = findCycle(successors, indegree);
    const names = cycle.map((i) => resourceKey(changes[i]!) + ` (${changes[i]!.op})`);
    throw new OpdbusError(
      'OPDBUS_ERR_PLAN_CYCLE',
      `The plan has a dependency cycle: ${[...names, names[0]].join(' → ')}. Break it in the state document (a resource cannot depend on itself through others).`,
      {
        data: {
          cycle: cycle.map((i) => ({
            plugin: changes[i]!.plugin,
            resource: changes[i]!.resource,
            changeId: changes[i]!.id,
          })),
        },
      },
    );
  }
  const ordered = order.map((i) => changes[i]!);
  return { version: 1, hash: planHash(ordered), changes: ordered };
}

/** The content hash of an ordered list of changes. */
export function planHash(changes: readonly Change<unknown>[]): string {
  return hashJson({ version: 1, changes });
}

/** Check a plan read from outside (a file, the network): ids unique, hash matches. */
export function assertPlan(plan: Plan): Plan {
  const expected = planHash(plan.changes);
  if (plan.hash !== expected) {
    throw new OpdbusError(
      'OPDBUS_ERR_PLAN_INVALID',
      `Plan hash mismatch: the plan says ${plan.hash} but its changes hash to ${expected}; recompute the plan.`,
      {
        data: { expected, actual: plan.hash },
      },
    );
  }
  createPlan(plan.changes);
  return plan;
}

/** Among the nodes left with indegree > 0 (all on or behind a cycle), find one cycle. */
function findCycle(successors: number[][], indegree: number[]): number[] {
  const remaining = new Set<number>();
  for (const [i, d] of indegree.entries()) if (d > 0) remaining.add(i);
  const state = new Map<number, 1 | 2>(); // 1 = on stack, 2 = done
  const stack: number[] = [];
  const visit = (i: number): number[] | undefined => {
    state.set(i, 1);
    stack.push(i);
    for (const j of successors[i]!) {
      if (!remaining.has(j)) continue;
      const s = state.get(j);
      if (s === 1) return stack.slice(stack.indexOf(j));
      if (s === undefined) {
        const found = visit(j);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(i, 2);
    return undefined;
  };
  for (const i of remaining) {
    if (state.has(i)) continue;
    const found = visit(i);
    if (found) return found;
  }
  return [...remaining];
}

/** A binary min-heap of indexes. */
class MinHeap {
  readonly #items: number[] = [];
  get size(): number {
    return this.#items.length;
  }
  push(value: number): void {
    const a = this.#items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= a[i]!) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }
  pop(): number {
    const a = this.#items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
