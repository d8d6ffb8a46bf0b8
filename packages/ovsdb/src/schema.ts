import { OpdbusError } from '@opdbus/core';

/** The five atomic types of OVSDB (RFC 7047 §3.1). */
export type AtomicType = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';

/** An atom in its JavaScript form: integers and reals are numbers, a uuid is its text. */
export type Atom = string | number | boolean;

/** A base type: an atomic type with its constraints (RFC 7047 §3.2 `<base-type>`). */
export interface BaseType {
  readonly type: AtomicType;
  /** Allowed values, when the base type is an enumeration. */
  readonly enum?: readonly Atom[];
  readonly minInteger?: number;
  readonly maxInteger?: number;
  readonly minReal?: number;
  readonly maxReal?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  /** For uuids: the table the uuid refers to. */
  readonly refTable?: string;
  /** For references: strong (default) or weak. */
  readonly refType?: 'strong' | 'weak';
}

/**
 * How a column's value looks in JavaScript:
 * - `scalar`: exactly one atom (`min` = `max` = 1);
 * - `optional`: an atom or `null` (`min` 0, `max` 1);
 * - `set`: an array of atoms (`max` > 1);
 * - `map`: a `Map` (a `value` type is present).
 */
export type ColumnKind = 'scalar' | 'optional' | 'set' | 'map';

/** A column type (RFC 7047 §3.2 `<type>`). */
export interface ColumnType {
  readonly key: BaseType;
  readonly value?: BaseType;
  readonly min: number;
  readonly max: number | 'unlimited';
}

/** A column of a table. */
export interface ColumnSchema {
  readonly name: string;
  readonly type: ColumnType;
  readonly kind: ColumnKind;
  /** Not persisted to disk. */
  readonly ephemeral: boolean;
  /** Can be changed after insertion (update / mutate). */
  readonly mutable: boolean;
}

/** A table of a database schema. */
export interface TableSchema {
  readonly name: string;
  /** Every column, including the implicit `_uuid` and `_version`. */
  readonly columns: ReadonlyMap<string, ColumnSchema>;
  /** The columns the schema declares (without `_uuid` and `_version`), in schema order. */
  readonly declaredColumns: readonly ColumnSchema[];
  readonly maxRows?: number;
  /** Rows of non-root tables are garbage-collected when nothing refers to them. */
  readonly isRoot: boolean;
  /** Each index is a set of columns whose values are unique across rows. */
  readonly indexes: readonly (readonly string[])[];
}

const atomicTypes: ReadonlySet<string> = new Set(['integer', 'real', 'boolean', 'string', 'uuid']);
const uuidType: ColumnType = { key: { type: 'uuid' }, min: 1, max: 1 };
const implicitColumns: readonly ColumnSchema[] = [
  { name: '_uuid', type: uuidType, kind: 'scalar', ephemeral: false, mutable: false },
  { name: '_version', type: uuidType, kind: 'scalar', ephemeral: false, mutable: false },
];

