import { OpdbusError, type Logger } from '@opdbus/core';
import { matchesConditions, normalizeConditions, type NormalizedCondition } from './condition.js';
import { defaultValue, tableCodec, type Row, type WireRow } from './datum.js';
import type { ColumnSchema } from './schema.js';
import { Emitter } from './emitter.js';
import type { Condition, TableMap, UntypedTables } from './operations.js';
import type { DatabaseSchema } from './schema.js';

/** The monitor methods, newest first. */
export type MonitorMethod = 'monitor_cond_since' | 'monitor_cond' | 'monitor';

/** What to monitor in one table. */
export interface MonitorRequest<R = Row> {
  /** Columns to monitor (default: every column). */
  columns?: readonly (keyof R & string)[];
  /** Only rows matching every condition (monitor_cond); `[]` or absent means all rows. */
  where?: readonly Condition<R>[];
  /** Which kinds of change to receive (default: all). */
  select?: { initial?: boolean; insert?: boolean; delete?: boolean; modify?: boolean };
}

/** Tables to monitor: `true` monitors every column of every row. */
export type MonitorRequests<TM extends TableMap = UntypedTables> = {
  [T in keyof TM & string]?: MonitorRequest<TM[T]> | true;
};

/** Options of {@link OvsdbClient.monitor}. */
export interface MonitorOptions {
  /** The method, or `auto` (default): the newest the server knows. */
  method?: MonitorMethod | 'auto';
  /** For `monitor_cond_since`: resume from this transaction id (e.g. persisted from an earlier run). */
  lastTxnId?: string;
  /** A listener for `update`, attached before the monitor starts, so it also gets the initial rows. */
  onUpdate?: (batch: UpdateBatch) => void;
}

/**
 * One change of one row, decoded. `initial`/`insert` carry the row; `modify` carries the
 * update2 diff of the changed columns (apply it with {@link applyDiff}); `replace` (from the old
 * `monitor` method) carries the new values of every monitored column; `delete` the row's last
 * contents when the server sent them.
 */
export type RowUpdate =
  | { table: string; uuid: string; kind: 'initial' | 'insert'; row: Row }
  | { table: string; uuid: string; kind: 'modify'; diff: Row }
  | { table: string; uuid: string; kind: 'replace'; row: Row }
  | { table: string; uuid: string; kind: 'delete'; old?: Row };

/** One batch of updates: the initial contents, or one notification. */
export interface UpdateBatch {
  updates: RowUpdate[];
  /**
   * The batch replaces everything seen before: the initial contents of a new monitor, or the
   * full contents after a reconnect that could not resume. Forget rows not in it.
   */
  reset: boolean;
  /** Set on the first batch after a reconnect: whether the monitor resumed from its last transaction id. */
  resumed?: boolean;
  /** The last transaction id after this batch (monitor_cond_since only). */
  lastTxnId?: string;
}

/** Events of a {@link Monitor}. */
export type MonitorEvents = {
  update: [batch: UpdateBatch];
  /** The client closed; the monitor ended. */
  close: [error: Error];
};

/** @internal What the client lends its monitors. */
export interface MonitorHost {
  /** The client's connection state (a monitor is cancelled on the server only while connected). */
  client: { readonly connected: boolean };
  request(method: string, params: unknown[]): Promise<unknown>;
  register(key: string, monitor: Monitor<TableMap>): void;
  unregister(key: string): void;
  logger: Logger;
}

function isUnknownMethod(err: unknown): boolean {
  return (
    err instanceof OpdbusError && err.code === 'OPDBUS_ERR_OVSDB_RPC' && err.data?.error === 'unknown method'
  );
}

/**
 * A monitor of one database: its `update` events carry decoded row updates. Created with
 * {@link OvsdbClient.monitor}; for a live copy of the rows use a {@link Replica}.
 */
