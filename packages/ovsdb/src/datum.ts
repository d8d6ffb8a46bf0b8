import { OpdbusError } from '@opdbus/core';
import type { Atom, BaseType, ColumnSchema, ColumnType, DatabaseSchema, TableSchema } from './schema.js';

/**
 * A column value in its JavaScript form:
 * - a scalar column: its atom;
 * - an optional column (min 0, max 1): the atom or `null`;
 * - a set column: an array of atoms;
 * - a map column: a `Map` (on input, a plain object also works when the keys are strings).
 *
 * A uuid is its text (`"550e8400-e29b-41d4-a716-446655440000"`). On input, a uuid column also
 * accepts a *named uuid* — an identifier such as `"newBridge"` that names a row inserted by an
 * earlier `insert` of the same transaction (its `uuidName`).
 */
export type Value = Atom | null | readonly Atom[] | ReadonlyMap<Atom, Atom>;

/** An atom on the wire (RFC 7047 §5.1 `<atom>`). */
export type WireAtom = string | number | boolean | readonly ['uuid' | 'named-uuid', string];

/** A value on the wire: an atom, `["set", [...]]` or `["map", [[k, v], ...]]`. */
export type WireValue =
  | WireAtom
  | readonly ['set', readonly WireAtom[]]
  | readonly ['map', readonly (readonly [WireAtom, WireAtom])[]];

/** A row on the wire: column name → wire value. */
export type WireRow = Record<string, unknown>;

/** A decoded row: column name → {@link Value}, plus `_uuid` (and `_version`) when present. */
export type Row = Record<string, Value | undefined>;

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const NAMED_UUID_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `text` is a uuid in its canonical 8-4-4-4-12 form. */
export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

/** Describe a base type for people: `string, one of "secure" | "standalone"`, `integer 0..4095`. */
export function describeBaseType(base: BaseType): string {
  const parts: string[] = [base.type];
  if (base.enum !== undefined) parts.push(`one of ${base.enum.map((e) => JSON.stringify(e)).join(' | ')}`);
  if (base.minInteger !== undefined || base.maxInteger !== undefined)
    parts.push(`${base.minInteger ?? '-∞'}..${base.maxInteger ?? '∞'}`);
  if (base.minReal !== undefined || base.maxReal !== undefined)
    parts.push(`${base.minReal ?? '-∞'}..${base.maxReal ?? '∞'}`);
  if (base.minLength !== undefined || base.maxLength !== undefined)
    parts.push(`length ${base.minLength ?? 0}..${base.maxLength ?? '∞'}`);
  if (base.refTable !== undefined)
    parts.push(`→ ${base.refTable}${base.refType === 'weak' ? ' (weak)' : ''}`);
  return parts.join(' ');
}

/** Describe a column type for people: `set (0..4096) of integer 0..4095`, `map string → string`. */
export function describeType(type: ColumnType): string {
  const key = describeBaseType(type.key);
  if (type.value !== undefined) return `map${sizeText(type)} ${key} → ${describeBaseType(type.value)}`;
  if (type.max === 1) return type.min === 1 ? key : `optional ${key}`;
  return `set${sizeText(type)} of ${key}`;
}

function sizeText(type: ColumnType): string {
  if (type.min === 0 && type.max === 'unlimited') return '';
  return ` (${type.min}..${type.max === 'unlimited' ? '∞' : type.max})`;
}

