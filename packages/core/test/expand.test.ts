import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Engine,
  PluginRegistry,
  assertPlugin,
  defineExpansionPlugin,
  isOpdbusError,
  parseStateDocument,
  type StateDocument,
} from '../src/index.js';
import { memoryHost, memoryPlugin } from './memoryPlugin.js';

// A plugin with no host state of its own that derives another plugin's desired state, as the
// NUMA placements derive systemd unit properties: it implements only what it needs (no probe,
// query, diff, apply, checkpoint or restore), and the engine calls only that.
const aliasSchema = z.strictObject({ aliases: z.record(z.string(), z.string()) });
const aliasPlugin = defineExpansionPlugin<z.output<typeof aliasSchema>>({
  name: 'alias',
  version: '1.0.0',
  description: 'derives mem keys',
  schema: aliasSchema,
  empty: { aliases: {} },
  expand: (section) =>
    Promise.resolve({
      sections: {
        mem: Object.fromEntries(
          Object.entries(section.aliases).map(([k, v]) => [`alias.${k}`, v.toUpperCase()]),
        ),
      },
      notes: Object.keys(section.aliases).map((k) => ({
        plugin: 'mem',
        resource: `alias.${k}`,
        note: `derived from alias ${k}`,
      })),
    }),
});

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'opdbus-expand-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

function setup(initial: Record<string, string> = {}) {
  const host = memoryHost(initial);
  const registry = new PluginRegistry([memoryPlugin(host), aliasPlugin]);
  const engine = new Engine({ registry, stateDir, verify: { attempts: 2, initialDelayMs: 1 } });
  const doc = (plugins: object): StateDocument =>
    parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'doc.yaml', registry });
  return { host, engine, doc };
}

describe('plugins that expand into other sections', () => {
  it('merges the derived state, plans and applies it, and explains it', async () => {
    const { host, engine, doc } = setup({ keep: '1' });
    const d = doc({ mem: { keep: '1' }, alias: { aliases: { a: 'x', b: 'y' } } });
    const planned = await engine.plan(d);
    expect(planned.desired.mem).toEqual({ keep: '1', 'alias.a': 'X', 'alias.b': 'Y' });
    expect(planned.plan.changes.map((c) => c.resource)).toEqual(['alias.a', 'alias.b']);
    expect(planned.notes).toEqual([
      { plugin: 'mem', resource: 'alias.a', note: 'derived from alias a' },
      { plugin: 'mem', resource: 'alias.b', note: 'derived from alias b' },
    ]);
    const result = await engine.apply(d);
    expect(result.status).toBe('committed');
    expect(host.values.get('alias.a')).toBe('X');
    // The journal holds the merged desired state, so verification and recovery see it.
    expect((await engine.state.read(result.txId!)).desired.mem).toMatchObject({ 'alias.a': 'X' });
    await engine.rollback();
    expect(host.values.has('alias.a')).toBe(false);
  });

  it('creates the target section when the document has none', async () => {
    const { engine, doc } = setup();
    expect((await engine.plan(doc({ alias: { aliases: { c: 'z' } } }))).desired.mem).toEqual({
      'alias.c': 'Z',
    });
  });

  it('refuses a derived value that contradicts the document, naming both', async () => {
    const { engine, doc } = setup();
    await expect(
      engine.plan(doc({ mem: { 'alias.a': 'other' }, alias: { aliases: { a: 'x' } } })),
    ).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PLAN_CONFLICT',
      message: expect.stringContaining(
        'doc.yaml: plugins.mem["alias.a"] is "other", but the "alias" section derives "X"',
      ),
    });
    // Agreeing values are fine.
    expect(
      (await engine.plan(doc({ mem: { 'alias.a': 'X' }, alias: { aliases: { a: 'x' } } }))).desired.mem,
    ).toEqual({ 'alias.a': 'X' });
  });

  it('validates the merged section with the target schema', async () => {
    const { engine, doc } = setup();
    await expect(engine.plan(doc({ alias: { aliases: { 'BAD KEY': 'x' } } }))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_STATE_INVALID',
      message: expect.stringContaining('with what other plugins contributed'),
    });
  });

  it('queries a plugin without host state as the section it was given, or as its empty section', async () => {
    const { engine, doc } = setup({ keep: '1' });
    expect(await engine.query()).toEqual({ mem: { keep: '1' }, alias: { aliases: {} } });
    const planned = await engine.plan(doc({ alias: { aliases: { a: 'x' } } }));
    expect(planned.observed.alias).toEqual({ aliases: { a: 'x' } });
    expect(planned.plan.changes.every((c) => c.plugin === 'mem')).toBe(true);
  });

  it('refuses a plugin with some state methods but not all, naming the missing ones', () => {
    const { expand: _expand, ...identity } = aliasPlugin;
    try {
      assertPlugin({ ...identity, query: () => Promise.resolve({}), diff: () => [] });
      expect.unreachable();
    } catch (err) {
      expect(isOpdbusError(err, 'OPDBUS_ERR_PLUGIN_INVALID')).toBe(true);
      expect((err as Error).message).toMatch(/apply must be a function .*implements expand and none of/);
    }
    // With expand and part of the state methods, too.
    expect(() => assertPlugin({ ...aliasPlugin, diff: () => [] })).toThrow(/checkpoint must be a function/);
  });

  it('refuses a planned change whose plugin cannot checkpoint it, naming the method, and changes nothing', async () => {
    const host = memoryHost({});
    const mem = memoryPlugin(host);
    const registry = new PluginRegistry([mem]);
    // Only a plugin changed after registration can lack it: assertPlugin checks at registration.
    Reflect.deleteProperty(registry.require('mem'), 'checkpoint');
    const engine = new Engine({ registry, stateDir, verify: { attempts: 2, initialDelayMs: 1 } });
    const d = parseStateDocument(JSON.stringify({ version: 1, plugins: { mem: { k: 'v' } } }), {
      source: 'doc.yaml',
      registry,
    });
    await expect(engine.apply(d)).rejects.toMatchObject({
      message: expect.stringContaining('has changes in this plan but no checkpoint method'),
    });
    expect(host.values.has('k')).toBe(false);
  });
});
