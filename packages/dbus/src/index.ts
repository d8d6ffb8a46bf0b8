/**
 * @opdbus/dbus: D-Bus for Node — connections to the system bus, the session bus or any address;
 * typed proxies; a property cache kept current by PropertiesChanged; signal subscriptions with
 * match rules; errors that keep the D-Bus error name; an introspection parser and an object tree
 * walker; codegen of typed TypeScript bindings (introspect → build → deploy); and, for op-dbus
 * plugins, connecting to a plugin's target bus and mapping a section onto properties
 * ({@link definePropertyMap}). The `dbus` section's plugin is in @opdbus/plugins-dbus.
 *
 * @packageDocumentation
 */
export {
  DEFAULT_SYSTEM_BUS_ADDRESS,
  DbusConnection,
  connectBus,
  formatMatchRule,
  matchesRule,
  resolveBusAddress,
  type BusConnectOptions,
  type CallRequest,
  type MatchRule,
  type SignalMessage,
  type Subscription,
} from './connection.js';
export {
  describeService,
  describeXml,
  describeXmlFiles,
  generateBindings,
  lowerCamel,
  moduleNameOf,
  writeBindings,
  type GenerateOptions,
  type GeneratedFile,
  type ServiceDescription,
} from './codegen.js';
export { dbusErrors, type DbusErrorCode } from './errors.js';
export {
  STANDARD_INTERFACES,
  childPaths,
  parseIntrospection,
  type Annotation,
  type ArgInfo,
  type EmitsChangedSignal,
  type InterfaceInfo,
  type MethodInfo,
  type NodeInfo,
  type PropertyInfo,
  type SignalInfo,
} from './introspection.js';
export { escapePathElement, isObjectPath, unescapePathElement } from './names.js';
export { InterfaceProxy, PropertyCache, type ProxyClass, type ProxyTarget } from './proxy.js';
export {
  formatType,
  isValidSignature,
  parseSignature,
  parseSingleType,
  tsType,
  zodSchema,
  zodSource,
  type BasicTypeCode,
  type DbusType,
  type TypeDirection,
} from './signature.js';
export { fromJson, toJson } from './values.js';
/**
 * `lazySchema` of @opdbus/core, for generated bindings: their `…Args` schemas are built at their
 * first use.
 */
export { lazySchema } from '@opdbus/core';
export { Variant, variant } from './variant.js';
export { walkObjectTree, type ObjectInfo, type WalkOptions } from './walker.js';
export * from './bindings/index.js';
export { generateShippedBindings, shippedServices } from './shippedBindings.js';
export {
  connectTarget,
  definePropertyMap,
  probeService,
  sameJson,
  type MappedProperty,
  type PropertyCheckpoint,
  type PropertyMap,
  type PropertyMapOptions,
  type PropertyValue,
  type PropertyValues,
} from './propertyMap.js';
