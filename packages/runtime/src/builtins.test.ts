import { isLazySchema } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { builtinPluginNames, loadBuiltinPluginPackages, loadBuiltinPlugins } from './builtins.js';

describe('the built-in plugins', () => {
  it('each builds its schema at its first use, not when its module loads', async () => {
    const plugins = await loadBuiltinPlugins();
    expect(plugins.map((p) => p.name)).toEqual(builtinPluginNames);
    // A command that validates no document of a plugin (a scoped query, ledger, --help) then
    // builds none of its schema and, in the CLI bundle, loads no zod.
    expect(plugins.filter((p) => !isLazySchema(p.schema)).map((p) => p.name)).toEqual([]);
    // The same through the plugin-package path (factories called with options, contract checked).
    const packages = await loadBuiltinPluginPackages(undefined, {
      dbusServices: ['org.freedesktop.hostname1'],
    });
    expect(packages.filter((l) => !isLazySchema(l.plugin.schema)).map((l) => l.plugin.name)).toEqual([]);
  });

  it('each still validates an empty section and refuses a field it does not know', async () => {
    for (const plugin of await loadBuiltinPlugins()) {
      const empty = plugin.schema.safeParse({});
      expect(empty.success, `${plugin.name}: ${empty.error?.message}`).toBe(true);
      // Record-shaped sections (sysctl, dbus) take any key and check its value instead.
      const unknown = plugin.schema.safeParse({ 'not.a-field': { nor: ['valid'] } });
      expect(unknown.success, `${plugin.name} accepted an unknown field`).toBe(false);
    }
  });
});
