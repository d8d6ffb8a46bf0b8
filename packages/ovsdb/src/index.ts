/**
 * @opdbus/ovsdb: a complete OVSDB (RFC 7047) client — every method and operation, ovsdb-server's
 * monitor_cond / monitor_cond_since / monitor_cond_change, locks, echo keepalive, reconnect with
 * resynchronisation — with the OVSDB data model validated against the schema, an in-memory
 * replica (IDL), and TypeScript code generation from schemas.
 *
 * @packageDocumentation
 */
export { OVSDB_DEFAULT_PORT, formatOvsdbAddress, parseOvsdbAddress, type OvsdbAddress } from './address.js';
export {
  OvsdbClient,
  type ConnectionState,
  type LockState,
  type OvsdbClientEvents,
  type OvsdbClientOptions,
  type ReconnectOptions,
  type RequestOptions,
} from './client.js';
export { Database, type DatabaseClient } from './database.js';
export { generateTypes, pascalCase, typesFileName, type CodegenOptions } from './codegen.js';
export {
  matchesConditions,
  normalizeConditions,
  rowEquals,
  valueEquals,
  type NormalizedCondition,
} from './condition.js';
export {
  ColumnCodec,
  TableCodec,
  applyDiff,
  defaultValue,
  describeBaseType,
  describeType,
  isUuid,
  tableCodec,
  type Row,
  type Value,
  type ValueSite,
  type WireAtom,
  type WireRow,
  type WireValue,
} from './datum.js';
export { ovsdbErrors, type OvsdbErrorCode } from './errors.js';
export { JsonStreamParser, type JsonStreamParserOptions } from './jsonStream.js';
export {
  Monitor,
  type MonitorEvents,
  type MonitorMethod,
  type MonitorOptions,
  type MonitorRequest,
  type MonitorRequests,
  type RowUpdate,
  type UpdateBatch,
} from './monitor.js';
export {
  decodeResults,
  encodeOperation,
  mapToObject,
  type AbortOperation,
  type AssertOperation,
  type ColumnName,
  type CommentOperation,
  type CommitOperation,
  type Condition,
  type ConditionFunction,
  type CountResult,
  type DeleteOperation,
  type EmptyResult,
  type InputValue,
  type InsertOperation,
  type InsertResult,
  type MutateOperation,
  type Mutation,
  type Mutator,
  type Operation,
  type OperationError,
  type OperationResult,
  type RowInput,
  type SelectOperation,
  type SelectResult,
  type TableMap,
  type TransactResults,
  type UntypedTables,
  type UpdateOperation,
  type WaitOperation,
} from './operations.js';
export {
  Replica,
  type ChangeInfo,
  type ReplicaClient,
  type ReplicaEvents,
  type ReplicaOptions,
  type ReplicaRow,
  type RowChange,
} from './replica.js';
export {
  DatabaseSchema,
  type Atom,
  type AtomicType,
  type BaseType,
  type ColumnKind,
  type ColumnSchema,
  type ColumnType,
  type TableSchema,
} from './schema.js';
export type { OvsdbTlsOptions } from './transport.js';
