#!/usr/bin/env node
// Bundle the `opdbus` command into dist/bin.js (and lazily loaded chunks in dist/chunks/), so that
// a command loads a few files instead of resolving hundreds of modules across packages: most of a
// scoped command's start-up was module resolution and loading. tsc's own dist/*.js stay for the
// library exports (`import { main } from '@opdbus/cli'`); only the bin is replaced.
//
// Packages with native addons or CommonJS loaded by path stay external or are rewritten to find
// their files from their own package (below), never from the bundle's directory.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, transform } from 'esbuild';

const cli = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * A workspace module that resolves files next to itself (`createRequire(import.meta.url)`, a
 * sibling entry point) gets the URL its built file has inside its own installed package instead
 * of the bundle's: `import.meta.resolve('PKG/package.json')` from the bundle finds the package
 * (a dependency of the CLI), and the module's place in it is `dist/NAME.js`.
 */
const ownPackageUrl = {
  name: 'own-package-url',
  setup(b) {
    b.onLoad({ filter: /\/packages\/[^/]+\/src\/[^/]+\.ts$/ }, (args) => {
      let source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const pkgDir = dirname(dirname(args.path));
      const { name, version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
      // A plugin's version is its package's, known now: no package.json to find and read at each start.
      source = source.replaceAll('packageVersion(import.meta.url)', JSON.stringify(version));
      const built = relative(pkgDir, args.path)
        .replace(/^src\//, 'dist/')
        .replace(/\.ts$/, '.js');
      const url = `new URL(${JSON.stringify(built)}, import.meta.resolve(${JSON.stringify(`${name}/package.json`)})).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
};

rmSync(join(cli, 'dist', 'chunks'), { recursive: true, force: true });
// Caches of the chunks this build replaces (a new build starts with none).
rmSync(join(cli, 'dist', '.code-cache'), { recursive: true, force: true });
for (const old of readdirSync(join(cli, 'dist')))
  if (/^opdbus-.*\.cjs$/.test(old)) rmSync(join(cli, 'dist', old));
/**
 * zod's namespace carries every message locale (360 KiB of the bundle); op-dbus reports in English
 * only, so `z.locales` holds `en` alone in the bundle (z.config(z.locales.en()) still works).
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]v4[\\/](classic|core|mini)$/.test(args.resolveDir)) return undefined;
      return { path: join(args.resolveDir, '..', 'locales', 'en.js'), namespace: 'zod-locales' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: dirname(args.path),
    }));
  },
};

/** A module of the workspace's own sources (packages/NAME/src, apps/NAME/src). */
const workspaceSource = /[\\/](packages|apps)[\\/][^\\/]+[\\/]src[\\/]/;

/**
 * zod is loaded at its first use, not when the command starts: every workspace module's
 * `import { z } from 'zod'` gets a stand-in whose first property read loads zod, from a chunk of
 * its own (`__opdbusSync(import('zod'))` becomes a `require` of that chunk below). With the
 * plugins' schemas built lazily too (lazySchema of @opdbus/core), a command that validates no
 * document (`query`, `ledger`, `--help`) neither loads nor evaluates zod, nor builds a schema.
 */
const lazyZod = {
  name: 'lazy-zod',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, (args) => {
      if (args.namespace === 'lazy-zod') return undefined; // the stand-in's own import: zod itself
      if (!workspaceSource.test(args.importer)) return undefined;
      return { path: 'zod', namespace: 'lazy-zod', pluginData: { resolveDir: args.resolveDir } };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-zod' }, (args) => ({
      contents: `
let real;
const load = () => (real ??= __opdbusSync(import('zod')).z);
export const z = new Proxy({}, {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key);
    return d === undefined ? undefined : { ...d, configurable: true };
  },
});
`,
      resolveDir: args.pluginData.resolveDir,
      loader: 'js',
    }));
  },
};

/**
 * yaml's parser is loaded at its first use: a command that only prints YAML (`query`,
 * `transactions`, `ledger`) loads and runs yaml's Document and stringifier, never its lexer,
 * parser and composer (half of yaml). Every workspace module's `import { ... } from 'yaml'` gets
 * a stand-in that takes `Document` and the node predicates from yaml's own files, and everything
 * else from yaml's index, which comes from a chunk of its own at the first call (as zod does,
 * above; the files both use are in a chunk they share). A name the stand-in lacks fails the build.
 */
const lazyYamlParser = {
  name: 'lazy-yaml-parser',
  setup(b) {
    const dist = join(dirname(createRequire(join(cli, 'package.json')).resolve('yaml/package.json')), 'dist');
    b.onResolve({ filter: /^yaml$/ }, (args) => {
      if (!workspaceSource.test(args.importer)) return undefined;
      return { path: 'yaml', namespace: 'lazy-yaml-parser' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-yaml-parser' }, () => ({
      contents: `
export { Document } from './doc/Document.js';
export { isAlias, isCollection, isDocument, isMap, isNode, isPair, isScalar, isSeq } from './nodes/identity.js';
let full;
// yaml's index is CommonJS: its chunk's namespace has module.exports as \`default\`.
const yaml = () => (full ??= __opdbusSync(import('./index.js')).default);
export const parse = (...args) => yaml().parse(...args);
export const parseDocument = (...args) => yaml().parseDocument(...args);
export const parseAllDocuments = (...args) => yaml().parseAllDocuments(...args);
export const stringify = (...args) => yaml().stringify(...args);
export function LineCounter() {
  return new (yaml().LineCounter)();
}
`,
      resolveDir: dist,
      loader: 'js',
    }));
  },
};

/** The CLI's version, known now: no package.json to find and read at each start. */
const cliVersion = {
  name: 'cli-version',
  setup(b) {
    b.onLoad({ filter: /[\\/]apps[\\/]cli[\\/]src[\\/]main\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const read = "(createRequire(import.meta.url)('../package.json') as { version: string }).version";
      if (!source.includes(read))
        throw new Error(`${args.path}: the VERSION line changed; update cliVersion`);
      const { version } = JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8'));
      return { contents: source.replace(read, JSON.stringify(version)), loader: 'ts' };
    });
  },
};

/**
 * @opdbus/runtime's index re-exports its plugin-package loader, and the loader imports every
 * built-in plugin statically (to check them as packages). esbuild groups modules into chunks by
 * which entry points reach them, so those re-exports put every plugin on the start-up path of every
 * command. In the bundle the index leaves them out; the CLI imports the loader from
 * `@opdbus/runtime/plugin-packages`, on demand (a static use of them from the index fails the build).
 */
const runtimeIndexWithoutLoader = {
  name: 'runtime-index-without-loader',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/]runtime[\\/]src[\\/]index\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replace(
        /export \{[^}]*\} from '\.\/(loader|config|plugins)\.js';/g,
        '',
      ),
      loader: 'ts',
    }));
  },
};

const banner =
  "import { createRequire as __opdbusRequire } from 'node:module';\nconst require = __opdbusRequire(import.meta.url);";
const result = await build({
  absWorkingDir: cli,
  entryPoints: { opdbus: 'src/bin.ts' },
  outdir: 'dist',
  entryNames: '[name]-[hash]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Workspace packages from their sources (as vitest sees them), npm packages from node_modules.
  conditions: ['@opdbus/source'],
  // Loaded on demand by few commands, with native addons or large optional trees of their own.
  external: [
    '@opdbus/ledger',
    '@opdbus/ml',
    'fs-native-extensions',
    'dbus-next',
    'hnswlib-node',
    '@tensorflow/*',
  ],
  banner: { js: banner },
  plugins: [runtimeIndexWithoutLoader, ownPackageUrl, zodEnglishOnly, lazyZod, lazyYamlParser, cliVersion],
  legalComments: 'none',
  // No comments or indentation: less to read and parse at each start (names stay as they are).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  metafile: true,
  write: false,
});

/**
 * Each ES-module chunk becomes a CommonJS script (dist/chunks/NAME.cjs) that dist/bin.js runs
 * with V8's code cache (src/launcher.ts): `import()` of a chunk or package becomes
 * `__opdbusImport(...)`, `import.meta.url`/`resolve` the launcher's values for the chunk, and a
 * static import of another chunk a `require` of it, which the launcher answers from its chunks.
 */
mkdirSync(join(cli, 'dist', 'chunks'), { recursive: true });

/** Built-in modules whose exports are a plain namespace (never called or extended themselves). */
const namespaceBuiltins =
  'child_process|crypto|dgram|dns|fs/promises|http|https|http2|net|os|perf_hooks|readline|timers/promises|tls|worker_threads|zlib';

/**
 * A built-in module is loaded at its first use rather than when a chunk that names it starts
 * (src/launcher.ts lazyBuiltin): `import { x } from 'node:X'` (esbuild: `import_node_X=require("node:X")`,
 * used as `import_node_X.x`), and in bundled CommonJS packages `name=require("X")` of a module
 * that is only a namespace (commander's `child_process`, which costs milliseconds to load).
 */
function lazyBuiltins(code) {
  return code
    .replace(/\b(import_[\w$]+)=require\("(node:[\w/]+)"\)/g, '$1=__opdbusLazy("$2")')
    .replace(
      new RegExp(
        `([\\w$]+)=(?:require|\\(0,import_[\\w$]+\\.__require\\))\\("(?:node:)?(${namespaceBuiltins})"\\)`,
        'g',
      ),
      '$1=__opdbusLazy("node:$2")',
    );
}
/** The function a chunk is (its parameters: what src/launcher.ts passes it). */
const chunkWrapper =
  '(function (exports, require, module, __filename, __dirname, __opdbusImport, __opdbusMetaUrl, __opdbusMetaResolve, __opdbusLazy) {';
let entry;
/** Each script's CommonJS body, by its output path. */
const scripts = [];
for (const file of result.outputFiles) {
  const out = relative(cli, file.path);
  const meta = result.metafile.outputs[out];
  let code = file.text.replace(/^#!.*\n/, '');
  if (!code.startsWith(banner)) throw new Error(`${out}: the bundle banner is missing`);
  code = code.slice(banner.length);
  const dynamic = meta.imports.filter((i) => i.kind === 'dynamic-import');
  for (const spec of new Set(
    dynamic.map((i) => (i.external ? i.path : `./${relative(dirname(out), i.path)}`)),
  )) {
    const call = `import(${JSON.stringify(spec)})`;
    if (!code.includes(call)) throw new Error(`${out}: ${call} not found to rewrite`);
    code = code.replaceAll(call, `__opdbusImport(${JSON.stringify(spec)})`);
  }
  const cjs = await transform(code, {
    format: 'cjs',
    loader: 'js',
    platform: 'node',
    target: 'node20',
    define: { 'import.meta.url': '__opdbusMetaUrl', 'import.meta.resolve': '__opdbusMetaResolve' },
    // An `import()` of a computed specifier (a plugin package's entry) becomes esbuild's
    // `Promise.resolve().then(()=>__toESM(require(X)))`, turned into `__opdbusImport(((X)))` below:
    // a vm.Script's own import() needs a callback that V8's code cache loses (Node 20).
    supported: { 'dynamic-import': false },
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'silent',
  });
  for (const w of cjs.warnings) throw new Error(`${out}: ${w.text} (in its CommonJS form)`);
  // The lazy zod stand-in's import of zod's chunk (above): synchronous, through the launcher.
  const syncZod = cjs.code.replace(/__opdbusSync\(__opdbusImport\(("[^"]+")\)\)/g, 'require($1)');
  if (syncZod.includes('__opdbusSync')) throw new Error(`${out}: a lazy zod import was not rewritten`);
  const imports = syncZod.replace(
    /Promise\.resolve\(\)\.then\(\(\)=>__toESM\w*\(require\(/g,
    '__opdbusImport(((',
  );
  scripts.push({ out, body: lazyBuiltins(imports) });
  if (meta.entryPoint === 'src/bin.ts') entry = relative('dist', out).replace(/\.js$/, '.cjs');
}
if (entry === undefined) throw new Error('no entry chunk in the bundle');

/**
 * A chunk of modules that are only re-exports or types comes out empty; a static `require` of one
 * still costs a start a file's read and compile, so it becomes `{}` (its exports) where required.
 * The files are written as the function the launcher runs them as: V8 compiles the file's text as
 * it is read, with no wrapped copy of it to make (src/launcher.ts chunkLoader).
 */
const empty = new Set(scripts.filter((s) => s.body.trim() === '').map((s) => basename(s.out)));
for (const { out, body } of scripts) {
  const kept = body.replace(/require\("\.\/(?:chunks\/)?([\w-]+\.js)"\)/g, (call, name) =>
    empty.has(name) ? '{}' : call,
  );
  writeFileSync(join(cli, out.replace(/\.js$/, '.cjs')), `${chunkWrapper}${kept}\n})`);
}

// The program's commands and valued global options, for the launcher's per-command code caches
// (src/launcher.ts launch): read off the program tsc built (dist/main.js).
const { buildProgram, commandLineOf } = await import(pathToFileURL(join(cli, 'dist', 'main.js')).href);
const commandLine = commandLineOf(buildProgram());

// The launcher, which runs the entry script: dist/bin.cjs (the `opdbus` command: a CommonJS main
// module starts without Node's ES-module loader) and dist/bin.js (the same, for callers that name it).
for (const [outfile, format, dir] of [
  ['dist/bin.cjs', 'cjs', '__dirname'],
  [
    'dist/bin.js',
    'esm',
    "(await import('node:path')).dirname((await import('node:url')).fileURLToPath(import.meta.url))",
  ],
]) {
  await build({
    absWorkingDir: cli,
    stdin: {
      contents: `import { launch } from './src/launcher.ts';\nlaunch(${dir}, ${JSON.stringify(entry)}, ${JSON.stringify(commandLine)});\n`,
      resolveDir: cli,
      loader: 'ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
}
writeFileSync(join(cli, 'dist', 'bundle-meta.json'), JSON.stringify(result.metafile));
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stderr.write(
  `bundled dist/bin.js: ${Object.keys(result.metafile.outputs).length} chunks, ${(bytes / 1024).toFixed(0)} KiB\n`,
);
