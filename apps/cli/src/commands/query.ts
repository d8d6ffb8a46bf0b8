import { stringifyStateDocument } from '@opdbus/core';
import { commandPlugins, createEngine, recoverFirst, type GlobalOptions, type Output } from '../runtime.js';

export interface QueryOptions {
  plugin?: string[];
  showSecrets?: boolean;
  /** Also read-only and volatile values (what a document cannot set). */
  all?: boolean;
  /** D-Bus services for the `dbus` section (implies it when --plugin is given). */
  dbusService?: string[];
}

/** `opdbus query`: the observed state as a state document. */
export async function query(global: GlobalOptions, options: QueryOptions, output: Output): Promise<number> {
  const services = options.dbusService;
  const engine = await createEngine(
    global,
    await commandPlugins(global, services === undefined ? {} : { dbusServices: services }, output),
  );
  await recoverFirst(engine, output);
  const names =
    services !== undefined && options.plugin !== undefined && !options.plugin.includes('dbus')
      ? [...options.plugin, 'dbus']
      : options.plugin;
  const { plugins, unavailable } = await engine.queryReport(names, {
    showSecrets: options.showSecrets === true,
    all: options.all === true,
  });
  // Say what is missing from the document and why, instead of leaving it out silently.
  for (const [name, reason] of Object.entries(unavailable)) {
    output.err(`opdbus: ${name}: not queried: ${reason.replace(/\.+$/, '')}`);
  }
  if (global.json) {
    output.out(
      JSON.stringify(
        Object.keys(unavailable).length > 0 ? { version: 1, plugins, unavailable } : { version: 1, plugins },
        null,
        2,
      ),
    );
  } else output.out(stringifyStateDocument(plugins));
  return 0;
}