export class Monitor<TM extends TableMap = UntypedTables> {
  readonly database: string;
  readonly schema: DatabaseSchema;
  readonly #host: MonitorHost;
  readonly #events: Emitter<MonitorEvents>;
  readonly #wanted: MonitorMethod | 'auto';
  #id: string;
  #requests: MonitorRequests<TM>;
  #method: MonitorMethod | undefined;
  #lastTxnId: string | undefined;
  #active = false;
  /** For the `monitor` fallback with conditions: the rows currently visible, per table. */
  #filters = new Map<string, NormalizedCondition[][]>();
  #visible = new Map<string, Set<string>>();
  #nextChange = 1;
  /** Per table, the monitored columns (to fill in the defaults update2 leaves out). */
  #columns = new Map<string, ColumnSchema[]>();

  /** @internal Use {@link OvsdbClient.monitor}. */
  constructor(
    host: MonitorHost,
    database: string,
    schema: DatabaseSchema,
    id: string,
    requests: MonitorRequests<TM>,
    method: MonitorMethod | 'auto',
  ) {
    this.#host = host;
    this.database = database;
    this.schema = schema;
    this.#id = id;
    this.#requests = requests;
    this.#wanted = method;
    this.#events = new Emitter(() => host.logger);
    // Check table and column names now, with clear errors.
    this.#encodeRequests('monitor_cond');
  }

  /** The monitor id (a JSON string) on the wire. */
  get id(): string {
    return this.#id;
  }

  /** The method in use: the newest the server accepted. */
  get method(): MonitorMethod {
    return this.#method ?? 'monitor';
  }

  /** The last transaction id seen (monitor_cond_since; undefined otherwise). */
  get lastTxnId(): string | undefined {
    return this.#lastTxnId;
  }

  /** What is monitored. */
  get requests(): MonitorRequests<TM> {
    return this.#requests;
  }

  /** Subscribe to `update` (and `close`); returns the unsubscribe function. */
  on<K extends keyof MonitorEvents>(event: K, listener: (...args: MonitorEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  #key(): string {
    return JSON.stringify(this.#id);
  }

  #encodeRequests(method: MonitorMethod): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.#columns.clear();
    for (const [table, raw] of Object.entries(this.#requests) as [
      string,
      MonitorRequest | true | undefined,
    ][]) {
      if (raw === undefined) continue;
      const codec = tableCodec(this.schema, table);
      const request = raw === true ? {} : raw;
      const columns = request.columns === undefined ? undefined : [...request.columns];
      for (const column of columns ?? []) codec.column(column);
      const wire: Record<string, unknown> = {};
      if (
        method === 'monitor' &&
        request.where !== undefined &&
        request.where.length > 0 &&
        columns !== undefined
      ) {
        // The old method has no conditions: the client filters, so it needs the condition columns.
        for (const condition of request.where)
          if (Array.isArray(condition) && !columns.includes(condition[0] as string))
            columns.push(condition[0] as string);
      }
      if (columns !== undefined) wire.columns = columns;
      const table_ = this.schema.table(table);
      this.#columns.set(
        table,
        columns === undefined
          ? [...table_.declaredColumns]
          : columns.map((c) => table_.columns.get(c)!).filter((c) => !c.name.startsWith('_')),
      );
      if (request.select !== undefined) wire.select = request.select;
      if (method !== 'monitor' && request.where !== undefined) {
        const { where } = normalizeConditions(this.schema, table, request.where);
        wire.where = where;
      }
      out[table] = [wire];
    }
    return out;
  }

