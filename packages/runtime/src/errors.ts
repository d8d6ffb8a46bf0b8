import { defineErrorCodes } from '@opdbus/core';

/** Error codes of @opdbus/runtime (documented in docs/errors.md). */
export const runtimeErrors = defineErrorCodes({
  OPDBUS_ERR_TOKEN_FILE: {
    exit: 'INVALID_INPUT',
    summary:
      'The token file cannot be used: unreadable, readable by group or others, empty, or a line that is not `TOKEN [read|write [NAME]]`.',
    remedy:
      'Fix the named line; tokens are at least 16 characters, names unique; run `chmod 600` on the file.',
  },
  OPDBUS_ERR_PLUGIN_LOAD: {
    exit: 'INVALID_INPUT',
    summary:
      'A plugin package could not be loaded: not found, no or a malformed `opdbus` field in its package.json, no built entry module, it threw on import, or its factory threw. The other plugins still load.',
    remedy:
      'Install the package (`npm install NAME`) or give its directory; add `"opdbus": { "contract": 1, "plugin": "<export>" }` to its package.json; build it (`npm run build`); the message names the package and the cause.',
  },
  OPDBUS_ERR_PLUGIN_CONTRACT: {
    exit: 'INVALID_INPUT',
    summary:
      'A plugin package was built for another plugin contract version than this op-dbus speaks (`PLUGIN_CONTRACT_VERSION` of @opdbus/core), and was refused.',
    remedy:
      'Install a version of the package built for this contract, or an op-dbus that speaks the contract the package names in `opdbus.contract`.',
  },
  OPDBUS_ERR_PLUGIN_SCHEMA: {
    exit: 'INVALID_INPUT',
    summary:
      "A plugin's zod schema does not compile into the state document's JSON Schema (e.g. a getter that throws), so the package was refused.",
    remedy:
      'Build the schema from zod 4 (`import { z } from "zod"`); check it with `opdbus --plugin DIR schema`.',
  },
  OPDBUS_ERR_PLUGIN_CLASH: {
    exit: 'INVALID_INPUT',
    summary:
      'A plugin package provides a plugin whose name another loaded package (or a built-in plugin) already has; the later package was refused.',
    remedy:
      'Load only one of the two packages (`--plugin`, `OPDBUS_PLUGINS`, `plugins:` in the config file), or rename the plugin.',
  },
  OPDBUS_ERR_CONFIG: {
    exit: 'INVALID_INPUT',
    summary:
      'The configuration file (/etc/opdbus/config.yaml or `--config FILE`) cannot be used: a file given with --config is missing or unreadable, or it is not valid YAML or not the expected shape.',
    remedy:
      'Fix the file at the named path (`plugins:` is a list of npm names or directories; `daemon:` and `mcp:` are maps), or pass another one with --config.',
  },
});

/** A code of {@link runtimeErrors}. */
export type RuntimeErrorCode = keyof typeof runtimeErrors;
