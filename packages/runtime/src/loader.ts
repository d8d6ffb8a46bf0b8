import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  OpdbusError,
  PLUGIN_CONTRACT_VERSION,
  PluginRegistry,
  assertPlugin,
  type AnyPlugin,
} from '@opdbus/core';
import { z } from 'zod';
import { isPathSpec } from './options.js';

export { isPathSpec };

/**
 * The `opdbus` field of a plugin package's package.json: how op-dbus finds the plugin in the
 * package, and which plugin contract it was built for.
 *
 * @example
 * ```json
 * { "name": "opdbus-plugin-motd", "opdbus": { "contract": 1, "plugin": "motdPlugin" } }
 * ```
 */
export interface PluginManifest {
  /** The plugin contract the package was built for: `PLUGIN_CONTRACT_VERSION` of @opdbus/core. */
  contract: number;
  /**
   * The named export(s) of the entry module that are plugins: a plugin object, or a factory
   * `(options) => plugin` called with the options given in the config file (or `{}`).
   */
  plugin: string | string[];
  /** The module to import, relative to the package (default: the package's `exports["."]` or `main`). */
  entry?: string;
}

const manifestSchema = z.strictObject({
  contract: z.number().int().positive(),
  plugin: z.union([
    z.string().regex(/^[A-Za-z_$][\w$]*$/, 'an export name'),
    z.array(z.string().regex(/^[A-Za-z_$][\w$]*$/, 'an export name')).min(1),
  ]),
  entry: z.string().min(1).optional(),
});

/** A plugin package as found on disk: its package.json and the `opdbus` field in it. */
export interface PluginPackage {
  /** The package's `name`. */
  name: string;
  /** The package's `version`. */
  version: string;
  /** Its directory (real path). */
  dir: string;
  /** Its `opdbus` field. */
  manifest: PluginManifest;
  /** Its package.json, parsed. */
  packageJson: Record<string, unknown>;
}

/**
 * What to load: an npm package name (`opdbus-plugin-motd`, `@acme/opdbus-plugin-x`) or a
 * directory (`./my-plugin`, `/opt/plugins/motd`), optionally with the options its factory takes.
 */
export type PluginSpec = string | { package: string; options?: Record<string, unknown> };

/** A plugin that was loaded, and where it came from. */
export interface LoadedPlugin {
  plugin: AnyPlugin;
  /** The package that provided it. */
  package: string;
  /** The package's version. */
  version: string;
  /** What it was loaded from: the spec as given, or `builtin`. */
  source: string;
}

/** The result of {@link loadPlugins}: what loaded, and what was refused and why. */
export interface LoadPluginsResult {
  /** The plugins that loaded, in order. */
  plugins: AnyPlugin[];
  /** The same, with their packages. */
  loaded: LoadedPlugin[];
  /**
   * One error per refused package (codes `OPDBUS_ERR_PLUGIN_LOAD`, `OPDBUS_ERR_PLUGIN_CONTRACT`,
   * `OPDBUS_ERR_PLUGIN_CLASH`, `OPDBUS_ERR_PLUGIN_SCHEMA`, `OPDBUS_ERR_PLUGIN_INVALID`), each naming
   * the package. The app prints them; the other plugins work.
   */
  refusals: OpdbusError[];
}

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions {
  /** Where relative directories and npm names are resolved from first (default `process.cwd()`). */
  cwd?: string;
  /**
   * Directories npm names are resolved from after `cwd` (default: the app's, i.e. where
   * @opdbus/runtime is installed, so that plugins installed next to op-dbus load).
   */
  from?: readonly string[];
  /** Plugins already loaded (e.g. the built-in ones): a plugin with one of their names clashes. */
  existing?: readonly LoadedPlugin[];
}

const appDir = fileURLToPath(new URL('..', import.meta.url));

function pathOfSpec(spec: string, cwd: string): string {
  if (spec.startsWith('file:'))
    return spec.startsWith('file://') ? fileURLToPath(spec) : resolve(cwd, spec.slice(5));
  if (spec.startsWith('~/')) return join(homedir(), spec.slice(2));
  return resolve(cwd, spec);
}

