import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpdbusError, PLUGIN_CONTRACT_VERSION } from '@opdbus/core';
import type { GlobalOptions, Output } from '../io.js';

/** Options of `opdbus plugin new`. */
export interface PluginNewOptions {
  /** Where to write the package (default `./opdbus-plugin-NAME`); must not exist or be empty. */
  dir?: string;
}

const require = createRequire(import.meta.url);

/** The op-dbus checkout this CLI runs from (apps/cli/{src,dist}/commands → the root), if it is one. */
function checkoutRoot(): string | undefined {
  const root = fileURLToPath(new URL('../../../../', import.meta.url));
  const core = join(root, 'packages', 'core', 'package.json');
  if (!existsSync(join(root, 'pnpm-workspace.yaml')) || !existsSync(core)) return undefined;
  return (require(core) as { name?: string }).name === '@opdbus/core' ? realpathSync(root) : undefined;
}

/** `file:` of a package directory the checkout has installed (its real path), if it has. */
function linked(dir: string): string | undefined {
  return existsSync(join(dir, 'package.json')) ? `file:${realpathSync(dir)}` : undefined;
}

/**
 * The dependencies of a generated package. From a checkout: `file:` links to the checkout's
 * packages, and to the very zod, vitest, TypeScript and Node types they use (one copy of each, so
 * that the conformance suite runs in the package's own vitest); otherwise the npm versions this
 * CLI was released with.
 */
function dependencyVersions(): Record<
  '@opdbus/core' | '@opdbus/sandbox' | 'zod' | 'vitest' | 'typescript' | '@types/node',
  string
> {
  const core = require('@opdbus/core/package.json') as {
    version: string;
    dependencies?: Record<string, string>;
  };
  const sandbox = require('@opdbus/sandbox/package.json') as {
    version: string;
    peerDependencies?: Record<string, string>;
  };
  const range = (spec: string | undefined, fallback: string): string =>
    spec !== undefined && /^[\^~]?\d/.test(spec) ? spec : fallback;
  const published = {
    '@opdbus/core': `^${core.version}`,
    '@opdbus/sandbox': `^${sandbox.version}`,
    zod: range(core.dependencies?.zod, '^4.0.0'),
    vitest: range(sandbox.peerDependencies?.vitest, '^4.0.0'),
    typescript: '^5.9.0',
    '@types/node': '^20.19.0',
  };
  const root = checkoutRoot();
  if (root === undefined) return published;
  const coreDir = join(root, 'packages', 'core');
  const sandboxDir = join(root, 'packages', 'sandbox');
  return {
    '@opdbus/core': linked(coreDir) ?? published['@opdbus/core'],
    '@opdbus/sandbox': linked(sandboxDir) ?? published['@opdbus/sandbox'],
    zod: linked(join(coreDir, 'node_modules', 'zod')) ?? published.zod,
    vitest: linked(join(sandboxDir, 'node_modules', 'vitest')) ?? published.vitest,
    typescript: linked(join(coreDir, 'node_modules', 'typescript')) ?? published.typescript,
    '@types/node': linked(join(coreDir, 'node_modules', '@types', 'node')) ?? published['@types/node'],
  };
}

const camel = (name: string): string => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const pascal = (name: string): string => camel(name).replace(/^[a-z]/, (c) => c.toUpperCase());

