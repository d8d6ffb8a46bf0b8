/**
 * @opdbus/runtime: what every op-dbus app shares, so the CLI, the daemon, the MCP server and your
 * own tools build the same engine: the built-in plugin set, the target from global options, the
 * ledger as audit sink, the commit-confirmed watchdog process, recovery on start, exit codes and
 * error reporting. Plugins are imported on demand (`loadBuiltinPlugins(names)`); every built-in
 * plugin imported up front, synchronously, is `builtinPlugins()` of `@opdbus/runtime/builtin-plugins`.
 *
 * @packageDocumentation
 */
export { createEngine, ledgerAuditSink, recoverFirst, type CreateEngineOptions } from './engine.js';
export { ensureStateDir, ledgerPaths, type LedgerPaths } from './paths.js';
export { LedgerLog, type LedgerAuditSinkExtra, type LedgerEntryFields } from './ledgerLog.js';
export { runtimeErrors, type RuntimeErrorCode } from './errors.js';
export { exitCategoryOf, exitCodeFor, exitCodes, type ExitName } from './exitCodes.js';
export { createLogger } from './logger.js';
export { createDeferredLogger } from './deferredLogger.js';
export { defaultConfigPath, defaultStateDir, targetOf, type RuntimeOptions } from './options.js';
export {
  builtinPluginNames,
  loadBuiltinPluginPackages,
  loadBuiltinPlugins,
  type BuiltinPluginsOptions,
} from './builtins.js';
export {
  checkPlugin,
  isPathSpec,
  loadPlugins,
  locatePluginPackage,
  pluginEntryPath,
  pluginsOfModule,
  readPluginPackage,
  type LoadPluginsOptions,
  type LoadPluginsResult,
  type LoadedPlugin,
  type PluginManifest,
  type PluginPackage,
  type PluginSpec,
} from './loader.js';
export {
  configSchema,
  loadConfig,
  resolvePlugins,
  type OpdbusConfig,
  type ResolvePluginsOptions,
  type ResolvedPlugins,
} from './config.js';
export { resolveAppPlugins, type PluginSelection } from './appPlugins.js';
export { reportError, reportFatal, stdio, type Output } from './report.js';
export { spawnWatchdog, watchdogEntry } from './watchdog.js';
export { runWatchdogProcess } from './watchdogProcess.js';
export { TokenFile, type TokenIdentity, type TokenScope } from './tokens.js';
export { MAX_DOCUMENTS, desiredSections, documentSections, loadDesired, mergeDocuments } from './desired.js';
