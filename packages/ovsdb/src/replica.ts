import { OpdbusError, type Logger } from '@opdbus/core';
import { rowEquals } from './condition.js';
import { applyDiff, type Row, type Value } from './datum.js';
import { Emitter } from './emitter.js';
import type { Monitor, MonitorMethod, MonitorOptions, MonitorRequests, UpdateBatch } from './monitor.js';
import type { TableMap, UntypedTables } from './operations.js';
import type { Atom, DatabaseSchema } from './schema.js';

/** A row of a replica: the monitored columns and its `_uuid`. */
export type ReplicaRow<R> = Readonly<R> & { readonly _uuid: string };

/** One change the replica went through. */
export interface RowChange<R = Row> {
  table: string;
  uuid: string;
  kind: 'insert' | 'update' | 'delete';
  /** The row before (update, delete). */
  old?: ReplicaRow<R>;
  /** The row after (insert, update). */
  new?: ReplicaRow<R>;
}

/** Context of a batch of changes. */
export interface ChangeInfo {
  /** The first contents (`initial`), a notification (`update`), or a resync after a reconnect. */
  cause: 'initial' | 'update' | 'resync';
  /** For a resync: whether the monitor resumed from its last transaction id (only the changes were sent). */
  resumed?: boolean;
}

/** Events of a {@link Replica}. */
export type ReplicaEvents<TM extends TableMap> = {
  /** Rows changed: one event per server notification, with every row change in it. */
  change: [changes: RowChange<TM[keyof TM]>[], info: ChangeInfo];
  /** The monitor ended (the client was closed). */
  close: [error: Error];
};

/** Options of {@link Replica.create}. */
export interface ReplicaOptions<TM extends TableMap> {
  /** The database, e.g. `Open_vSwitch`. */
  database: string;
  /** The tables (and columns, conditions) to replicate. */
  tables: MonitorRequests<TM>;
  /** The monitor method (default `auto`: monitor_cond_since, with fallback). */
  method?: MonitorMethod | 'auto';
}

/** What a {@link Replica} uses of its client (an `OvsdbClient` is one). */
export interface ReplicaClient {
  readonly logger: Logger;
  monitor<TM extends TableMap = UntypedTables>(
    database: string,
    requests: MonitorRequests<TM>,
    options?: MonitorOptions,
  ): Promise<Monitor<TM>>;
  sync(): Promise<void>;
}

/**
 * An in-memory replica of chosen tables of an OVSDB database (what the OVS IDL is to C and
 * Python), kept current from a monitor: rows by uuid, lookups by column value, and `change`
 * events. It survives reconnects: the monitor is re-established, and when it cannot resume from
 * the last transaction id the replica compares the new contents with what it had and reports
 * only the differences.
 *
 * @example
 * ```ts
 * const replica = await Replica.create(client, { database: 'Open_vSwitch', tables: { Bridge: { columns: ['name', 'ports'] } } });
 * replica.on('change', (changes) => console.log(changes.map((c) => `${c.kind} ${c.table} ${c.uuid}`)));
 * console.log(replica.lookup('Bridge', 'name', 'br0'));
 * ```
 */
export class Replica<TM extends TableMap = UntypedTables> {
  readonly client: ReplicaClient;
  readonly monitor: Monitor<TM>;
  readonly #tables = new Map<string, Map<string, Row>>();
  readonly #indexes = new Map<string, Map<string, Map<Atom, Row>>>();
  readonly #events: Emitter<ReplicaEvents<TM>>;
  #first = true;
  #offUpdate: () => void = () => undefined;
  #closed = false;

  private constructor(client: ReplicaClient, monitor: Monitor<TM>) {
    this.client = client;
    this.monitor = monitor;
    this.#events = new Emitter(() => client.logger);
    for (const table of Object.keys(monitor.requests)) this.#tables.set(table, new Map());
  }

  /**
   * Monitor the tables and build the replica from their initial contents. Throws what
   * {@link ReplicaClient.monitor} throws (unknown table or column, server errors).
   */
  static async create<TM extends TableMap = UntypedTables>(
    client: ReplicaClient,
    options: ReplicaOptions<TM>,
  ): Promise<Replica<TM>> {
    // Updates (the initial contents first) arrive during monitor(): buffer them until the
    // replica exists, then apply them in order.
    const holder: { replica?: Replica<TM> } = {};
    const early: UpdateBatch[] = [];
    const monitor = await client.monitor<TM>(options.database, options.tables, {
      method: options.method ?? 'auto',
      onUpdate: (batch) => {
        if (holder.replica === undefined) early.push(batch);
        else holder.replica._apply(batch);
      },
    });
    const created = new Replica<TM>(client, monitor);
    for (const batch of early) created._apply(batch);
    holder.replica = created;
    created._attach(monitor.on('close', (error) => created._emitClose(error)));
    return created;
  }

