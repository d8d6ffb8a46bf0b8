/**
 * @opdbus/core: the state document, the plugin contract, the planner and the transactional
 * applier of op-dbus.
 *
 * @packageDocumentation
 */
export {
  auditChanges,
  type AuditAnomaly,
  type AuditChange,
  type AuditChangesOptions,
  type AuditKind,
  type AuditProcess,
  type AuditRecord,
  type AuditSink,
} from './audit.js';
export {
  makeChange,
  resourceKey,
  type Change,
  type ChangeOp,
  type ChangeRisk,
  type ChangeSpec,
  type ResourceRef,
} from './change.js';
export {
  formatPath,
  loadStateDocument,
  parseStateDocument,
  readStateText,
  stringifyStateDocument,
  type DocumentIssue,
  type ParseOptions,
  type StateDocument,
} from './document.js';
export { Engine } from './engine/engine.js';
export {
  DEFAULT_JOURNAL_RETENTION,
  type ApplyOptions,
  type ApplyResult,
  type AuditRecordFields,
  type EngineOptions,
  type PlanResult,
  type QueryReport,
  type RecoveryReport,
  type VerifyOptions,
  type WatchdogOptions,
} from './engine/types.js';
export {
  OpdbusError,
  defineErrorCodes,
  errorCodeInfo,
  errorCodes,
  exitCategories,
  isErrorCodeMap,
  isOpdbusError,
  toOpdbusError,
  type CoreErrorCode,
  type ErrorCode,
  type ErrorCodeInfo,
  type ExitCategory,
  type OpdbusErrorOptions,
} from './errors.js';
export {
  EventBus,
  type EventBusOptions,
  type EventBusStats,
  type OpdbusEvent,
  type Subscription,
} from './events.js';
export {
  StateDir,
  StateLock,
  newTxId,
  terminalStatuses,
  writeFileAtomic,
  type Actor,
  type TransactionRecord,
  type TxStatus,
} from './journal.js';
export { canonicalJson, hashJson, type JsonValue } from './json.js';
export { isLazySchema, lazySchema } from './lazySchema.js';
export {
  REDACTED,
  boundedValue,
  clipText,
  limits,
  quoteInput,
  quoteValue,
  type HashedValue,
  type Limits,
  type RedactedValue,
} from './limits.js';
export {
  FileLock,
  currentCommand,
  describeLockOwner,
  type FileLockOptions,
  type LockOwner,
  type LockProbe,
} from './lock.js';
export { silentLogger, type LogFn, type Logger } from './logger.js';
export { IFNAMSIZ, interfaceNameProblem, isValidInterfaceName } from './names.js';
export { checkOutputPath, writeOutputFile } from './output.js';
export { assertPlan, createPlan, planHash, type Plan } from './planner.js';
export {
  assertPlugin,
  defineExpansionPlugin,
  definePlugin,
  type AnyPlugin,
  type ExpansionPlugin,
  type Expansion,
  type PlanNote,
  type NetnsRunner,
  type Plugin,
  type PluginContext,
  type ProbeResult,
  type QueryOptions,
  type RedactedChangeValues,
  type TargetSpec,
  type Unsubscribe,
  type WatchEvent,
} from './plugin.js';
export { PLUGIN_CONTRACT_VERSION } from './contract.js';
export { packageVersion } from './packageVersion.js';
export { isAlive, processStartTime, selfIdentity, type ProcessIdentity } from './process.js';
export { PluginRegistry } from './registry.js';
