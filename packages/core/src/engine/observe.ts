// What the host looks like now: the observed state of plugins (with the ones that could not be
// reached, and why), and their native event streams.
import type { Unsubscribe, WatchEvent } from '../plugin.js';
import type { EngineCore } from './core.js';
import { probePlugins, queryPlugin, requireAvailable } from './pluginCalls.js';
import type { QueryReport } from './types.js';

/**
 * The observed state of the named plugins (default: every registered one), normalised to the
 * document's shape, with secrets redacted unless `showSecrets`. Named plugins must be available
 * (`OPDBUS_ERR_PLUGIN_UNAVAILABLE` otherwise); without names, every plugin is probed (all at once)
 * and those that are not available are listed in `unavailable` with the reason their probe gave.
 */
export async function queryReport(
  core: EngineCore,
  names: readonly string[] | undefined,
  options: { showSecrets?: boolean; all?: boolean },
): Promise<QueryReport> {
  const plugins: Record<string, unknown> = {};
  const unavailable: Record<string, string> = {};
  const explicit = names !== undefined;
  const selected = (names ?? core.registry.names()).map((name) => core.registry.require(name));
  if (explicit) {
    for (const plugin of selected) await requireAvailable(core, plugin);
  } else {
    // Probes wait on sockets and buses that may not answer: run them side by side.
    const probes = await Promise.all(
      selected.map(
        async (plugin) => [plugin.name, (await probePlugins(core, [plugin.name]))[plugin.name]] as const,
      ),
    );
    for (const [name, probe] of probes) {
      if (probe !== undefined && !probe.available) unavailable[name] = probe.reason;
    }
  }
  for (const plugin of selected) {
    if (plugin.name in unavailable) continue;
    const section = await queryPlugin(core, plugin, undefined, {}, core.target, options.all === true);
    if (section === undefined) continue;
    plugins[plugin.name] =
      options.showSecrets || plugin.redact === undefined ? section : plugin.redact(section);
  }
  return { plugins, unavailable };
}

/**
 * Subscribe to the native event streams of the named plugins (default: every one that can watch),
 * publishing each event on the bus as `watch.event` too. Resolves to what ends every subscription.
 */
export async function watchPlugins(
  core: EngineCore,
  onEvent: (event: WatchEvent) => void,
  names: readonly string[] | undefined,
): Promise<Unsubscribe> {
  const subscriptions: Unsubscribe[] = [];
  for (const name of names ?? core.registry.names()) {
    const plugin = core.registry.require(name);
    if (plugin.watch === undefined) continue;
    const unsubscribe = await plugin.watch(core.context(name), (event) => {
      core.events.publish({
        type: 'watch.event',
        plugin: name,
        ...(event.resource ? { resource: event.resource } : {}),
        ...(event.detail ? { detail: event.detail } : {}),
      });
      onEvent(event);
    });
    subscriptions.push(unsubscribe);
  }
  return async () => {
    for (const unsubscribe of subscriptions) await unsubscribe();
  };
}