type Json = unknown;

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class SchemaParser {
  constructor(readonly source: string) {}

  fail(path: string, why: string): never {
    throw new OpdbusError('OPDBUS_ERR_OVSDB_SCHEMA', `${this.source}: ${path}: ${why}.`, {
      data: { source: this.source, path },
    });
  }

  object(value: Json, path: string): Record<string, Json> {
    if (!isObject(value)) this.fail(path, `expected an object, got ${JSON.stringify(value)}`);
    return value;
  }

  id(value: Json, path: string): string {
    if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value))
      this.fail(path, `expected an identifier, got ${JSON.stringify(value)}`);
    return value;
  }

  optionalNumber(o: Record<string, Json>, key: string, path: string, integer: boolean): number | undefined {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
      this.fail(
        `${path}.${key}`,
        `expected ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`,
      );
    return v;
  }

  baseType(value: Json, path: string): BaseType {
    if (typeof value === 'string') {
      if (!atomicTypes.has(value)) this.fail(path, `unknown atomic type ${JSON.stringify(value)}`);
      return { type: value as AtomicType };
    }
    const o = this.object(value, path);
    const type = o.type;
    if (typeof type !== 'string' || !atomicTypes.has(type))
      this.fail(
        `${path}.type`,
        `expected one of integer, real, boolean, string, uuid, got ${JSON.stringify(type)}`,
      );
    const base: {
      -readonly [K in keyof BaseType]: BaseType[K];
    } = { type: type as AtomicType };
    if (o.enum !== undefined) base.enum = this.enumValues(o.enum, base.type, `${path}.enum`);
    const num = (
      key: 'minInteger' | 'maxInteger' | 'minReal' | 'maxReal' | 'minLength' | 'maxLength',
      integer: boolean,
    ): void => {
      const v = this.optionalNumber(o, key, path, integer);
      if (v !== undefined) (base as Record<string, unknown>)[key] = v;
    };
    num('minInteger', true);
    num('maxInteger', true);
    num('minReal', false);
    num('maxReal', false);
    num('minLength', true);
    num('maxLength', true);
    if (o.refTable !== undefined) {
      if (base.type !== 'uuid') this.fail(`${path}.refTable`, 'only a uuid can refer to a table');
      base.refTable = this.id(o.refTable, `${path}.refTable`);
      const refType = o.refType ?? 'strong';
      if (refType !== 'strong' && refType !== 'weak')
        this.fail(`${path}.refType`, `expected "strong" or "weak", got ${JSON.stringify(refType)}`);
      base.refType = refType;
    }
    return base;
  }

  enumValues(value: Json, type: AtomicType, path: string): Atom[] {
    const elements: unknown = Array.isArray(value) && value[0] === 'set' ? value[1] : [value];
    if (!Array.isArray(elements)) this.fail(path, `expected an OVSDB set, got ${JSON.stringify(value)}`);
    return elements.map((e: Json, i) => {
      const atom =
        type === 'uuid' && Array.isArray(e) && e[0] === 'uuid' && typeof e[1] === 'string' ? e[1] : e;
      const ok =
        (type === 'string' && typeof atom === 'string') ||
        (type === 'integer' && Number.isInteger(atom)) ||
        (type === 'real' && typeof atom === 'number') ||
        (type === 'boolean' && typeof atom === 'boolean') ||
        (type === 'uuid' && typeof atom === 'string');
      if (!ok) this.fail(`${path}[${i}]`, `${JSON.stringify(e)} is not a ${type}`);
      return atom as Atom;
    });
  }

  columnType(value: Json, path: string): ColumnType {
    if (typeof value === 'string') return { key: this.baseType(value, path), min: 1, max: 1 };
    const o = this.object(value, path);
    const key = this.baseType(o.key, `${path}.key`);
    const min = o.min === undefined ? 1 : o.min;
    const max = o.max === undefined ? 1 : o.max;
    if (typeof min !== 'number' || !Number.isInteger(min) || min < 0 || min > 1)
      this.fail(`${path}.min`, `expected 0 or 1, got ${JSON.stringify(min)}`);
    if (max !== 'unlimited' && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max < min))
      this.fail(
        `${path}.max`,
        `expected a positive integer ≥ min or "unlimited", got ${JSON.stringify(max)}`,
      );
    const type: { key: BaseType; value?: BaseType; min: number; max: number | 'unlimited' } = {
      key,
      min,
      max,
    };
    if (o.value !== undefined) type.value = this.baseType(o.value, `${path}.value`);
    return type;
  }
}

function kindOf(type: ColumnType): ColumnKind {
  if (type.value !== undefined) return 'map';
  if (type.max === 1) return type.min === 1 ? 'scalar' : 'optional';
  return 'set';
}

/**
 * A database schema (RFC 7047 §3.2), parsed and checked: the tables, their columns and types,
 * with the implicit `_uuid` and `_version` columns. Built from `get_schema`'s reply or a
 * `.ovsschema` file with {@link DatabaseSchema.parse}.
 */
export class DatabaseSchema {
  readonly name: string;
  readonly version: string;
  readonly cksum: string | undefined;
  readonly tables: ReadonlyMap<string, TableSchema>;
  /** The schema as JSON, as it was given. */
  readonly json: Readonly<Record<string, unknown>>;

  private constructor(init: {
    name: string;
    version: string;
    cksum: string | undefined;
    tables: Map<string, TableSchema>;
    json: Record<string, unknown>;
  }) {
    this.name = init.name;
    this.version = init.version;
    this.cksum = init.cksum;
    this.tables = init.tables;
    this.json = init.json;
  }