  #prepareFilters(method: MonitorMethod): void {
    this.#filters.clear();
    this.#visible.clear();
    if (method !== 'monitor') return;
    for (const [table, raw] of Object.entries(this.#requests) as [
      string,
      MonitorRequest | true | undefined,
    ][]) {
      if (raw === undefined || raw === true || raw.where === undefined || raw.where.length === 0) continue;
      this.#filters.set(table, [normalizeConditions(this.schema, table, raw.where).normalized]);
      this.#visible.set(table, new Set());
    }
  }

  /** @internal Start: try the methods newest first (for `auto`) and deliver the initial rows. */
  async _start(lastTxnId: string): Promise<void> {
    const methods: MonitorMethod[] =
      this.#wanted === 'auto' ? ['monitor_cond_since', 'monitor_cond', 'monitor'] : [this.#wanted];
    this.#host.register(this.#key(), this);
    try {
      for (const [i, method] of methods.entries()) {
        try {
          await this.#subscribe(method, lastTxnId, undefined);
          return;
        } catch (err) {
          if (isUnknownMethod(err) && i < methods.length - 1) {
            this.#host.logger.info(
              { method },
              'the server does not know this monitor method; trying an older one',
            );
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      this.#host.unregister(this.#key());
      throw err;
    }
  }

  async #subscribe(method: MonitorMethod, lastTxnId: string, resumed: boolean | undefined): Promise<void> {
    this.#prepareFilters(method);
    const requests = this.#encodeRequests(method);
    const params: unknown[] = [this.database, this.#id, requests];
    if (method === 'monitor_cond_since') params.push(lastTxnId);
    this.#method = method;
    const reply = await this.#host.request(method, params);
    this.#active = true;
    if (method === 'monitor_cond_since') {
      if (!Array.isArray(reply) || typeof reply[0] !== 'boolean' || typeof reply[1] !== 'string')
        throw new OpdbusError(
          'OPDBUS_ERR_OVSDB_PROTOCOL',
          `monitor_cond_since returned ${JSON.stringify(reply).slice(0, 200)}.`,
        );
      const found = reply[0];
      this.#lastTxnId = reply[1];
      const updates = this.#decode2(reply[2], found ? undefined : 'initial');
      this.#deliver({
        updates,
        reset: !found,
        ...(resumed === undefined ? {} : { resumed: found }),
        lastTxnId: reply[1],
      });
      return;
    }
    this.#lastTxnId = undefined;
    const updates = method === 'monitor_cond' ? this.#decode2(reply, 'initial') : this.#decode1(reply, true);
    this.#deliver({ updates, reset: true, ...(resumed === undefined ? {} : { resumed: false }) });
  }

  /** @internal Re-establish after a reconnect. */
  async _resubscribe(): Promise<void> {
    if (!this.#active) return;
    const method = this.#method ?? 'monitor';
    await this.#subscribe(method, this.#lastTxnId ?? '00000000-0000-0000-0000-000000000000', true);
  }

  /** @internal A notification for this monitor. */
  _notify(method: string, args: unknown[]): void {
    if (!this.#active) return;
    if (method === 'update3') {
      if (typeof args[1] === 'string') this.#lastTxnId = args[1];
      this.#deliver({
        updates: this.#decode2(args[2], undefined),
        reset: false,
        ...(this.#lastTxnId ? { lastTxnId: this.#lastTxnId } : {}),
      });
    } else if (method === 'update2') {
      this.#deliver({ updates: this.#decode2(args[1], undefined), reset: false });
    } else {
      this.#deliver({ updates: this.#decode1(args[1], false), reset: false });
    }
  }

  /** @internal The client closed. */
  _closed(error: Error): void {
    this.#active = false;
    this.#events.emit('close', error);
  }

  #deliver(batch: UpdateBatch): void {
    this.#events.emit('update', batch);
  }

  /** update2 leaves columns with default values out of initial and insert rows: put them back. */
  #withDefaults(table: string, row: Row): Row {
    for (const column of this.#columns.get(table) ?? [])
      if (!(column.name in row)) row[column.name] = defaultValue(column);
    return row;
  }

  #decode2(tableUpdates: unknown, initialKind: 'initial' | undefined): RowUpdate[] {
    const out: RowUpdate[] = [];
    if (typeof tableUpdates !== 'object' || tableUpdates === null) return out;
    for (const [table, rows] of Object.entries(
      tableUpdates as Record<string, Record<string, Record<string, unknown>>>,
    )) {
      const codec = tableCodec(this.schema, table);
      for (const uuid in rows) {
        const update = rows[uuid]!;
        if (update.initial !== undefined) {
          out.push({
            table,
            uuid,
            kind: 'initial',
            row: this.#withDefaults(table, codec.decodeRow(update.initial as WireRow, uuid)),
          });
        } else if (update.insert !== undefined) {
          out.push({
            table,
            uuid,
            kind: initialKind ?? 'insert',
            row: this.#withDefaults(table, codec.decodeRow(update.insert as WireRow, uuid)),
          });
        } else if (update.modify !== undefined) {
          out.push({ table, uuid, kind: 'modify', diff: codec.decodeDiff(update.modify as WireRow) });
        } else if ('delete' in update) {
          const old = update.delete;
          out.push(
            typeof old === 'object' && old !== null
              ? { table, uuid, kind: 'delete', old: codec.decodeRow(old as WireRow, uuid) }
              : { table, uuid, kind: 'delete' },
          );
        }
      }
    }
    return out;
  }

  #decode1(tableUpdates: unknown, initial: boolean): RowUpdate[] {
    const out: RowUpdate[] = [];
    if (typeof tableUpdates !== 'object' || tableUpdates === null) return out;
    for (const [table, rows] of Object.entries(
      tableUpdates as Record<string, Record<string, { old?: WireRow; new?: WireRow }>>,
    )) {
      const codec = tableCodec(this.schema, table);
      const filter = this.#filters.get(table);
      const visible = this.#visible.get(table);
      for (const uuid in rows) {
        const update = rows[uuid]!;
        let result: Exclude<RowUpdate, { kind: 'modify' }> | undefined;
        if (update.new !== undefined && update.old === undefined) {
          result = {
            table,
            uuid,
            kind: initial ? 'initial' : 'insert',
            row: codec.decodeRow(update.new, uuid),
          };
        } else if (update.new === undefined) {
          result =
            update.old === undefined
              ? { table, uuid, kind: 'delete' }
              : { table, uuid, kind: 'delete', old: codec.decodeRow(update.old, uuid) };
        } else {
          result = { table, uuid, kind: 'replace', row: codec.decodeRow(update.new, uuid) };
        }
        if (filter !== undefined && visible !== undefined) {
          // Client-side conditions for the old `monitor` method: rows enter and leave the view.
          const wasVisible = visible.has(uuid);
          const current = result;
          const isVisible =
            current.kind !== 'delete' &&
            filter.some((conditions) => matchesConditions(current.row, conditions));
          if (isVisible && !wasVisible && current.kind === 'replace')
            result = { table, uuid, kind: 'insert', row: current.row };
          else if (!isVisible && wasVisible && result.kind !== 'delete')
            result = { table, uuid, kind: 'delete' };
          else if (!isVisible) result = undefined;
          if (isVisible) visible.add(uuid);
          else visible.delete(uuid);
        }
        if (result !== undefined) out.push(result);
      }
    }
    return out;
  }

  /**
   * Change what is monitored (ovsdb-server's `monitor_cond_change`): new conditions (and, where
   * the server allows, columns) for the given tables. With the old `monitor` method, which has no
   * such request, the monitor is cancelled and created again, and the next batch is a reset.
   */
  async change(requests: MonitorRequests<TM>): Promise<void> {
    const merged = { ...this.#requests, ...requests };
    if (this.#method === 'monitor') {
      await this.#host.request('monitor_cancel', [this.#id]);
      this.#requests = merged;
      await this.#subscribe('monitor', '00000000-0000-0000-0000-000000000000', undefined);
      return;
    }
    // monitor_cond_change takes only new conditions ("where") per table.
    const wire: Record<string, unknown> = {};
    for (const [table, raw] of Object.entries(requests) as [string, MonitorRequest | true | undefined][]) {
      if (raw === undefined) continue;
      const where = raw === true ? [] : (raw.where ?? []);
      wire[table] = [{ where: normalizeConditions(this.schema, table, where).where }];
    }
    const newId = `${this.#id.replace(/~\d+$/, '')}~${this.#nextChange++}`;
    const oldKey = this.#key();
    this.#host.register(JSON.stringify(newId), this);
    try {
      await this.#host.request('monitor_cond_change', [this.#id, newId, wire]);
    } catch (err) {
      this.#host.unregister(JSON.stringify(newId));
      throw err;
    }
    this.#host.unregister(oldKey);
    this.#id = newId;
    this.#requests = merged;
  }

  /** `monitor_cancel` (RFC 7047 §4.1.7): stop receiving updates. Idempotent. */
  async cancel(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    this.#host.unregister(this.#key());
    if (this.#host.client.connected) await this.#host.request('monitor_cancel', [this.#id]);
  }
}
