import { OpdbusError } from '@opdbus/core';
import { tableCodec, type Row, type Value, type WireRow } from './datum.js';
import type { Atom, DatabaseSchema } from './schema.js';

/**
 * The row types of a database by table name. Generated types (`opdbus codegen ovsdb`) provide
 * one, e.g. `OpenVSwitchTables` from `@opdbus/ovsdb/vswitch`; without one, every table is an
 * untyped {@link Row}.
 */
export type TableMap = object;

/** The default, untyped {@link TableMap}. */
export type UntypedTables = Record<string, Row>;

/** The value a column accepts on input: its own type, or a plain object for a string-keyed map. */
export type InputValue<V> =
  V extends ReadonlyMap<infer K, infer W>
    ? ReadonlyMap<K, W> | (K extends string ? Readonly<Record<string, W>> : never)
    : V extends readonly (infer E)[]
      ? readonly E[]
      : V;

/** A row to insert or the columns to update: every writable column, each optional. */
export type RowInput<R> = { [K in Exclude<keyof R, '_uuid' | '_version'>]?: InputValue<R[K]> };

/** Column names of a row type, including `_uuid` and `_version`. */
export type ColumnName<R> = (keyof R & string) | '_uuid' | '_version';

/** A condition function (RFC 7047 §5.1). */
export type ConditionFunction = '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes';

/**
 * One condition of a `where` clause: `[column, function, value]`, the value in its JavaScript
 * form. `true` and `false` are the constant conditions ovsdb-server accepts in monitor_cond.
 */
export type Condition<R = Row> =
  readonly [column: ColumnName<R>, fn: ConditionFunction, value: unknown] | boolean;

/** A mutator (RFC 7047 §5.1). */
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';

/** One mutation: `[column, mutator, value]`. */
export type Mutation<R = Row> = readonly [column: keyof R & string, mutator: Mutator, value: unknown];

/** `insert` (RFC 7047 §5.2.1). `uuidName` lets later operations refer to the new row. */
export interface InsertOperation<T extends string = string, R = Row> {
  op: 'insert';
  table: T;
  row: RowInput<R>;
  uuidName?: string;
  /** The uuid the row gets (ovsdb-server ≥ 2.13); by default the server picks one. */
  uuid?: string;
}

/** `select` (RFC 7047 §5.2.2). */
export interface SelectOperation<T extends string = string, R = Row> {
  op: 'select';
  table: T;
  where: readonly Condition<R>[];
  columns?: readonly ColumnName<R>[];
}

/** `update` (RFC 7047 §5.2.3). */
export interface UpdateOperation<T extends string = string, R = Row> {
  op: 'update';
  table: T;
  where: readonly Condition<R>[];
  row: RowInput<R>;
}

/** `mutate` (RFC 7047 §5.2.4). */
export interface MutateOperation<T extends string = string, R = Row> {
  op: 'mutate';
  table: T;
  where: readonly Condition<R>[];
  mutations: readonly Mutation<R>[];
}

/** `delete` (RFC 7047 §5.2.5). */
export interface DeleteOperation<T extends string = string, R = Row> {
  op: 'delete';
  table: T;
  where: readonly Condition<R>[];
}

/**
 * `wait` (RFC 7047 §5.2.6): until the rows matching `where`, projected on `columns`, are (`==`)
 * or are not (`!=`) exactly `rows`. `timeout` in ms; 0 fails at once — the optimistic-concurrency
 * guard. Without `timeout` it waits as long as it takes.
 */
export interface WaitOperation<T extends string = string, R = Row> {
  op: 'wait';
  table: T;
  where: readonly Condition<R>[];
  columns: readonly ColumnName<R>[];
  until: '==' | '!=';
  rows: readonly RowInput<R>[];
  timeout?: number;
}

/** `commit` (RFC 7047 §5.2.7). */
export interface CommitOperation {
  op: 'commit';
  durable: boolean;
}

/** `abort` (RFC 7047 §5.2.8): always fails, so the transaction does nothing. */
export interface AbortOperation {
  op: 'abort';
}

/** `comment` (RFC 7047 §5.2.9): logged by the server with the transaction. */
export interface CommentOperation {
  op: 'comment';
  comment: string;
}

/** `assert` (RFC 7047 §5.2.10): fails unless this client holds the lock. */
export interface AssertOperation {
  op: 'assert';
  lock: string;
}

type TableOperations<T extends string, R> =
  | InsertOperation<T, R>
  | SelectOperation<T, R>
  | UpdateOperation<T, R>
  | MutateOperation<T, R>
  | DeleteOperation<T, R>
  | WaitOperation<T, R>;