/** The files of a new plugin package, by path relative to its directory. */
export function pluginPackageFiles(name: string): Record<string, string> {
  const id = camel(name);
  const Id = pascal(name);
  const pkgName = `opdbus-plugin-${name}`;
  const versions = dependencyVersions();
  const packageJson = {
    name: pkgName,
    version: '0.1.0',
    description: `op-dbus plugin: the text of /etc/${name} under the target's root`,
    license: 'Apache-2.0',
    type: 'module',
    engines: { node: '>=20.19' },
    keywords: ['opdbus', 'opdbus-plugin'],
    opdbus: { contract: PLUGIN_CONTRACT_VERSION, plugin: `${id}Plugin` },
    exports: {
      '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      './package.json': './package.json',
    },
    files: ['dist', 'src'],
    scripts: {
      build: 'tsc -p tsconfig.build.json',
      prepare: 'npm run build',
      typecheck: 'tsc -p tsconfig.json',
      test: 'tsc -p tsconfig.json && vitest run',
    },
    peerDependencies: { '@opdbus/core': versions['@opdbus/core'] },
    dependencies: { zod: versions.zod },
    devDependencies: {
      '@opdbus/core': versions['@opdbus/core'],
      '@opdbus/sandbox': versions['@opdbus/sandbox'],
      '@types/node': versions['@types/node'],
      typescript: versions.typescript,
      vitest: versions.vitest,
    },
  };
  const compilerOptions = {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
    types: ['node'],
    noEmit: true,
  };
  return {
    'package.json': `${JSON.stringify(packageJson, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify({ compilerOptions, include: ['src', 'test'] }, null, 2)}\n`,
    'tsconfig.build.json': `${JSON.stringify(
      {
        extends: './tsconfig.json',
        compilerOptions: { noEmit: false, declaration: true, rootDir: 'src', outDir: 'dist' },
        include: ['src'],
      },
      null,
      2,
    )}\n`,
    '.gitignore': 'node_modules/\ndist/\n',
    'src/index.ts': pluginSource(name, id, Id, pkgName),
    'test/conformance.test.ts': conformanceSource(name, Id),
    'test/plugin.test.ts': unitTestSource(name, id, Id),
    'README.md': readmeSource(name, id, Id, pkgName),
  };
}

function pluginSource(name: string, id: string, Id: string, pkgName: string): string {
  return `/**
 * ${pkgName}: an op-dbus plugin that manages the text of /etc/${name} under the target's root
 * (\`opdbus --root DIR\`; default /). Written by \`opdbus plugin new\`: change it to manage what you need,
 * and keep the conformance suite (test/conformance.test.ts) passing.
 *
 * @packageDocumentation
 */
import { watch as watchFs } from 'node:fs';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OpdbusError, definePlugin, packageVersion, type Plugin, type PluginContext } from '@opdbus/core';
import { z } from 'zod';

/** The \`${name}\` section of a state document: whether the file exists, and its text. */
export const ${id}Schema = z
  .discriminatedUnion('state', [
    z.strictObject({
      state: z.literal('present').describe('The file exists.'),
      content: z.string().max(65_536).describe('Its whole text.'),
    }),
    z.strictObject({ state: z.literal('absent').describe('The file does not exist.') }),
  ])
  .describe('The file /etc/${name} under the target root.');

/** The \`${name}\` section (desired and observed). */
export type ${Id}Section = z.infer<typeof ${id}Schema>;

/** What \`restore\` needs to put the file back: its text before, or null when it did not exist. */
export type ${Id}Checkpoint = { content: string | null };

/** What a change carries in \`before\` / \`after\`: the file's text (null: no file). */
export type ${Id}Value = string;

/** Options of {@link create${Id}Plugin}. */
export interface ${Id}PluginOptions {
  /** The file, relative to the target's root (default \`etc/${name}\`). */
  path?: string;
}

/**
 * The \`${name}\` plugin. Its one resource is the file; \`apply\` writes it atomically (a temporary
 * file renamed over it), so applying a change twice is the same as once; \`restore\` puts back the
 * exact text (or removes the file) recorded by \`checkpoint\`; \`watch\` reports changes to the
 * file made by anyone (inotify on its directory).
 *
 * @example
 * \`\`\`ts
 * import { PluginRegistry } from '@opdbus/core';
 * const registry = new PluginRegistry([create${Id}Plugin({ path: 'etc/issue' })]);
 * \`\`\`
 */
export function create${Id}Plugin(
  options: ${Id}PluginOptions = {},
): Plugin<${Id}Section, ${Id}Checkpoint, ${Id}Value> {
  const resource = options.path ?? 'etc/${name}';
  const fileOf = (ctx: PluginContext): string => join(ctx.target.root ?? '/', resource);

  const read = async (ctx: PluginContext): Promise<string | null> => {
    try {
      return await readFile(fileOf(ctx), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new OpdbusError('OPDBUS_ERR_PLUGIN_FAILED', '${name}: cannot read ' + fileOf(ctx) + ': ' + (err as Error).message, {
        cause: err,
      });
    }
  };

  const write = async (ctx: PluginContext, content: string | null): Promise<void> => {
    const file = fileOf(ctx);
    if (content === null) {
      await rm(file, { force: true });
      return;
    }
    await mkdir(dirname(file), { recursive: true });
    const temporary = file + '.opdbus-tmp';
    await writeFile(temporary, content, { mode: 0o644 });
    await rename(temporary, file);
  };

  return definePlugin<${Id}Section, ${Id}Checkpoint, ${Id}Value>({
    name: '${name}',
    // The package's version (package.json): one place to bump it.
    version: packageVersion(import.meta.url),
    description: 'The text of /etc/${name} under the target root',
    schema: ${id}Schema,

    async probe(ctx) {
      const dir = dirname(fileOf(ctx));
      return access(dir).then(
        () => ({ available: true }),
        () => ({ available: false, reason: dir + ' does not exist' }),
      );
    },

    async query(ctx) {
      const content = await read(ctx);
      return content === null ? { state: 'absent' } : { state: 'present', content };
    },

    diff(desired, observed) {
      const before = observed.state === 'present' ? observed.content : null;
      if (desired.state === 'absent')
        return before === null ? [] : [{ resource, op: 'delete', before, after: null }];
      if (before === desired.content) return [];
      return [{ resource, op: before === null ? 'create' : 'update', before, after: desired.content }];
    },

    // change.after is typed: the file's text (the third type argument), null when it is removed.
    async apply(change, ctx) {
      await write(ctx, change.after);
    },

    async checkpoint(ctx) {
      return { content: await read(ctx) };
    },

    async restore(token, ctx) {
      await write(ctx, token.content);
    },

    async watch(ctx, onEvent) {
      const file = fileOf(ctx);
      const watcher = watchFs(dirname(file), (_event, changed) => {
        if (changed === basename(file)) onEvent({ plugin: '${name}', resource, detail: file + ' changed' });
      });
      return () => watcher.close();
    },
  });
}

/** The \`${name}\` plugin with its defaults: what op-dbus loads (package.json \`opdbus.plugin\`). */
export const ${id}Plugin = create${Id}Plugin();
`;
}

