import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OpdbusError, PLUGIN_CONTRACT_VERSION, PluginRegistry } from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/plugins.js';
import {
  createEngine,
  exitCodeFor,
  exitCodes,
  loadConfig,
  loadPlugins,
  resolvePlugins,
} from '../src/index.js';

// Real plugin packages, written to a temporary directory as an author would publish them: a
// package.json with an `opdbus` field and an ES module. They import zod from their own
// node_modules (a link to the one op-dbus uses, as npm would dedupe it).
let root: string;

/** A plugin module managing one file under the target's root, as `opdbus plugin new` writes. */
function pluginModule(name: string, exportLine: string): string {
  return `import { readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
const file = (ctx) => join(ctx.target.root ?? '/', 'etc', '${name}');
const read = async (ctx) => readFile(file(ctx), 'utf8').then((content) => ({ content }), () => ({}));
const make = (options = {}) => ({
  name: '${name}',
  version: '1.2.3',
  description: 'The text of /etc/${name}' + (options.suffix ? ' ' + options.suffix : ''),
  schema: z.strictObject({ content: z.string().optional() }),
  probe: async () => ({ available: true }),
  query: async (ctx) => read(ctx),
  diff: (desired, observed) =>
    desired.content === undefined || desired.content === observed.content
      ? []
      : [{ resource: 'file', op: observed.content === undefined ? 'create' : 'modify', before: observed.content ?? null, after: desired.content }],
  apply: async (change, ctx) => writeFile(file(ctx), change.after),
  checkpoint: async (ctx) => read(ctx),
  restore: async (token, ctx) => (token.content === undefined ? rm(file(ctx), { force: true }) : writeFile(file(ctx), token.content)),
});
${exportLine}
`;
}