function loadError(spec: string, message: string, cause?: unknown, pkg?: string): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_PLUGIN_LOAD', message, {
    data: { spec, ...(pkg === undefined ? {} : { package: pkg }) },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Find a plugin package's directory: a directory spec as it is (relative to `cwd`), an npm name
 * in `node_modules` above `cwd`, above each of `from`, then in `NODE_PATH` (as Node resolves it).
 * Throws `OPDBUS_ERR_PLUGIN_LOAD` saying where it looked.
 */
export function locatePluginPackage(spec: string, options: LoadPluginsOptions = {}): string {
  const cwd = options.cwd ?? process.cwd();
  if (isPathSpec(spec)) {
    const dir = pathOfSpec(spec, cwd);
    if (!existsSync(join(dir, 'package.json')))
      throw loadError(
        spec,
        `Cannot load plugin package ${spec}: ${dir} has no package.json; give the directory of a plugin package (\`opdbus plugin new NAME --dir DIR\` writes one).`,
      );
    return realpathSync(dir);
  }
  if (!/^(?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i.test(spec))
    throw loadError(
      spec,
      `Cannot load plugin package ${JSON.stringify(spec)}: not an npm package name nor a directory (start a path with ./ or /).`,
    );
  const bases = [cwd, ...(options.from ?? [appDir])];
  const seen = new Set<string>();
  for (const base of bases) {
    for (let dir = resolve(base); ; dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', spec);
      if (!seen.has(candidate)) {
        seen.add(candidate);
        if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
      }
      if (dirname(dir) === dir) break;
    }
  }
  for (const dir of (process.env.NODE_PATH ?? '').split(delimiter).filter((d) => d !== '')) {
    const candidate = join(dir, spec);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
  }
  throw loadError(
    spec,
    `Cannot find plugin package ${spec} from ${cwd} nor from op-dbus's own installation (${bases.slice(1).join(', ')}); install it (\`npm install ${spec}\`) or give its directory.`,
  );
}

/**
 * Read a plugin package's package.json and check its `opdbus` field: `OPDBUS_ERR_PLUGIN_LOAD`
 * when it is missing or malformed, `OPDBUS_ERR_PLUGIN_CONTRACT` when it was built for another
 * plugin contract than this op-dbus's (`PLUGIN_CONTRACT_VERSION`).
 */
export function readPluginPackage(dir: string, spec = dir): PluginPackage {
  const file = join(dir, 'package.json');
  let packageJson: Record<string, unknown>;
  try {
    packageJson = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw loadError(spec, `Cannot read ${file}: ${(err as Error).message}.`, err);
  }
  const name = typeof packageJson.name === 'string' ? packageJson.name : dir;
  const version = typeof packageJson.version === 'string' ? packageJson.version : '0.0.0';
  if (packageJson.opdbus === undefined)
    throw loadError(
      spec,
      `Package ${name} (${file}) is not an op-dbus plugin package: its package.json has no "opdbus" field; add { "opdbus": { "contract": ${PLUGIN_CONTRACT_VERSION}, "plugin": "<export name>" } } (see docs/plugins.md).`,
      undefined,
      name,
    );
  const parsed = manifestSchema.safeParse(packageJson.opdbus);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map(
        (i) =>
          `opdbus${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`,
      )
      .join('; ');
    throw loadError(
      spec,
      `Package ${name} (${file}) has a malformed "opdbus" field: ${issues}; it must be { "contract": ${PLUGIN_CONTRACT_VERSION}, "plugin": "<export name>"[, "entry": "./dist/index.js"] }.`,
      undefined,
      name,
    );
  }
  const manifest = parsed.data;
  if (manifest.contract !== PLUGIN_CONTRACT_VERSION)
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_CONTRACT',
      `Package ${name}@${version} (${dir}) was built for plugin contract ${manifest.contract}, but this op-dbus speaks contract ${PLUGIN_CONTRACT_VERSION}; install a version of ${name} built for contract ${PLUGIN_CONTRACT_VERSION} (or an op-dbus that speaks ${manifest.contract}).`,
      {
        data: {
          spec,
          package: name,
          version,
          contract: manifest.contract,
          expected: PLUGIN_CONTRACT_VERSION,
        },
      },
    );
  return { name, version, dir, manifest: manifest as PluginManifest, packageJson };
}

