/**
 * @opdbus/plugins-ovs: Open vSwitch — bridges, ports, interfaces, controllers, managers — as
 * declared state for op-dbus, over OVSDB (RFC 7047) with @opdbus/ovsdb.
 *
 * @packageDocumentation
 */
export { bridgeOwn, diffSection, toJson, type BridgeCreateExtras } from './diff.js';
export { ovsErrors } from './errors.js';
export {
  bridgeResource,
  managerResource,
  observeAll,
  observeScoped,
  portResource,
  replicatedColumns,
  type OvsReplica,
} from './model.js';
export {
  DEFAULT_OVSDB_ADDRESS,
  OVS_LOCK,
  createOvsPlugin,
  ovsPlugin,
  restoreSection,
  type OvsCheckpoint,
  type OvsPlugin,
  type OvsPluginOptions,
} from './plugin.js';
export {
  bridgeSchema,
  controllerSchema,
  interfaceSchema,
  managerSchema,
  ovsSchema,
  portSchema,
  type OvsBridge,
  type OvsController,
  type OvsInterface,
  type OvsManager,
  type OvsPort,
  type OvsSection,
  type StringMapSpec,
} from './schema.js';
export {
  buildTransaction,
  currentState,
  parseResource,
  type BuiltTransaction,
  type ResourceRef,
} from './txn.js';