  /** The database schema. */
  get schema(): DatabaseSchema {
    return this.monitor.schema;
  }

  /** The last transaction id seen (monitor_cond_since). */
  get lastTxnId(): string | undefined {
    return this.monitor.lastTxnId;
  }

  /** Subscribe to `change` (and `close`); returns the unsubscribe function. */
  on<K extends keyof ReplicaEvents<TM>>(
    event: K,
    listener: (...args: ReplicaEvents<TM>[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /** The rows of a table by uuid (a live view: do not modify). */
  table<T extends keyof TM & string>(name: T): ReadonlyMap<string, ReplicaRow<TM[T]>> {
    return this.#table(name) as unknown as ReadonlyMap<string, ReplicaRow<TM[T]>>;
  }

  #table(name: string): Map<string, Row> {
    const table = this.#tables.get(name);
    if (table === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_SCHEMA',
        `The replica does not hold table ${JSON.stringify(name)}; it replicates ${[...this.#tables.keys()].join(', ')}.`,
        { data: { table: name } },
      );
    }
    return table;
  }

  /** A row by uuid. */
  get<T extends keyof TM & string>(table: T, uuid: string): ReplicaRow<TM[T]> | undefined {
    return this.#table(table).get(uuid) as ReplicaRow<TM[T]> | undefined;
  }

  /** Every row of a table. */
  rows<T extends keyof TM & string>(table: T): ReplicaRow<TM[T]>[] {
    return [...this.#table(table).values()] as ReplicaRow<TM[T]>[];
  }

  /** The rows of a table that satisfy `predicate`. */
  filter<T extends keyof TM & string>(
    table: T,
    predicate: (row: ReplicaRow<TM[T]>) => boolean,
  ): ReplicaRow<TM[T]>[] {
    const out: ReplicaRow<TM[T]>[] = [];
    for (const row of this.#table(table).values())
      if (predicate(row as ReplicaRow<TM[T]>)) out.push(row as ReplicaRow<TM[T]>);
    return out;
  }

  /**
   * The row whose `column` (a column with one value, typically an indexed one such as `name`)
   * equals `value`. The first lookup on a column builds an index that is kept current.
   */
  lookup<T extends keyof TM & string>(
    table: T,
    column: keyof TM[T] & string,
    value: Atom,
  ): ReplicaRow<TM[T]> | undefined {
    let byColumn = this.#indexes.get(table);
    if (byColumn === undefined) {
      byColumn = new Map();
      this.#indexes.set(table, byColumn);
    }
    let index = byColumn.get(column);
    if (index === undefined) {
      index = new Map();
      for (const row of this.#table(table).values()) {
        const key = row[column];
        if (key !== undefined && key !== null && typeof key !== 'object') index.set(key, row);
      }
      byColumn.set(column, index);
    }
    return index.get(value) as ReplicaRow<TM[T]> | undefined;
  }

  /** Resolves once every change committed before the call is in the replica (see {@link ReplicaClient.sync}). */
  sync(): Promise<void> {
    return this.client.sync();
  }

  /**
   * Wait until `check` returns something other than `undefined` or `false`, re-checking after each
   * change. Throws `OPDBUS_ERR_OVSDB_TIMEOUT` after `timeoutMs` (default 10 s).
   */
  waitFor<T>(
    check: () => T | undefined | false,
    options: { timeoutMs?: number; signal?: AbortSignal; what?: string } = {},
  ): Promise<T> {
    const first = check();
    if (first !== undefined && first !== false) return Promise.resolve(first);
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const finish = (fn: () => void): void => {
        off();
        offClose();
        clearTimeout(timer);
        if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const off = this.on('change', () => {
        let value: T | undefined | false;
        try {
          value = check();
        } catch (err) {
          finish(() => reject(err instanceof Error ? err : new Error(String(err))));
          return;
        }
        if (value !== undefined && value !== false) finish(() => resolve(value));
      });
      const offClose = this.on('close', (error) => finish(() => reject(error)));
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new OpdbusError(
                'OPDBUS_ERR_OVSDB_TIMEOUT',
                `The replica of ${this.monitor.database} did not reach ${options.what ?? 'the expected state'} within ${timeoutMs} ms.`,
                { data: { database: this.monitor.database, timeoutMs } },
              ),
            ),
          ),
        timeoutMs,
      );
      let onAbort: (() => void) | undefined;
      if (options.signal !== undefined) {
        onAbort = () => finish(() => reject(options.signal!.reason as Error));
        options.signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  /** Stop replicating (cancels the monitor; the client stays open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offUpdate();
    await this.monitor.cancel();
  }

  /** @internal Apply a batch of updates and emit the changes. */
  _apply(batch: UpdateBatch): void {
    const schema = this.monitor.schema;
    const changes: RowChange[] = [];
    const info: ChangeInfo = this.#first
      ? { cause: 'initial' }
      : batch.resumed !== undefined
        ? { cause: 'resync', resumed: batch.resumed }
        : { cause: 'update' };
    this.#first = false;
    if (batch.reset) {
      // Full contents: compare with what we had and report only the differences.
      const fresh = new Map<string, Map<string, Row>>();
      for (const table of this.#tables.keys()) fresh.set(table, new Map());
      for (const update of batch.updates) {
        if (update.kind === 'initial' || update.kind === 'insert' || update.kind === 'replace')
          fresh.get(update.table)?.set(update.uuid, update.row);
      }
      for (const [table, rows] of fresh) {
        const old = this.#tables.get(table)!;
        for (const [uuid, row] of rows) {
          const before = old.get(uuid);
          if (before === undefined)
            changes.push({ table, uuid, kind: 'insert', new: row as ReplicaRow<Row> });
          else if (!rowEquals(before, row))
            changes.push({
              table,
              uuid,
              kind: 'update',
              old: before as ReplicaRow<Row>,
              new: row as ReplicaRow<Row>,
            });
          else rows.set(uuid, before);
        }
        for (const [uuid, row] of old)
          if (!rows.has(uuid)) changes.push({ table, uuid, kind: 'delete', old: row as ReplicaRow<Row> });
        this.#tables.set(table, rows);
      }
      this.#indexes.clear();
    } else {
      for (const update of batch.updates) {
        const rows = this.#tables.get(update.table);
        if (rows === undefined) continue;
        const before = rows.get(update.uuid);
        switch (update.kind) {
          case 'initial':
          case 'insert':
            rows.set(update.uuid, update.row);
            changes.push(
              before === undefined
                ? {
                    table: update.table,
                    uuid: update.uuid,
                    kind: 'insert',
                    new: update.row as ReplicaRow<Row>,
                  }
                : {
                    table: update.table,
                    uuid: update.uuid,
                    kind: 'update',
                    old: before as ReplicaRow<Row>,
                    new: update.row as ReplicaRow<Row>,
                  },
            );
            break;
          case 'replace':
          case 'modify': {
            const next: Row = { ...(before ?? { _uuid: update.uuid }) };
            if (update.kind === 'replace') Object.assign(next, update.row);
            else {
              const table = schema.table(update.table);
              for (const column in update.diff) {
                const columnSchema = table.columns.get(column);
                if (columnSchema === undefined) continue;
                next[column] = applyDiff(columnSchema, before?.[column], update.diff[column] as Value);
              }
            }
            rows.set(update.uuid, next);
            changes.push(
              before === undefined
                ? { table: update.table, uuid: update.uuid, kind: 'insert', new: next as ReplicaRow<Row> }
                : {
                    table: update.table,
                    uuid: update.uuid,
                    kind: 'update',
                    old: before as ReplicaRow<Row>,
                    new: next as ReplicaRow<Row>,
                  },
            );
            break;
          }
          case 'delete':
            if (before !== undefined) {
              rows.delete(update.uuid);
              changes.push({
                table: update.table,
                uuid: update.uuid,
                kind: 'delete',
                old: before as ReplicaRow<Row>,
              });
            }
            break;
        }
      }
      this.#updateIndexes(changes);
    }
    if (changes.length > 0 || info.cause !== 'update')
      this.#events.emit('change', changes as RowChange<TM[keyof TM]>[], info);
  }

  #updateIndexes(changes: readonly RowChange[]): void {
    if (this.#indexes.size === 0) return;
    for (const change of changes) {
      const byColumn = this.#indexes.get(change.table);
      if (byColumn === undefined) continue;
      for (const [column, index] of byColumn) {
        const oldKey = change.old?.[column];
        if (
          oldKey !== undefined &&
          oldKey !== null &&
          typeof oldKey !== 'object' &&
          index.get(oldKey) === change.old
        )
          index.delete(oldKey);
        const newKey = change.new?.[column];
        if (change.new !== undefined && newKey !== undefined && newKey !== null && typeof newKey !== 'object')
          index.set(newKey, change.new);
      }
    }
  }

  /** @internal Wire the replica to its monitor. */
  _attach(off: () => void): void {
    this.#offUpdate = off;
  }

  /** @internal */
  _emitClose(error: Error): void {
    this.#events.emit('close', error);
  }
}