/** The module path of a package's entry: `opdbus.entry`, else `exports["."]` (import/default), else `main`. */
export function pluginEntryPath(pkg: PluginPackage): string {
  const pick = (target: unknown): string | undefined => {
    if (typeof target === 'string') return target;
    if (Array.isArray(target)) return target.map(pick).find((t) => t !== undefined);
    if (typeof target === 'object' && target !== null) {
      const conditions = target as Record<string, unknown>;
      for (const key of ['node', 'import', 'default']) {
        const found = pick(conditions[key]);
        if (found !== undefined) return found;
      }
    }
    return undefined;
  };
  const exportsField = pkg.packageJson.exports;
  const dot =
    typeof exportsField === 'object' &&
    exportsField !== null &&
    !Array.isArray(exportsField) &&
    '.' in exportsField
      ? (exportsField as Record<string, unknown>)['.']
      : exportsField;
  const entry =
    pkg.manifest.entry ??
    pick(dot) ??
    (typeof pkg.packageJson.main === 'string' ? pkg.packageJson.main : undefined) ??
    'index.js';
  return resolve(pkg.dir, entry);
}

/**
 * The plugins a package's entry module provides: each export the manifest names, called with
 * `options` when it is a factory, then checked as every plugin is (see {@link checkPlugin}).
 */
export function pluginsOfModule(
  pkg: PluginPackage,
  module: Record<string, unknown>,
  options: Record<string, unknown> = {},
  spec = pkg.dir,
  compileSchema = true,
): AnyPlugin[] {
  const names = ([] as string[]).concat(pkg.manifest.plugin);
  return names.map((exportName) => {
    const value = module[exportName];
    if (value === undefined)
      throw loadError(
        spec,
        `Package ${pkg.name} (${pkg.dir}) has no export "${exportName}", which its package.json names in opdbus.plugin; exports: ${Object.keys(module).join(', ') || '(none)'}.`,
        undefined,
        pkg.name,
      );
    let plugin: unknown = value;
    if (typeof value === 'function') {
      try {
        plugin = (value as (options: Record<string, unknown>) => unknown)(options);
      } catch (err) {
        throw loadError(
          spec,
          `Package ${pkg.name}: its plugin factory ${exportName}(options) threw: ${(err as Error).message}.`,
          err,
          pkg.name,
        );
      }
    }
    return checkPlugin(plugin, pkg, spec, compileSchema);
  });
}

/**
 * Check a plugin from a package against the contract (`OPDBUS_ERR_PLUGIN_INVALID`) and, unless
 * `compileSchema` is false, that its schema compiles into the state document's JSON Schema
 * (`OPDBUS_ERR_PLUGIN_SCHEMA`); each error names the package.
 */
export function checkPlugin(
  value: unknown,
  pkg: Pick<PluginPackage, 'name' | 'dir'>,
  spec = pkg.dir,
  compileSchema = true,
): AnyPlugin {
  let plugin: AnyPlugin;
  try {
    plugin = assertPlugin(value);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_INVALID',
      `Package ${pkg.name} (${pkg.dir}): ${(err as Error).message}`,
      {
        data: { spec, package: pkg.name, ...((err as OpdbusError).data ?? {}) },
        cause: err,
      },
    );
  }
  if (!compileSchema) return plugin;
  try {
    new PluginRegistry([plugin]).jsonSchema();
    plugin.schema.safeParse(undefined);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_SCHEMA',
      `Package ${pkg.name} (${pkg.dir}): the schema of plugin "${plugin.name}" does not compile into the state document's schema: ${(err as Error).message}; build it from zod 4 (\`import { z } from 'zod'\`) without throwing getters.`,
      { data: { spec, package: pkg.name, plugin: plugin.name }, cause: err },
    );
  }
  return plugin;
}

