import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Engine, PluginRegistry, parseStateDocument, type PluginContext } from '../src/index.js';
import { memoryHost, memoryPlugin } from './memoryPlugin.js';

it('passes target.root to plugins and records it in the journal', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-target-'));
  try {
    const host = memoryHost();
    const plugin = memoryPlugin(host);
    const seen: PluginContext[] = [];
    const apply = plugin.apply.bind(plugin);
    plugin.apply = (change, ctx) => {
      seen.push(ctx);
      return apply(change, ctx);
    };
    const registry = new PluginRegistry([plugin]);
    const target = { busAddress: 'unix:path=/x/system_bus_socket', root: '/var/lib/machines/web' };
    const engine = new Engine({ registry, stateDir: dir, target });
    const doc = parseStateDocument(JSON.stringify({ version: 1, plugins: { [plugin.name]: { a: '1' } } }), {
      source: 't',
      registry,
    });
    const result = await engine.apply(doc);
    expect(result.status).toBe('committed');
    expect(seen[0]?.target).toEqual(target);
    expect((await engine.state.read(result.txId!)).target).toEqual(target);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