/** Any operation of a transaction, typed by the database's {@link TableMap}. */
export type Operation<TM extends TableMap = UntypedTables> =
  | { [T in keyof TM & string]: TableOperations<T, TM[T]> }[keyof TM & string]
  | CommitOperation
  | AbortOperation
  | CommentOperation
  | AssertOperation;

/** The result of an `insert`. */
export interface InsertResult {
  uuid: string;
}
/** The result of a `select`: whole rows, or the selected columns (with `_uuid` when selected). */
export interface SelectResult<R = Row> {
  rows: R[];
}
/** The result of `update`, `mutate` and `delete`: how many rows matched. */
export interface CountResult {
  count: number;
}
/** The result of `wait`, `commit`, `abort`, `comment` and `assert`. */
export type EmptyResult = Record<string, never>;

/** The result type of one operation. */
export type OperationResult<O, TM extends TableMap = UntypedTables> = O extends { op: 'insert' }
  ? InsertResult
  : O extends { op: 'select'; table: infer T }
    ? SelectResult<T extends keyof TM ? TM[T] : Row>
    : O extends { op: 'update' | 'mutate' | 'delete' }
      ? CountResult
      : EmptyResult;

/** The results of a list of operations, position by position. */
export type TransactResults<Ops extends readonly unknown[], TM extends TableMap = UntypedTables> = {
  -readonly [I in keyof Ops]: OperationResult<Ops[I], TM>;
};

function operationLabel(op: { op: string; table?: string }): string {
  return op.table === undefined ? op.op : `${op.op} ${op.table}`;
}

function encodeWhere(
  schema: DatabaseSchema,
  table: string,
  where: readonly unknown[] | undefined,
  what: string,
): unknown[] {
  if (!Array.isArray(where))
    throw new OpdbusError('OPDBUS_ERR_OVSDB_VALUE', `${what}: "where" must be an array of conditions.`, {
      data: { table },
    });
  const codec = tableCodec(schema, table);
  return where.map((condition: unknown) => {
    if (typeof condition === 'boolean') return condition;
    if (!Array.isArray(condition) || condition.length !== 3 || typeof condition[0] !== 'string')
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_VALUE',
        `${what}: the condition ${JSON.stringify(condition)} is not [column, function, value].`,
        { data: { table } },
      );
    const [column, fn, value] = condition as [string, string, unknown];
    return [column, fn, codec.column(column).encodeCondition(fn, value)];
  });
}

function encodeColumns(schema: DatabaseSchema, table: string, columns: readonly string[]): string[] {
  const codec = tableCodec(schema, table);
  for (const column of columns) codec.column(column);
  return [...columns];
}

/**
 * Encode one operation for the wire, validated against the schema. Errors are
 * `OPDBUS_ERR_OVSDB_VALUE` / `OPDBUS_ERR_OVSDB_SCHEMA` with `data.operationIndex`.
 */
export function encodeOperation(
  schema: DatabaseSchema,
  operation: Operation,
  index: number,
): Record<string, unknown> {
  const op = operation as Operation & { table?: string };
  const what = `operation ${index} (${operationLabel(op)})`;
  try {
    switch (op.op) {
      case 'insert': {
        const out: Record<string, unknown> = {
          op: 'insert',
          table: op.table,
          row: tableCodec(schema, op.table).encodeRow(op.row, false),
        };
        if (op.uuidName !== undefined) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(op.uuidName))
            throw new OpdbusError(
              'OPDBUS_ERR_OVSDB_VALUE',
              `uuidName ${JSON.stringify(op.uuidName)} is not an identifier.`,
            );
          out['uuid-name'] = op.uuidName;
        }
        if (op.uuid !== undefined) out.uuid = op.uuid;
        return out;
      }
      case 'select': {
        const out: Record<string, unknown> = {
          op: 'select',
          table: op.table,
          where: encodeWhere(schema, op.table, op.where, what),
        };
        if (op.columns !== undefined) out.columns = encodeColumns(schema, op.table, op.columns);
        return out;
      }
      case 'update':
        return {
          op: 'update',
          table: op.table,
          where: encodeWhere(schema, op.table, op.where, what),
          row: tableCodec(schema, op.table).encodeRow(op.row, true),
        };
      case 'mutate': {
        const codec = tableCodec(schema, op.table);
        return {
          op: 'mutate',
          table: op.table,
          where: encodeWhere(schema, op.table, op.where, what),
          mutations: op.mutations.map(([column, mutator, value]) => [
            column,
            mutator,
            codec.column(column).encodeMutation(mutator, value),
          ]),
        };
      }
      case 'delete':
        return { op: 'delete', table: op.table, where: encodeWhere(schema, op.table, op.where, what) };
      case 'wait': {
        const codec = tableCodec(schema, op.table);
        const columns = encodeColumns(schema, op.table, op.columns);
        const rows = op.rows.map((row) => {
          const out: WireRow = {};
          for (const [column, value] of Object.entries(row)) {
            if (value === undefined) continue;
            out[column] = codec.column(column).encode(value);
          }
          return out;
        });
        const out: Record<string, unknown> = {
          op: 'wait',
          table: op.table,
          where: encodeWhere(schema, op.table, op.where, what),
          columns,
          until: op.until,
          rows,
        };
        if (op.timeout !== undefined) out.timeout = op.timeout;
        return out;
      }
      case 'commit':
        return { op: 'commit', durable: op.durable };
      case 'abort':
        return { op: 'abort' };
      case 'comment':
        return { op: 'comment', comment: op.comment };
      case 'assert':
        return { op: 'assert', lock: op.lock };
      default:
        throw new OpdbusError(
          'OPDBUS_ERR_OVSDB_VALUE',
          `Unknown operation ${JSON.stringify((op as { op: unknown }).op)}; use insert, select, update, mutate, delete, wait, commit, abort, comment or assert.`,
        );
    }
  } catch (err) {
    if (err instanceof OpdbusError) {
      throw new OpdbusError(err.code, `In ${what}: ${err.message}`, {
        data: {
          ...err.data,
          operationIndex: index,
          operation: op.op,
          ...(op.table ? { table: op.table } : {}),
        },
        cause: err,
      });
    }
    throw err;
  }
}