async function writePackage(dir: string, manifest: Record<string, unknown>, source: string): Promise<string> {
  const path = join(root, dir);
  await mkdir(path, { recursive: true });
  await writeFile(
    join(path, 'package.json'),
    JSON.stringify({ name: dir, version: '1.2.3', type: 'module', main: 'index.js', opdbus: manifest }),
  );
  await writeFile(join(path, 'index.js'), source);
  return path;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'opdbus-loader-'));
  await mkdir(join(root, 'node_modules'));
  const zodDir = dirname(
    createRequire(createRequire(import.meta.url).resolve('@opdbus/core')).resolve('zod/package.json'),
  );
  await symlink(zodDir, join(root, 'node_modules', 'zod'));
  await writePackage(
    'opdbus-plugin-motd',
    { contract: PLUGIN_CONTRACT_VERSION, plugin: 'motdPlugin' },
    pluginModule('motd', 'export const motdPlugin = make();'),
  );
  await writePackage(
    'opdbus-plugin-future',
    { contract: PLUGIN_CONTRACT_VERSION + 1, plugin: 'futurePlugin' },
    pluginModule('future', 'export const futurePlugin = make();'),
  );
  await writePackage(
    'opdbus-plugin-throws',
    { contract: PLUGIN_CONTRACT_VERSION, plugin: 'throwsPlugin' },
    `throw new Error('cannot start: no such device');\nexport const throwsPlugin = {};\n`,
  );
  await writePackage(
    'opdbus-plugin-motd-again',
    { contract: PLUGIN_CONTRACT_VERSION, plugin: 'motdPlugin' },
    pluginModule('motd', 'export const motdPlugin = make();'),
  );
  await writePackage(
    'opdbus-plugin-sysctl-clone',
    { contract: PLUGIN_CONTRACT_VERSION, plugin: 'sysctlPlugin' },
    pluginModule('sysctl', 'export const sysctlPlugin = make();'),
  );
  await writePackage(
    'opdbus-plugin-badschema',
    { contract: PLUGIN_CONTRACT_VERSION, plugin: 'badPlugin' },
    pluginModule(
      'bad',
      `export const badPlugin = { ...make(), schema: z.strictObject({ x: z.lazy(() => { throw new Error('schema getter failed'); }) }) };`,
    ),
  );
  await writePackage(
    'opdbus-plugin-greeter',
    { contract: PLUGIN_CONTRACT_VERSION, plugin: ['createGreeter'] },
    pluginModule('greeter', 'export const createGreeter = (options) => make(options);'),
  );
  // An npm-installed package, found by name in node_modules above the working directory.
  await mkdir(join(root, 'app', 'node_modules'), { recursive: true });
  await symlink(join(root, 'opdbus-plugin-motd'), join(root, 'app', 'node_modules', 'opdbus-plugin-motd'));
  await mkdir(join(root, 'app', 'sub'));
  await writeFile(join(root, 'app', 'node_modules', 'not-a-plugin.json'), '{}');
  await mkdir(join(root, 'app', 'node_modules', 'left-pad'));
  await writeFile(
    join(root, 'app', 'node_modules', 'left-pad', 'package.json'),
    JSON.stringify({ name: 'left-pad', version: '1.0.0' }),
  );
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadPlugins', () => {
  it('loads a package by directory and by npm name, and the engine works with its plugin', async () => {
    const byDir = await loadPlugins([join(root, 'opdbus-plugin-motd')]);
    expect(byDir.refusals).toEqual([]);
    expect(byDir.loaded.map((l) => [l.plugin.name, l.package, l.version])).toEqual([
      ['motd', 'opdbus-plugin-motd', '1.2.3'],
    ]);
    const byName = await loadPlugins(['opdbus-plugin-motd'], { cwd: join(root, 'app', 'sub'), from: [] });
    expect(byName.refusals).toEqual([]);
    expect(byName.plugins.map((p) => p.name)).toEqual(['motd']);

    const target = join(root, 'target');
    await mkdir(join(target, 'etc'), { recursive: true });
    await writeFile(join(target, 'etc', 'motd'), 'welcome\n');
    const engine = createEngine(
      { stateDir: join(root, 'state'), logLevel: 'silent', root: target },
      { plugins: [...builtinPlugins(), ...byDir.plugins] },
    );
    expect(await engine.query(['motd'])).toEqual({ motd: { content: 'welcome\n' } });
    expect(new PluginRegistry(engine.registry.list()).jsonSchema()).toMatchObject({
      properties: { plugins: { properties: { motd: { description: 'The text of /etc/motd' } } } },
    });
  });

  it('refuses each bad package with an error naming it, and loads the rest', async () => {
    const specs = [
      join(root, 'opdbus-plugin-future'),
      join(root, 'opdbus-plugin-throws'),
      join(root, 'opdbus-plugin-motd'),
      join(root, 'opdbus-plugin-motd-again'),
      join(root, 'opdbus-plugin-badschema'),
      'opdbus-plugin-nowhere',
      'left-pad',
      join(root, 'opdbus-plugin-greeter'),
    ];
    const { plugins, refusals } = await loadPlugins(specs, { cwd: join(root, 'app'), from: [] });
    expect(plugins.map((p) => p.name)).toEqual(['motd', 'greeter']);
    expect(refusals.map((e) => [e.code, e.data?.package ?? e.data?.spec])).toEqual([
      ['OPDBUS_ERR_PLUGIN_CONTRACT', 'opdbus-plugin-future'],
      ['OPDBUS_ERR_PLUGIN_LOAD', 'opdbus-plugin-throws'],
      ['OPDBUS_ERR_PLUGIN_CLASH', 'opdbus-plugin-motd-again'],
      ['OPDBUS_ERR_PLUGIN_SCHEMA', 'opdbus-plugin-badschema'],
      ['OPDBUS_ERR_PLUGIN_LOAD', 'opdbus-plugin-nowhere'],
      ['OPDBUS_ERR_PLUGIN_LOAD', 'left-pad'],
    ]);
    const [contract, throws, clash, schema, nowhere, notPlugin] = refusals.map((e) => e.message);
    expect(contract).toMatch(
      new RegExp(`opdbus-plugin-future@1.2.3 .* built for plugin contract ${PLUGIN_CONTRACT_VERSION + 1}`),
    );
    expect(throws).toMatch(/opdbus-plugin-throws .* threw on import .*cannot start: no such device/);
    expect(clash).toMatch(
      /opdbus-plugin-motd-again .* provides plugin "motd", which opdbus-plugin-motd .* already provides/,
    );
    expect(schema).toMatch(/opdbus-plugin-badschema .*does not compile.*schema getter failed/);
    expect(nowhere).toMatch(/Cannot find plugin package opdbus-plugin-nowhere from .*npm install/);
    expect(notPlugin).toMatch(/left-pad .* has no "opdbus" field/);
    for (const err of refusals) {
      expect(err).toBeInstanceOf(OpdbusError);
      expect(exitCodeFor(err.code, err.data)).toBe(exitCodes.INVALID_INPUT.code);
    }
  });

  it('loads every built-in plugin package by its npm name, as a package from outside', async () => {
    const packages = builtinPlugins().map((p) => p.name);
    const names = [
      'sysctl',
      'wireguard',
      'network',
      'firewall',
      'ovs',
      'containers',
      'systemd',
      'numa',
      'hostname',
      'timedate',
      'sessions',
      'pci',
      'dns',
      'packages',
      'users',
      'ssh',
    ];
    const { plugins, refusals, loaded } = await loadPlugins(
      [...names.map((n) => `@opdbus/plugins-${n}`), '@opdbus/plugins-dbus'],
      { cwd: root },
    );
    expect(refusals).toEqual([]);
    expect(plugins.map((p) => p.name)).toEqual(packages);
    // Each plugin's version is its package's (packageVersion), not a hand-written one.
    for (const l of loaded)
      expect(`${l.plugin.name} ${l.plugin.version}`).toBe(`${l.plugin.name} ${l.version}`);
  });
});

