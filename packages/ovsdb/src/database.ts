import type { Monitor, MonitorOptions, MonitorRequests } from './monitor.js';
import type { Operation, TableMap, TransactResults, UntypedTables } from './operations.js';
import { Replica, type ReplicaClient, type ReplicaOptions } from './replica.js';
import type { RequestOptions } from './requestOptions.js';
import type { DatabaseSchema } from './schema.js';

/** What a {@link Database} uses of its client (an `OvsdbClient` is one). */
export interface DatabaseClient extends ReplicaClient {
  getSchema(database: string, options?: RequestOptions): Promise<DatabaseSchema>;
  transact(database: string, operations: readonly Operation[], options?: RequestOptions): Promise<unknown>;
}

/**
 * One database of a server, typed by its table map (`OpenVSwitchTables` from
 * `@opdbus/ovsdb/vswitch`, or generated with `opdbus codegen ovsdb`). Get one with
 * {@link OvsdbClient.database}.
 */
export class Database<TM extends TableMap = UntypedTables> {
  readonly client: DatabaseClient;
  readonly name: string;

  constructor(client: DatabaseClient, name: string) {
    this.client = client;
    this.name = name;
  }

  /** The schema (`get_schema`, cached by the client). */
  schema(options?: RequestOptions): Promise<DatabaseSchema> {
    return this.client.getSchema(this.name, options);
  }

  /** `transact` on this database, with operations and results typed by the table map. */
  transact<const Ops extends readonly Operation<TM>[]>(
    operations: Ops,
    options?: RequestOptions,
  ): Promise<TransactResults<Ops, TM>> {
    return this.client.transact(this.name, operations as readonly Operation[], options) as Promise<
      TransactResults<Ops, TM>
    >;
  }

  /** A monitor of this database (see {@link OvsdbClient.monitor}). */
  monitor(requests: MonitorRequests<TM>, options?: MonitorOptions): Promise<Monitor<TM>> {
    return this.client.monitor<TM>(this.name, requests, options);
  }

  /** A {@link Replica} of tables of this database. */
  replica(
    tables: MonitorRequests<TM>,
    options: Omit<ReplicaOptions<TM>, 'database' | 'tables'> = {},
  ): Promise<Replica<TM>> {
    return Replica.create<TM>(this.client, { ...options, database: this.name, tables });
  }
}