function conformanceSource(name: string, Id: string): string {
  return `// The op-dbus plugin conformance suite, against a real directory tree standing in for a root
// filesystem: probe, query, diff, apply, verify, idempotence, rollback, checkpoint/restore, watch
// and the query round-trip.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { create${Id}Plugin, type ${Id}Section } from '../src/index.js';

describePluginConformance<${Id}Section>(create${Id}Plugin(), async () => {
  const root = await mkdtemp(join(tmpdir(), 'opdbus-plugin-${name}-'));
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc', '${name}'), 'Welcome.\\n');
  return {
    target: { root },
    desired: { state: 'present', content: 'Maintenance on Sunday, 02:00-04:00 UTC.\\n' },
    drift: () => writeFile(join(root, 'etc', '${name}'), 'changed by hand\\n'),
    teardown: () => rm(root, { recursive: true, force: true }),
  };
});
`;
}

function unitTestSource(name: string, id: string, Id: string): string {
  return `import { readFileSync } from 'node:fs';
import { PLUGIN_CONTRACT_VERSION, PluginRegistry } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { ${id}Plugin, create${Id}Plugin } from '../src/index.js';

describe('${name} plugin', () => {
  it('diff: create, update, delete, and nothing when equal', () => {
    const plugin = create${Id}Plugin();
    expect(plugin.diff({ state: 'present', content: 'a' }, { state: 'absent' })).toEqual([
      { resource: 'etc/${name}', op: 'create', before: null, after: 'a' },
    ]);
    expect(plugin.diff({ state: 'present', content: 'b' }, { state: 'present', content: 'a' })).toMatchObject([
      { op: 'update', before: 'a', after: 'b' },
    ]);
    expect(plugin.diff({ state: 'absent' }, { state: 'present', content: 'a' })).toMatchObject([{ op: 'delete' }]);
    expect(plugin.diff({ state: 'present', content: 'a' }, { state: 'present', content: 'a' })).toEqual([]);
  });

  it('registers, and its package declares the contract op-dbus speaks', () => {
    const registry = new PluginRegistry([${id}Plugin]);
    expect(registry.jsonSchema()).toMatchObject({ properties: { plugins: { properties: { ${JSON.stringify(name)}: {} } } } });
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
      opdbus: { contract: number; plugin: string };
    };
    expect(pkg.opdbus).toEqual({ contract: PLUGIN_CONTRACT_VERSION, plugin: '${id}Plugin' });
    expect(${id}Plugin.version).toBe(pkg.version);
  });
});
`;
}