describe('resolvePlugins and the configuration file', () => {
  it('loads the config file, OPDBUS_PLUGINS and --plugin after the built-in plugins', async () => {
    const config = join(root, 'config.yaml');
    await writeFile(
      config,
      'plugins:\n  - package: ./opdbus-plugin-greeter\n    options: { suffix: (from the config) }\n  - ./opdbus-plugin-sysctl-clone\n',
    );
    const { plugins, refusals, loaded } = await resolvePlugins({
      config,
      env: { OPDBUS_PLUGINS: ` ${join(root, 'opdbus-plugin-throws')} ,` },
      plugin: ['opdbus-plugin-motd'],
      cwd: join(root, 'app'),
    });
    const names = plugins.map((p) => p.name);
    expect(names.slice(0, builtinPlugins().length)).toEqual(builtinPlugins().map((p) => p.name));
    expect(names.slice(builtinPlugins().length)).toEqual(['greeter', 'motd']);
    expect(loaded.find((l) => l.plugin.name === 'greeter')?.plugin.description).toBe(
      'The text of /etc/greeter (from the config)',
    );
    expect(refusals.map((e) => e.code)).toEqual(['OPDBUS_ERR_PLUGIN_CLASH', 'OPDBUS_ERR_PLUGIN_LOAD']);
    expect(refusals[0]?.message).toMatch(
      /provides plugin "sysctl", which @opdbus\/plugins-sysctl \(builtin\)/,
    );
  });

  it('loads only the built-in plugins named, and still refuses a clash with one it did not load', async () => {
    const some = await resolvePlugins({
      plugin: ['opdbus-plugin-motd'],
      builtinNames: ['network', 'sysctl', 'nope'],
      cwd: join(root, 'app'),
      env: {},
    });
    expect(some.plugins.map((p) => p.name)).toEqual(['sysctl', 'network', 'motd']);
    expect(some.loaded.slice(0, 2).map((l) => `${l.package} ${l.source}`)).toEqual([
      '@opdbus/plugins-sysctl builtin',
      '@opdbus/plugins-network builtin',
    ]);
    expect(some.refusals).toEqual([]);
    // A package that provides "sysctl" clashes with the built-in one even when only network is asked for.
    const clash = await resolvePlugins({
      plugin: [join(root, 'opdbus-plugin-sysctl-clone')],
      builtinNames: ['network'],
      cwd: join(root, 'app'),
      env: {},
    });
    expect(clash.refusals.map((e) => e.code)).toEqual(['OPDBUS_ERR_PLUGIN_CLASH']);
    expect(clash.plugins.map((p) => p.name)).toEqual(builtinPlugins().map((p) => p.name));
  });

  it('a missing or invalid --config file is an error naming the file and the path in it', async () => {
    const missing = (() => {
      try {
        return loadConfig(join(root, 'absent.yaml'));
      } catch (err) {
        return err;
      }
    })();
    expect(missing).toBeInstanceOf(OpdbusError);
    expect((missing as OpdbusError).code).toBe('OPDBUS_ERR_CONFIG');
    expect((missing as OpdbusError).message).toContain(join(root, 'absent.yaml'));

    const bad = join(root, 'bad.yaml');
    await writeFile(bad, 'plugins:\n  - 42\nextra: true\n');
    expect(() => loadConfig(bad)).toThrow(/bad\.yaml: \.plugins\[0\]: /);
    await writeFile(bad, 'plugins: [unclosed\n');
    expect(() => loadConfig(bad)).toThrow(/bad\.yaml: not valid YAML at line/);
    await writeFile(bad, 'plugins: []\ntypo: 1\n');
    expect(() => loadConfig(bad)).toThrow(/bad\.yaml: .*typo/);
  });
});
