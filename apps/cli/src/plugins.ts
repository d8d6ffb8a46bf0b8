// The plugin set lives in @opdbus/runtime, shared with the daemon and the MCP server.
export { type BuiltinPluginsOptions as DefaultPluginsOptions } from '@opdbus/runtime';
export { builtinPlugins as defaultPlugins } from '@opdbus/runtime/builtin-plugins';