  /**
   * Parse and check a schema. `source` names it in errors (a file name, or the server address).
   * Throws `OPDBUS_ERR_OVSDB_SCHEMA` with the path of the first problem.
   */
  static parse(json: unknown, source = 'schema'): DatabaseSchema {
    const p = new SchemaParser(source);
    const o = p.object(json, '(top)');
    const name = p.id(o.name, 'name');
    const version = o.version;
    if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version))
      p.fail('version', `expected "x.y.z", got ${JSON.stringify(version)}`);
    if (o.cksum !== undefined && typeof o.cksum !== 'string') p.fail('cksum', 'expected a string');
    const tablesJson = p.object(o.tables, 'tables');
    const anyRoot = Object.values(tablesJson).some((t) => isObject(t) && t.isRoot === true);
    const tables = new Map<string, TableSchema>();
    for (const [tableName, tableJson] of Object.entries(tablesJson)) {
      const path = `tables.${tableName}`;
      p.id(tableName, path);
      const t = p.object(tableJson, path);
      const columns = new Map<string, ColumnSchema>();
      for (const implicit of implicitColumns) columns.set(implicit.name, implicit);
      const declared: ColumnSchema[] = [];
      for (const [columnName, columnJson] of Object.entries(p.object(t.columns, `${path}.columns`))) {
        const cpath = `${path}.columns.${columnName}`;
        p.id(columnName, cpath);
        if (columnName.startsWith('_')) p.fail(cpath, 'column names starting with "_" are reserved');
        const c = p.object(columnJson, cpath);
        const type = p.columnType(c.type, `${cpath}.type`);
        if (c.ephemeral !== undefined && typeof c.ephemeral !== 'boolean')
          p.fail(`${cpath}.ephemeral`, 'expected a boolean');
        if (c.mutable !== undefined && typeof c.mutable !== 'boolean')
          p.fail(`${cpath}.mutable`, 'expected a boolean');
        const column: ColumnSchema = {
          name: columnName,
          type,
          kind: kindOf(type),
          ephemeral: c.ephemeral === true,
          mutable: c.mutable !== false,
        };
        columns.set(columnName, column);
        declared.push(column);
      }
      const maxRows = p.optionalNumber(t, 'maxRows', path, true);
      if (t.isRoot !== undefined && typeof t.isRoot !== 'boolean')
        p.fail(`${path}.isRoot`, 'expected a boolean');
      const indexes: string[][] = [];
      if (t.indexes !== undefined) {
        if (!Array.isArray(t.indexes)) p.fail(`${path}.indexes`, 'expected an array of column lists');
        for (const [i, index] of (t.indexes as Json[]).entries()) {
          if (!Array.isArray(index) || index.length === 0)
            p.fail(`${path}.indexes[${i}]`, 'expected a non-empty array of column names');
          for (const column of index as Json[])
            if (typeof column !== 'string' || !columns.has(column))
              p.fail(`${path}.indexes[${i}]`, `${JSON.stringify(column)} is not a column of ${tableName}`);
          indexes.push(index as string[]);
        }
      }
      tables.set(tableName, {
        name: tableName,
        columns,
        declaredColumns: declared,
        ...(maxRows === undefined ? {} : { maxRows }),
        // RFC 7047 §3.2: when no table says isRoot, every table is a root table.
        isRoot: anyRoot ? t.isRoot === true : true,
        indexes,
      });
    }
    for (const table of tables.values()) {
      for (const column of table.declaredColumns) {
        for (const base of [column.type.key, column.type.value]) {
          if (base?.refTable !== undefined && !tables.has(base.refTable))
            p.fail(
              `tables.${table.name}.columns.${column.name}.type`,
              `refTable ${base.refTable} is not a table of this schema`,
            );
        }
      }
    }
    return new DatabaseSchema({
      name,
      version: version as string,
      cksum: o.cksum as string | undefined,
      tables,
      json: o,
    });
  }

  /** The table with this name; throws `OPDBUS_ERR_OVSDB_SCHEMA` naming the tables there are. */
  table(name: string): TableSchema {
    const table = this.tables.get(name);
    if (table === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_SCHEMA',
        `Database ${this.name} has no table ${JSON.stringify(name)}; its tables are ${[...this.tables.keys()].join(', ')}.`,
        { data: { database: this.name, table: name } },
      );
    }
    return table;
  }

  /** A column of a table; throws `OPDBUS_ERR_OVSDB_SCHEMA` naming the columns there are. */
  column(tableName: string, name: string): ColumnSchema {
    const table = this.table(tableName);
    const column = table.columns.get(name);
    if (column === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_SCHEMA',
        `Table ${tableName} of database ${this.name} has no column ${JSON.stringify(name)}; its columns are ${[...table.columns.keys()].join(', ')}.`,
        { data: { database: this.name, table: tableName, column: name } },
      );
    }
    return column;
  }
}
