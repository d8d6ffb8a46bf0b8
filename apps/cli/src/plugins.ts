// The plugin set lives in @opdbus/runtime, shared with the daemon and the MCP server.
export {
  builtinPlugins as defaultPlugins,
  type BuiltinPluginsOptions as DefaultPluginsOptions,
} from '@opdbus/runtime';
