import { OpdbusError } from '@opdbus/core';
import { tableCodec, type Row, type Value } from './datum.js';
import type { Condition } from './operations.js';
import type { Atom, ColumnSchema, DatabaseSchema } from './schema.js';

/** A condition with its operand in canonical JavaScript form, for evaluation on the client. */
export type NormalizedCondition =
  boolean | { column: string; fn: string; kind: ColumnSchema['kind']; value: Value };

/** Whether two column values are equal (sets compare as sets, maps as maps). */
export function valueEquals(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true;
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map) || !(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a as Map<Atom, Atom>)
      if ((b as Map<Atom, Atom>).get(k) !== v || !b.has(k)) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    const left = Array.isArray(a) ? (a as Atom[]) : a === null || a === undefined ? [] : [a as Atom];
    const right = Array.isArray(b) ? (b as Atom[]) : b === null || b === undefined ? [] : [b as Atom];
    if (left.length !== right.length) return false;
    if (left.length === 1) return left[0] === right[0];
    const set = new Set(left);
    return right.every((e) => set.has(e));
  }
  return (a ?? null) === (b ?? null);
}

/** Whether two rows have equal values in every column either has. */
export function rowEquals(a: Row, b: Row): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (!valueEquals(a[key], b[key])) return false;
  return true;
}

function elements(value: Value | undefined): Atom[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value as Atom[];
  if (value instanceof Map) return [...(value as Map<Atom, Atom>).keys()];
  return [value as Atom];
}

/**
 * Encode a where clause for the wire and normalise it for client-side evaluation (the
 * `monitor` fallback, replicas). Throws `OPDBUS_ERR_OVSDB_VALUE` / `_SCHEMA` like transact does.
 */
export function normalizeConditions(
  schema: DatabaseSchema,
  table: string,
  where: readonly Condition<Row>[] | readonly unknown[],
): { where: unknown[]; normalized: NormalizedCondition[] } {
  const codec = tableCodec(schema, table);
  const wire: unknown[] = [];
  const normalized: NormalizedCondition[] = [];
  for (const condition of where) {
    if (typeof condition === 'boolean') {
      wire.push(condition);
      normalized.push(condition);
      continue;
    }
    if (!Array.isArray(condition) || condition.length !== 3 || typeof condition[0] !== 'string')
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_VALUE',
        `${table}: the condition ${JSON.stringify(condition)} is not [column, function, value].`,
        {
          data: { table },
        },
      );
    const [column, fn, value] = condition as [string, string, unknown];
    const columnCodec = codec.column(column);
    const encoded = columnCodec.encodeCondition(fn, value);
    wire.push([column, fn, encoded]);
    // Decode what was encoded: the canonical JavaScript form (relaxed sizes decode as sets).
    const { kind } = columnCodec.column;
    let canonical: Value;
    if (Array.isArray(encoded) && encoded[0] === 'set') {
      const atoms = (encoded[1] as unknown[]).map((a) => (Array.isArray(a) ? (a[1] as string) : (a as Atom)));
      canonical = kind === 'scalar' || kind === 'optional' ? (atoms.length === 0 ? null : atoms[0]!) : atoms;
    } else if (Array.isArray(encoded) && encoded[0] === 'map') {
      canonical = new Map(
        (encoded[1] as [unknown, unknown][]).map(([k, v]) => [
          Array.isArray(k) ? (k[1] as string) : (k as Atom),
          Array.isArray(v) ? (v[1] as string) : (v as Atom),
        ]),
      );
    } else if (Array.isArray(encoded)) {
      canonical = encoded[1] as string;
    } else {
      canonical = encoded as Atom;
    }
    if (kind === 'set' && !Array.isArray(canonical))
      canonical = canonical === null ? [] : [canonical as Atom];
    normalized.push({ column, fn, kind, value: canonical });
  }
  return { where: wire, normalized };
}

/** Evaluate normalised conditions on a decoded row (all must hold), as ovsdb-server does. */
export function matchesConditions(row: Row, conditions: readonly NormalizedCondition[]): boolean {
  for (const condition of conditions) {
    if (typeof condition === 'boolean') {
      if (!condition) return false;
      continue;
    }
    const actual = row[condition.column];
    const arg = condition.value;
    let ok: boolean;
    switch (condition.fn) {
      case '==':
        ok = valueEquals(actual, arg);
        break;
      case '!=':
        ok = !valueEquals(actual, arg);
        break;
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const a = elements(actual)[0];
        const b = elements(arg)[0];
        if (typeof a !== 'number' || typeof b !== 'number') ok = false;
        else
          ok =
            condition.fn === '<'
              ? a < b
              : condition.fn === '<='
                ? a <= b
                : condition.fn === '>'
                  ? a > b
                  : a >= b;
        break;
      }
      case 'includes':
      case 'excludes': {
        let hits: number;
        let total: number;
        if (arg instanceof Map) {
          const map = actual instanceof Map ? (actual as Map<Atom, Atom>) : new Map<Atom, Atom>();
          total = arg.size;
          hits = 0;
          for (const [k, v] of arg as Map<Atom, Atom>) if (map.has(k) && map.get(k) === v) hits++;
        } else {
          const have = new Set(elements(actual));
          const want = elements(arg);
          total = want.length;
          hits = want.filter((e) => have.has(e)).length;
        }
        ok = condition.fn === 'includes' ? hits === total : hits === 0;
        break;
      }
      default:
        ok = false;
    }
    if (!ok) return false;
  }
  return true;
}
