import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { OpdbusError, type AnyPlugin } from '@opdbus/core';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import {
  isPathSpec,
  loadPlugins,
  type LoadedPlugin,
  type LoadPluginsOptions,
  type PluginSpec,
} from './loader.js';
import { builtinPluginNames, loadBuiltinPluginPackages, type BuiltinPluginsOptions } from './builtins.js';

import { defaultConfigPath } from './options.js';

export { defaultConfigPath };

const pluginEntrySchema = z.union([
  z.string().min(1).describe('An npm package name or a directory (relative to this file).'),
  z.strictObject({
    package: z.string().min(1).describe('An npm package name or a directory (relative to this file).'),
    options: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("What the package's plugin factory is called with."),
  }),
]);

/**
 * The configuration file's schema (YAML): the plugin packages every op-dbus app loads, and one
 * section per app for its own settings.
 *
 * @example
 * ```yaml
 * plugins:
 *   - opdbus-plugin-motd
 *   - ./plugins/my-plugin
 *   - package: '@acme/opdbus-plugin-x'
 *     options: { pollIntervalMs: 500 }
 * ```
 */
export const configSchema = z.strictObject({
  plugins: z
    .array(pluginEntrySchema)
    .optional()
    .describe('Plugin packages to load besides the built-in ones, in order.'),
  daemon: z.record(z.string(), z.unknown()).optional().describe("The daemon's (opdbusd) settings."),
  mcp: z.record(z.string(), z.unknown()).optional().describe("The MCP server's (opdbus-mcp) settings."),
});

/** A parsed configuration file (see {@link configSchema}). */
export interface OpdbusConfig {
  /** The file it was read from; undefined when there was none. */
  path: string | undefined;
  /** Plugin packages to load, with directories made absolute (relative to the file). */
  plugins: PluginSpec[];
  /** The daemon's section, as written. */
  daemon: Record<string, unknown>;
  /** The MCP server's section, as written. */
  mcp: Record<string, unknown>;
}

function configError(file: string, message: string, cause?: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_CONFIG', `${file}: ${message}`, {
    data: { file },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Read a configuration file. Without `file`, {@link defaultConfigPath} is read when it exists
 * (no file is an empty configuration); a file given explicitly (`--config FILE`) must exist.
 * Throws `OPDBUS_ERR_CONFIG` naming the file, the path in it and what is wrong.
 *
 * @example
 * ```ts
 * const config = loadConfig('/etc/opdbus/config.yaml');
 * console.log(config.plugins);
 * ```
 */
export function loadConfig(file?: string): OpdbusConfig {
  const path = file ?? defaultConfigPath;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (file === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT')
      return { path: undefined, plugins: [], daemon: {}, mcp: {} };
    throw configError(path, `cannot read the configuration file: ${(err as Error).message}.`, err);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const where = first.linePos?.[0] === undefined ? '' : ` at line ${first.linePos[0].line}`;
    throw configError(path, `not valid YAML${where}: ${first.message.split('\n')[0] ?? ''}`);
  }
  const parsed = configSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at =
      issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('') || '(top)';
    throw configError(
      path,
      `${at}: ${issue.message}; the file has \`plugins:\` (a list of npm names or directories), \`daemon:\` and \`mcp:\`.`,
    );
  }
  const base = dirname(resolve(path));
  const absolute = (spec: string): string =>
    isPathSpec(spec) && !spec.startsWith('~/') ? resolve(base, spec.replace(/^file:/, '')) : spec;
  const plugins = (parsed.data.plugins ?? []).map((entry): PluginSpec =>
    typeof entry === 'string'
      ? absolute(entry)
      : {
          package: absolute(entry.package),
          ...(entry.options === undefined ? {} : { options: entry.options }),
        },
  );
  return { path, plugins, daemon: parsed.data.daemon ?? {}, mcp: parsed.data.mcp ?? {} };
}

/** Options of {@link resolvePlugins}: what an app was told on its command line and environment. */
export interface ResolvePluginsOptions {
  /** `--plugin SPEC`, repeatable: npm names or directories. */
  plugin?: readonly string[];
  /** `--config FILE` (default {@link defaultConfigPath}, which may be absent). */
  config?: string;
  /** The environment: `OPDBUS_PLUGINS` (comma-separated specs) is read from it (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Options of the built-in plugins. */
  builtin?: BuiltinPluginsOptions;
  /**
   * Only these built-in plugins (default: all of them), each imported only then: a server whose
   * desired state names two plugins loads two. A package from outside that provides a plugin of a
   * built-in plugin's name is still refused as a clash.
   */
  builtinNames?: readonly string[];
  /** Where relative directories and npm names are resolved from (default `process.cwd()`). */
  cwd?: string;
  /** Directories npm names are resolved from after `cwd` (default: op-dbus's own installation). */
  from?: LoadPluginsOptions['from'];
}

/** What {@link resolvePlugins} found. */
export interface ResolvedPlugins {
  /** The built-in plugins, then the loaded packages' plugins, in order. */
  plugins: AnyPlugin[];
  /** The same, with the packages they come from. */
  loaded: LoadedPlugin[];
  /** Refused packages, each an `OpdbusError` naming it: print them; the other plugins work. */
  refusals: OpdbusError[];
  /** The configuration file read. */
  config: OpdbusConfig;
  /** The specs that were loaded from, made absolute where they are directories (for child processes). */
  specs: PluginSpec[];
}

/**
 * The plugins an op-dbus app works with: the built-in ones, then the packages named in the
 * configuration file's `plugins:`, in `OPDBUS_PLUGINS`, and by `--plugin`, in that order, all
 * through {@link loadPlugins}. This is the one function the CLI, the daemon and the MCP server call.
 * A missing `--config` file or an invalid one throws `OPDBUS_ERR_CONFIG`; a package that cannot be
 * loaded is a refusal, and the rest load.
 *
 * @example
 * ```ts
 * const { plugins, refusals } = await resolvePlugins({ plugin: ['./opdbus-plugin-motd'] });
 * for (const err of refusals) process.stderr.write(`opdbus: ${err.message}\n`);
 * const engine = createEngine({ stateDir: '/tmp/s', logLevel: 'warn' }, { plugins });
 * ```
 */
export async function resolvePlugins(options: ResolvePluginsOptions = {}): Promise<ResolvedPlugins> {
  const config = loadConfig(options.config);
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const fromEnv = (env.OPDBUS_PLUGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const absolute = (spec: string): string =>
    isPathSpec(spec) && !spec.startsWith('~/') ? resolve(cwd, spec.replace(/^file:/, '')) : spec;
  const specs: PluginSpec[] = [
    ...config.plugins,
    ...fromEnv.map(absolute),
    ...(options.plugin ?? []).map(absolute),
  ];
  const builtin = await loadBuiltinPluginPackages(options.builtinNames, options.builtin);
  const result = await loadPlugins(specs, {
    cwd,
    existing: builtin,
    ...(options.from === undefined ? {} : { from: options.from }),
  });
  // A clash with a built-in plugin that was not loaded: load them all, so that it is refused as
  // it would be with the whole set.
  const have = new Set(builtin.map((l) => l.plugin.name));
  if (
    options.builtinNames !== undefined &&
    result.loaded.some((l) => builtinPluginNames.includes(l.plugin.name) && !have.has(l.plugin.name))
  ) {
    const { builtinNames: _subset, ...all } = options;
    return resolvePlugins(all);
  }
  const loaded = [...builtin, ...result.loaded];
  return { plugins: loaded.map((l) => l.plugin), loaded, refusals: result.refusals, config, specs };
}