function show(value: unknown): string {
  if (value instanceof Map) return `Map(${JSON.stringify([...value.entries()])})`;
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  try {
    const text = JSON.stringify(value);
    return text.length > 120 ? `${text.slice(0, 120)}…` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function jsonSafe(value: unknown): unknown {
  if (value instanceof Map)
    return Object.fromEntries([...value.entries()].map(([k, v]) => [String(k), jsonSafe(v)]));
  if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol')
    return String(value);
  return value;
}

/** Where a value goes, for error messages. */
export interface ValueSite {
  readonly table: string;
  readonly column: string;
}

/** Throw `OPDBUS_ERR_OVSDB_VALUE` naming table, column, value and what was expected. */
export function valueError(site: ValueSite, value: unknown, why: string, type?: ColumnType): never {
  throw new OpdbusError(
    'OPDBUS_ERR_OVSDB_VALUE',
    `${site.table}.${site.column}: ${show(value)} ${why}${type === undefined ? '' : ` (the column is ${describeType(type)})`}.`,
    {
      data: {
        table: site.table,
        column: site.column,
        value: jsonSafe(value),
        ...(type === undefined ? {} : { expected: describeType(type) }),
      },
    },
  );
}

function protocolError(site: ValueSite, wire: unknown, type: ColumnType): never {
  throw new OpdbusError(
    'OPDBUS_ERR_OVSDB_PROTOCOL',
    `The server sent ${show(wire)} for ${site.table}.${site.column}, which is not a ${describeType(type)}.`,
    { data: { table: site.table, column: site.column, value: jsonSafe(wire) } },
  );
}

/** Why `value` is not a valid atom of `base` (undefined when it is). */
function atomProblem(base: BaseType, value: unknown, checkConstraints: boolean): string | undefined {
  switch (base.type) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return 'is not an integer';
      if (checkConstraints) {
        if (base.minInteger !== undefined && value < base.minInteger)
          return `is less than ${base.minInteger}`;
        if (base.maxInteger !== undefined && value > base.maxInteger)
          return `is greater than ${base.maxInteger}`;
      }
      break;
    case 'real':
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'is not a finite number';
      if (checkConstraints) {
        if (base.minReal !== undefined && value < base.minReal) return `is less than ${base.minReal}`;
        if (base.maxReal !== undefined && value > base.maxReal) return `is greater than ${base.maxReal}`;
      }
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return 'is not a boolean';
      break;
    case 'string':
      if (typeof value !== 'string') return 'is not a string';
      if (checkConstraints && (base.minLength !== undefined || base.maxLength !== undefined)) {
        const length = [...value].length;
        if (base.minLength !== undefined && length < base.minLength)
          return `is shorter than ${base.minLength} characters`;
        if (base.maxLength !== undefined && length > base.maxLength)
          return `is longer than ${base.maxLength} characters`;
      }
      break;
    case 'uuid':
      if (typeof value !== 'string' || (!UUID_RE.test(value) && !NAMED_UUID_RE.test(value)))
        return 'is neither a uuid nor a named uuid (an identifier naming a row inserted earlier in the transaction)';
      break;
  }
  if (checkConstraints && base.enum !== undefined && !base.enum.includes(value))
    return `is not one of ${base.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  return undefined;
}

function wireAtom(base: BaseType, value: Atom): WireAtom {
  if (base.type !== 'uuid') return value;
  const text = value as string;
  return UUID_RE.test(text) ? ['uuid', text.toLowerCase()] : ['named-uuid', text];
}

type AtomDecoder = (wire: unknown) => Atom;

function atomDecoder(base: BaseType, fail: (wire: unknown) => never): AtomDecoder {
  switch (base.type) {
    case 'uuid':
      return (w) => {
        if (Array.isArray(w) && (w[0] === 'uuid' || w[0] === 'named-uuid') && typeof w[1] === 'string')
          return w[1];
        return fail(w);
      };
    case 'string':
      return (w) => (typeof w === 'string' ? w : fail(w));
    case 'boolean':
      return (w) => (typeof w === 'boolean' ? w : fail(w));
    case 'integer':
    case 'real':
      return (w) => (typeof w === 'number' ? w : fail(w));
  }
}

/** Elements of a set given as an array, a JS `Set`, or a single atom. */
function setElements(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...(value as Set<unknown>)];
  return [value];
}

/** Entries of a map given as a `Map` or a plain object. */
function mapEntries(value: unknown): [unknown, unknown][] | undefined {
  if (value instanceof Map) return [...(value as Map<unknown, unknown>).entries()];
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Set))
    return Object.entries(value);
  return undefined;
}

/** Convert an object key (always a string) to the map's key type. */
function objectKey(base: BaseType, key: unknown): unknown {
  if (typeof key !== 'string') return key;
  if (base.type === 'integer' || base.type === 'real') return key.trim() === '' ? key : Number(key);
  if (base.type === 'boolean') return key === 'true' ? true : key === 'false' ? false : key;
  return key;
}

/**
 * Encoding and decoding of one column's values, compiled from its type: JavaScript values are
 * validated against the schema on the way out, and the server's values decoded on the way in.
 */
export class ColumnCodec {
  readonly site: ValueSite;
  readonly column: ColumnSchema;
  readonly #decodeKey: AtomDecoder;
  readonly #decodeValue: AtomDecoder | undefined;
  /** Map decoding without per-atom work (neither side is a uuid). */
  readonly #plainMap: boolean;

  constructor(table: string, column: ColumnSchema) {
    this.site = { table, column: column.name };
    this.column = column;
    const fail = (wire: unknown): never => protocolError(this.site, wire, column.type);
    this.#decodeKey = atomDecoder(column.type.key, fail);
    this.#decodeValue = column.type.value === undefined ? undefined : atomDecoder(column.type.value, fail);
    this.#plainMap = column.type.key.type !== 'uuid' && column.type.value?.type !== 'uuid';
  }

  #atom(base: BaseType, value: unknown, checkConstraints = true): WireAtom {
    const problem = atomProblem(base, value, checkConstraints);
    if (problem !== undefined) valueError(this.site, value, problem, this.column.type);
    return wireAtom(base, value as Atom);
  }

  /**
   * Encode a whole value of the column (insert, update, `==` conditions, wait rows), validated
   * against its type: atom types, enums, ranges, lengths, set and map sizes, duplicates.
   */
  encode(value: unknown, relaxSize = false): WireValue {
    const { type, kind } = this.column;
    if (value === undefined) valueError(this.site, value, 'is not a value', type);
    switch (kind) {
      case 'scalar':
        if (relaxSize && (value === null || (Array.isArray(value) && value.length === 0))) return ['set', []];
        if (Array.isArray(value) && value.length === 1) return this.#atom(type.key, value[0]);
        return this.#atom(type.key, value);
      case 'optional':
        if (value === null || (Array.isArray(value) && value.length === 0)) return ['set', []];
        if (Array.isArray(value) && value.length === 1) return this.#atom(type.key, value[0]);
        if (Array.isArray(value)) valueError(this.site, value, 'has more than one element', type);
        return this.#atom(type.key, value);
      case 'set':
        return this.#encodeSet(value, relaxSize);
      case 'map':
        return this.#encodeMap(value, relaxSize);
    }
  }

  #checkSize(value: unknown, n: number, relaxSize: boolean): void {
    const { min, max } = this.column.type;
    if (!relaxSize && n < min)
      valueError(this.site, value, `has ${n} element(s), fewer than ${min}`, this.column.type);
    if (max !== 'unlimited' && n > max)
      valueError(this.site, value, `has ${n} elements, more than ${max}`, this.column.type);
  }

  #encodeSet(value: unknown, relaxSize: boolean): WireValue {
    if (value === null) value = [];
    if (
      value instanceof Map ||
      (typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Set))
    )
      valueError(this.site, value, 'is not a set (give an array)', this.column.type);
    const elements = setElements(value);
    this.#checkSize(value, elements.length, relaxSize);
    const base = this.column.type.key;
    const out = elements.map((e) => this.#atom(base, e));
    if (elements.length > 1 && new Set(elements).size !== elements.length)
      valueError(this.site, value, 'has duplicate elements', this.column.type);
    return ['set', out];
  }

  #encodeMap(value: unknown, relaxSize: boolean): WireValue {
    const entries = value === null ? [] : mapEntries(value);
    if (entries === undefined)
      valueError(this.site, value, 'is not a map (give a Map or an object)', this.column.type);
    this.#checkSize(value, entries.length, relaxSize);
    const keyType = this.column.type.key;
    const valueType = this.column.type.value!;
    const fromObject = !(value instanceof Map);
    const out: (readonly [WireAtom, WireAtom])[] = [];
    for (const [k, v] of entries) {
      const key = fromObject ? objectKey(keyType, k) : k;
      out.push([this.#atom(keyType, key), this.#atom(valueType, v)]);
    }
    return ['map', out];
  }

  /**
   * Encode the operand of a mutation (RFC 7047 §5.1 `<mutation>`): an atom for the arithmetic
   * mutators; for `insert` a set (or map) of elements; for `delete` a set, or for a map column
   * either a map (pairs to remove) or a set of keys.
   */
  encodeMutation(mutator: string, value: unknown): WireValue {
    const { type, kind } = this.column;
    switch (mutator) {
      case '+=':
      case '-=':
      case '*=':
      case '/=':
      case '%=': {
        if (kind === 'map' || (type.key.type !== 'integer' && type.key.type !== 'real'))
          valueError(
            this.site,
            value,
            `cannot be used with "${mutator}": only integer and real columns do arithmetic`,
            type,
          );
        if (mutator === '%=' && type.key.type !== 'integer')
          valueError(this.site, value, 'cannot be used with "%=": only integer columns', type);
        return this.#atom(type.key, value, false);
      }
      case 'insert':
      case 'delete': {
        if (kind === 'scalar')
          valueError(
            this.site,
            value,
            `cannot be used with "${mutator}": the column holds exactly one value`,
            type,
          );
        if (kind === 'map') {
          if (mutator === 'delete' && (Array.isArray(value) || value instanceof Set)) {
            return ['set', setElements(value).map((k) => this.#atom(type.key, k))];
          }
          return this.#encodeMap(value, true);
        }
        const elements = setElements(value);
        return ['set', elements.map((e) => this.#atom(type.key, e))];
      }
      default:
        return valueError(
          this.site,
          value,
          `has an unknown mutator ${JSON.stringify(mutator)} (use += -= *= /= %= insert delete)`,
        );
    }
  }

  /** Encode the operand of a condition function (RFC 7047 §5.1 `<condition>`). */
  encodeCondition(fn: string, value: unknown): WireValue {
    const { type, kind } = this.column;
    switch (fn) {
      case '==':
      case '!=':
        return this.encode(value);
      case 'includes':
      case 'excludes':
        return this.encode(value, true);
      case '<':
      case '<=':
      case '>':
      case '>=':
        if (
          (kind !== 'scalar' && kind !== 'optional') ||
          (type.key.type !== 'integer' && type.key.type !== 'real')
        )
          valueError(
            this.site,
            value,
            `cannot be compared with "${fn}": only integer and real columns with one value can`,
            type,
          );
        return this.#atom(type.key, value, false);
      default:
        return valueError(
          this.site,
          value,
          `has an unknown condition function ${JSON.stringify(fn)} (use < <= == != >= > includes excludes)`,
        );
    }
  }

  /** Decode a value from the server. */
  decode(wire: unknown): Value {
    switch (this.column.kind) {
      case 'scalar':
        return this.#decodeKey(wire);
      case 'optional':
        if (Array.isArray(wire) && wire[0] === 'set') {
          const elements = wire[1] as unknown[];
          return elements.length === 0 ? null : this.#decodeKey(elements[0]);
        }
        return this.#decodeKey(wire);
      case 'set':
        return this.#decodeSet(wire);
      case 'map':
        return this.#decodeMap(wire);
    }
  }

  /**
   * Decode a `modify` value of an `update2`/`update3` notification: for a column with at most
   * one value it is the new value; for a set, the elements that were added or removed; for a
   * map, the pairs added, removed or changed (see {@link applyDiff}).
   */
  decodeDiff(wire: unknown): Value {
    return this.decode(wire);
  }

  #decodeSet(wire: unknown): Atom[] {
    if (Array.isArray(wire) && wire[0] === 'set') {
      const elements: unknown = wire[1];
      if (!Array.isArray(elements)) protocolError(this.site, wire, this.column.type);
      if (this.column.type.key.type !== 'uuid') return elements as Atom[];
      const out = new Array<Atom>(elements.length);
      for (let i = 0; i < elements.length; i++) out[i] = this.#decodeKey(elements[i]);
      return out;
    }
    return [this.#decodeKey(wire)];
  }

  #decodeMap(wire: unknown): Map<Atom, Atom> {
    if (!Array.isArray(wire) || wire[0] !== 'map' || !Array.isArray(wire[1]))
      protocolError(this.site, wire, this.column.type);
    const pairs = wire[1] as [unknown, unknown][];
    if (this.#plainMap) return new Map(pairs as [Atom, Atom][]);
    const out = new Map<Atom, Atom>();
    const decodeValue = this.#decodeValue!;
    for (const pair of pairs) out.set(this.#decodeKey(pair[0]), decodeValue(pair[1]));
    return out;
  }
}

/**
 * Apply an `update2` modify diff of one column to its old value (what ovsdb-server's
 * `ovsdb_datum_apply_diff` does): a column with at most one value takes the new value; a set
 * toggles each element of the diff; a map adds new keys, removes a key whose diff value equals
 * the old one, and replaces the value otherwise.
 */
export function applyDiff(column: ColumnSchema, old: Value | undefined, diff: Value): Value {
  switch (column.kind) {
    case 'scalar':
    case 'optional':
      return diff;
    case 'set': {
      const result = new Set(Array.isArray(old) ? (old as Atom[]) : []);
      for (const element of diff as Atom[]) {
        if (result.has(element)) result.delete(element);
        else result.add(element);
      }
      return [...result];
    }
    case 'map': {
      const result = new Map(old instanceof Map ? (old as Map<Atom, Atom>) : []);
      for (const [k, v] of diff as Map<Atom, Atom>) {
        const before = result.get(k);
        if (before === undefined) result.set(k, v);
        else if (before === v) result.delete(k);
        else result.set(k, v);
      }
      return result;
    }
  }
}

/**
 * The default value of a column (RFC 7047 §5.2.1: what an insert gives a column it does not
 * set): 0, 0.0, false, "" or the all-zero uuid for a scalar; `null` for an optional column; an
 * empty array or `Map` for a set or map. ovsdb-server leaves such columns out of `update2`
 * initial and insert rows.
 */
export function defaultValue(column: ColumnSchema): Value {
  switch (column.kind) {
    case 'optional':
      return null;
    case 'set':
      return [];
    case 'map':
      return new Map();
    case 'scalar':
      switch (column.type.key.type) {
        case 'integer':
        case 'real':
          return 0;
        case 'boolean':
          return false;
        case 'string':
          return '';
        case 'uuid':
          return '00000000-0000-0000-0000-000000000000';
      }
  }
}

/** The codecs of one table's columns. */
export class TableCodec {
  readonly table: TableSchema;
  readonly columns: ReadonlyMap<string, ColumnCodec>;
  readonly #database: string;

  constructor(database: string, table: TableSchema) {
    this.table = table;
    this.#database = database;
    const columns = new Map<string, ColumnCodec>();
    for (const column of table.columns.values())
      columns.set(column.name, new ColumnCodec(table.name, column));
    this.columns = columns;
  }

  /** The codec of a column; throws `OPDBUS_ERR_OVSDB_SCHEMA` naming the columns there are. */
  column(name: string): ColumnCodec {
    const codec = this.columns.get(name);
    if (codec === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_SCHEMA',
        `Table ${this.table.name} of database ${this.#database} has no column ${JSON.stringify(name)}; its columns are ${[...this.columns.keys()].join(', ')}.`,
        { data: { database: this.#database, table: this.table.name, column: name } },
      );
    }
    return codec;
  }

  /** Encode a row for insert (`update: false`) or update (`update: true`: immutable columns refused). */
  encodeRow(row: Readonly<Record<string, unknown>>, update: boolean): WireRow {
    const out: WireRow = {};
    for (const name in row) {
      const value = row[name];
      if (value === undefined) continue;
      if (name === '_uuid' || name === '_version')
        valueError(
          { table: this.table.name, column: name },
          value,
          'cannot be written: it is set by the server',
        );
      const codec = this.column(name);
      if (update && !codec.column.mutable)
        valueError(
          codec.site,
          value,
          'cannot be updated: the column is immutable (set it when inserting the row)',
        );
      out[name] = codec.encode(value);
    }
    return out;
  }

  /** Decode a row from the server (select results, monitor rows). */
  decodeRow(wire: WireRow, uuid?: string): Row {
    const out: Row = {};
    if (uuid !== undefined) out._uuid = uuid;
    for (const name in wire) {
      const codec = this.columns.get(name);
      if (codec === undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_OVSDB_PROTOCOL',
          `The server sent column ${JSON.stringify(name)} of ${this.table.name}, which the schema does not have.`,
          { data: { table: this.table.name, column: name } },
        );
      }
      out[name] = codec.decode(wire[name]);
    }
    return out;
  }

  /** Decode an `update2` modify (column diffs). */
  decodeDiff(wire: WireRow): Row {
    const out: Row = {};
    for (const name in wire) out[name] = this.column(name).decodeDiff(wire[name]);
    return out;
  }
}

const codecCache = new WeakMap<DatabaseSchema, Map<string, TableCodec>>();

/** The (cached) codec of a table of a schema; throws `OPDBUS_ERR_OVSDB_SCHEMA` for an unknown table. */
export function tableCodec(schema: DatabaseSchema, table: string): TableCodec {
  let tables = codecCache.get(schema);
  if (tables === undefined) {
    tables = new Map();
    codecCache.set(schema, tables);
  }
  let codec = tables.get(table);
  if (codec === undefined) {
    codec = new TableCodec(schema.name, schema.table(table));
    tables.set(table, codec);
  }
  return codec;
}