function readmeSource(name: string, id: string, Id: string, pkgName: string): string {
  return `# ${pkgName}

An [op-dbus](https://github.com/opdbus/op-dbus) plugin: the \`${name}\` section manages the text of
\`/etc/${name}\` under the target's root (\`opdbus --root DIR\`, default \`/\`).

\`\`\`yaml
version: 1
plugins:
  ${name}:
    state: present
    content: |
      Maintenance on Sunday, 02:00-04:00 UTC.
\`\`\`

## Use it

\`\`\`sh
npm install && npm test                     # builds (prepare), type-checks, runs the conformance suite
opdbus --plugin . schema                    # the ${name} section is in the JSON Schema
opdbus --plugin . --root /tmp/r query --plugin ${name} > state.yaml
opdbus --plugin . --root /tmp/r diff state.yaml   # exit 0: nothing to do
opdbus --plugin . --root /tmp/r apply state.yaml
\`\`\`

op-dbus finds the plugin through the \`opdbus\` field of package.json: \`contract\` is the plugin
contract it was built for, \`plugin\` the export that is the plugin (\`${id}Plugin\`). Once published
(\`npm publish\`), load it by name: \`npm install -g ${pkgName}\`, then \`opdbus --plugin ${pkgName}\`,
\`OPDBUS_PLUGINS=${pkgName}\`, or \`plugins: [${pkgName}]\` in /etc/opdbus/config.yaml.

## API

- \`create${Id}Plugin({ path })\`: the plugin for another file under the root (default \`etc/${name}\`).
- \`${id}Plugin\`: the plugin with its defaults.
- \`${id}Schema\`: the zod schema of the section.

## What the plugin guarantees

\`apply\` writes the file atomically and is idempotent; \`checkpoint\` records the exact text (or that
the file did not exist) and \`restore\` puts it back exactly; \`watch\` reports every change of the
file. The conformance suite from \`@opdbus/sandbox/conformance\` checks all of it against a real
directory: keep it passing when you change the plugin. See op-dbus's docs/plugins.md for the
contract.
`;
}

/** `opdbus plugin new NAME --dir DIR`: write a working plugin package. */
export async function pluginNew(
  _global: GlobalOptions,
  name: string,
  options: PluginNewOptions,
  output: Output,
): Promise<number> {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(name) || name.endsWith('-') || name.includes('--'))
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `Plugin name ${JSON.stringify(name)} is not valid: lowercase letters, digits and single dashes, starting with a letter (e.g. motd).`,
    );
  const dir = resolve(options.dir ?? `opdbus-plugin-${name}`);
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new OpdbusError(
      'OPDBUS_ERR_OUTPUT_WRITE',
      `${dir} exists and is not empty; give a new directory with --dir (nothing was written).`,
      { data: { path: dir } },
    );
  const files = pluginPackageFiles(name);
  try {
    for (const [path, text] of Object.entries(files)) {
      const file = join(dir, path);
      await mkdir(resolve(file, '..'), { recursive: true });
      await writeFile(file, text, { flag: 'wx' });
    }
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_OUTPUT_WRITE',
      `Cannot write the plugin package in ${dir}: ${(err as Error).message}.`,
      {
        data: { path: dir },
        cause: err,
      },
    );
  }
  output.out(
    [
      `wrote opdbus-plugin-${name} in ${dir}:`,
      ...Object.keys(files).map((path) => `  ${path}`),
      checkoutRoot() === undefined
        ? '@opdbus/* from npm.'
        : `@opdbus/*, zod, vitest and TypeScript linked from the op-dbus checkout ${checkoutRoot() ?? ''}.`,
      'next:',
      `  cd ${dir} && npm install && npm test`,
      `  opdbus --plugin ${dir} schema`,
    ].join('\n'),
  );
  return 0;
}