/** Adds `candidates` to `loaded` unless one of their names is taken; throws `OPDBUS_ERR_PLUGIN_CLASH`. */
function addChecked(loaded: LoadedPlugin[], candidates: readonly LoadedPlugin[]): void {
  for (const candidate of candidates) {
    const other = loaded.find((l) => l.plugin.name === candidate.plugin.name);
    if (other !== undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_PLUGIN_CLASH',
        `Package ${candidate.package} (${candidate.source}) provides plugin "${candidate.plugin.name}", which ${other.package} (${other.source}) already provides; load only one of them.`,
        {
          data: {
            plugin: candidate.plugin.name,
            package: candidate.package,
            spec: candidate.source,
            loadedFrom: other.package,
          },
        },
      );
  }
  const names = candidates.map((c) => c.plugin.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined)
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_CLASH',
      `Package ${candidates[0]?.package ?? '?'} provides plugin "${dup}" twice; export each plugin once.`,
      { data: { plugin: dup, package: candidates[0]?.package } },
    );
  loaded.push(...candidates);
}

/**
 * Load plugin packages by npm name or directory. Each package is located (see
 * {@link locatePluginPackage}), its package.json's `opdbus` field checked (contract version), its
 * entry imported, its plugins created and checked (contract, schema) and their names checked
 * against what is loaded already. A package that fails any of these is refused with an
 * `OpdbusError` naming it, in `refusals`; the others load. The same package given twice loads once.
 *
 * @example
 * ```ts
 * const { plugins, refusals } = await loadPlugins(['opdbus-plugin-motd', './my-plugin']);
 * for (const err of refusals) console.error(`opdbus: ${err.message}`);
 * ```
 */
export async function loadPlugins(
  specs: readonly PluginSpec[],
  options: LoadPluginsOptions = {},
): Promise<LoadPluginsResult> {
  const all: LoadedPlugin[] = [...(options.existing ?? [])];
  const mine: LoadedPlugin[] = [];
  const refusals: OpdbusError[] = [];
  const dirs = new Set<string>();
  for (const item of specs) {
    const spec = typeof item === 'string' ? item : item.package;
    const factoryOptions = typeof item === 'string' ? {} : (item.options ?? {});
    try {
      const dir = locatePluginPackage(spec, options);
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      const pkg = readPluginPackage(dir, spec);
      const entry = pluginEntryPath(pkg);
      if (!existsSync(entry) || !statSync(entry).isFile())
        throw loadError(
          spec,
          `Package ${pkg.name} (${dir}) has no entry module ${entry}; build it first (\`npm run build\` in ${dir}).`,
          undefined,
          pkg.name,
        );
      let module: Record<string, unknown>;
      try {
        module = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
      } catch (err) {
        throw loadError(
          spec,
          `Package ${pkg.name} (${dir}) threw on import of ${entry}: ${(err as Error).message}.`,
          err,
          pkg.name,
        );
      }
      const candidates = pluginsOfModule(pkg, module, factoryOptions, spec).map((plugin) => ({
        plugin,
        package: pkg.name,
        version: pkg.version,
        source: spec,
      }));
      addChecked(all, candidates);
      mine.push(...candidates);
    } catch (err) {
      refusals.push(
        err instanceof OpdbusError
          ? err
          : loadError(spec, `Cannot load plugin package ${spec}: ${(err as Error).message}.`, err),
      );
    }
  }
  return { plugins: mine.map((l) => l.plugin), loaded: mine, refusals };
}

/**
 * Internal: add already-imported packages' plugins (the built-in ones) through the same checks,
 * except the schema compile (about 20 ms a plugin, paid at every command's start): the built-in
 * schemas are compiled by `opdbus schema`, the docs generator and the loader's tests, which load
 * every built-in package by name through {@link loadPlugins}.
 */
export function addPluginPackages(
  loaded: LoadedPlugin[],
  packages: ReadonlyArray<{
    pkg: PluginPackage;
    module: Record<string, unknown>;
    options?: Record<string, unknown>;
  }>,
): void {
  for (const { pkg, module, options } of packages) {
    addChecked(
      loaded,
      pluginsOfModule(pkg, module, options ?? {}, pkg.name, false).map((plugin) => ({
        plugin,
        package: pkg.name,
        version: pkg.version,
        source: 'builtin',
      })),
    );
  }
}
