// Calling a plugin's read-only methods (probe, query, facts, diff) for the engine: optional methods
// get their defaults, and a plugin's failure becomes an OpdbusError that names the plugin and the
// operation.
import { makeChange, type Change } from '../change.js';
import { OpdbusError, toOpdbusError } from '../errors.js';
import type { AnyPlugin, ProbeResult, TargetSpec } from '../plugin.js';
import type { EngineCore } from './core.js';
import { asJsonChanges } from './support.js';

/** Probe plugins by name: a probe that throws reads as not available, with the reason. */
export async function probePlugins(
  core: EngineCore,
  names: readonly string[],
): Promise<Record<string, ProbeResult>> {
  const out: Record<string, ProbeResult> = {};
  for (const name of names) {
    const plugin = core.registry.require(name);
    try {
      out[name] = plugin.probe === undefined ? { available: true } : await plugin.probe(core.context(name));
    } catch (err) {
      out[name] = { available: false, reason: `probe failed: ${(err as Error).message}` };
    }
  }
  return out;
}

/** Throws `OPDBUS_ERR_PLUGIN_UNAVAILABLE` unless the plugin's probe says it is available. */
export async function requireAvailable(core: EngineCore, plugin: AnyPlugin): Promise<void> {
  let result: ProbeResult;
  try {
    result = plugin.probe === undefined ? { available: true } : await plugin.probe(core.context(plugin.name));
  } catch (err) {
    throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_UNAVAILABLE', `Plugin "${plugin.name}" failed its probe`, {
      plugin: plugin.name,
    });
  }
  if (!result.available) {
    throw new OpdbusError(
      'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
      `Plugin "${plugin.name}" is not available here: ${result.reason.replace(/\.+$/, '')}.`,
      {
        data: { plugin: plugin.name, reason: result.reason },
      },
    );
  }
}

/**
 * The plugin's observed state: of the resources `scope` (a desired section) names, or of everything
 * it manages (`all`: also what a document cannot declare). A plugin without host state of its own
 * (expand only) observes what it was asked.
 */
export async function queryPlugin(
  core: EngineCore,
  plugin: AnyPlugin,
  scope: unknown,
  bindings: Record<string, unknown> = {},
  target: TargetSpec = core.target,
  all = false,
): Promise<unknown> {
  if (plugin.query === undefined) return scope ?? plugin.empty;
  const ctx = core.context(plugin.name, bindings, undefined, target);
  try {
    return scope !== undefined
      ? await plugin.query(ctx, { scope })
      : all
        ? await plugin.query(ctx, { all: true })
        : await plugin.query(ctx);
  } catch (err) {
    throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_FAILED', `Plugin "${plugin.name}" failed to query the host`, {
      plugin: plugin.name,
      operation: 'query',
    });
  }
}

/** What the plugin's `facts` says for `diff` (undefined when it has none). */
export async function pluginFacts(core: EngineCore, plugin: AnyPlugin, observed: unknown): Promise<unknown> {
  if (plugin.facts === undefined) return undefined;
  try {
    return await plugin.facts(core.context(plugin.name), observed);
  } catch (err) {
    throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_FAILED', `Plugin "${plugin.name}" failed to read its facts`, {
      plugin: plugin.name,
      operation: 'facts',
    });
  }
}

/** The plugin's changes from `observed` to `desired`, as checked {@link Change}s (none without `diff`). */
export function diffPlugin(
  plugin: AnyPlugin,
  desired: unknown,
  observed: unknown,
  facts?: unknown,
): Change[] {
  if (plugin.diff === undefined) return [];
  let specs;
  try {
    specs = plugin.diff(desired, observed, facts);
  } catch (err) {
    throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_FAILED', `Plugin "${plugin.name}" failed to diff`, {
      plugin: plugin.name,
      operation: 'diff',
    });
  }
  return asJsonChanges(specs).map((spec) => makeChange(plugin.name, spec));
}