/** An error result of one operation, as the server sent it. */
export interface OperationError {
  error: string;
  details?: string;
  [key: string]: unknown;
}

function isOperationError(value: unknown): value is OperationError {
  return (
    typeof value === 'object' && value !== null && typeof (value as { error?: unknown }).error === 'string'
  );
}

/**
 * Decode a transact reply: the results of each operation, or throw
 * `OPDBUS_ERR_OVSDB_TRANSACTION` with the server's error string, its details, the failing
 * operation's index (`data.operationIndex`; equal to the number of operations when the commit
 * itself failed) and every raw result.
 */
export function decodeResults(
  schema: DatabaseSchema,
  operations: readonly Operation[],
  reply: unknown,
): unknown[] {
  if (!Array.isArray(reply))
    throw new OpdbusError(
      'OPDBUS_ERR_OVSDB_PROTOCOL',
      `The server answered a transaction with ${JSON.stringify(reply)}, not an array.`,
    );
  for (const [index, result] of reply.entries()) {
    if (!isOperationError(result)) continue;
    const op = operations[index] as (Operation & { table?: string }) | undefined;
    const label = op === undefined ? 'commit' : `operation ${index} (${operationLabel(op)})`;
    const { error, details, ...rest } = result;
    throw new OpdbusError(
      'OPDBUS_ERR_OVSDB_TRANSACTION',
      `Transaction on ${schema.name} failed at ${label}: ${error}${details === undefined ? '' : `: ${details}`}.`,
      {
        data: {
          database: schema.name,
          error,
          ...(details === undefined ? {} : { details }),
          ...rest,
          operationIndex: index,
          ...(op === undefined ? {} : { operation: op.op }),
          ...(op?.table === undefined ? {} : { table: op.table }),
          results: reply,
        },
      },
    );
  }
  if (reply.length < operations.length)
    throw new OpdbusError(
      'OPDBUS_ERR_OVSDB_PROTOCOL',
      `The server answered ${operations.length} operations with ${reply.length} results and no error.`,
    );
  return operations.map((operation, index) => {
    const result = reply[index] as Record<string, unknown> | null;
    const op = operation as Operation & { table?: string };
    switch (op.op) {
      case 'insert': {
        const uuid = result?.uuid;
        if (!Array.isArray(uuid) || typeof uuid[1] !== 'string')
          throw new OpdbusError(
            'OPDBUS_ERR_OVSDB_PROTOCOL',
            `The insert result ${JSON.stringify(result)} has no uuid.`,
          );
        return { uuid: uuid[1] };
      }
      case 'select': {
        const rows = result?.rows;
        if (!Array.isArray(rows))
          throw new OpdbusError(
            'OPDBUS_ERR_OVSDB_PROTOCOL',
            `The select result ${JSON.stringify(result)} has no rows.`,
          );
        const codec = tableCodec(schema, op.table);
        return { rows: rows.map((row) => codec.decodeRow(row as WireRow)) };
      }
      case 'update':
      case 'mutate':
      case 'delete':
        return { count: typeof result?.count === 'number' ? result.count : 0 };
      default:
        return {};
    }
  });
}

/** A `Map` or object of string keys, as a plain object (for display and JSON). */
export function mapToObject(value: Value | undefined): Record<string, Atom> {
  if (value instanceof Map)
    return Object.fromEntries([...(value as Map<Atom, Atom>).entries()].map(([k, v]) => [String(k), v]));
  return {};
}
