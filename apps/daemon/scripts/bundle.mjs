#!/usr/bin/env node
// Bundle `opdbusd` into dist/bin.js (and lazily loaded chunks in dist/chunks/), minified. A daemon
// keeps the source of every module it loaded on its heap for as long as it runs, plus one module
// record, one URL and one path string per file: one minified bundle instead of ~900 module files
// takes several MiB off its resident size at rest (see docs/benchmarks.md, daemon). tsc's own
// dist/*.js stay for the library exports (`import { Daemon } from '@opdbus/daemon'`); only the bin
// is replaced. Follows apps/cli/scripts/bundle.mjs (same rewriting of `import.meta.url`).
//
// Packages with native addons or large optional trees stay external; they are loaded from
// node_modules as before.
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const app = dirname(dirname(fileURLToPath(import.meta.url)));

/** The workspace's packages by name: their folder and runtime dependencies. */
const workspace = new Map();
for (const group of ['packages', 'apps']) {
  const root = join(app, '..', '..', group);
  for (const entry of readdirSync(root)) {
    const file = join(root, entry, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    workspace.set(pkg.name, {
      dir: join(root, entry),
      deps: Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }),
    });
  }
}
const self = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')).name;

/** The packages to go through from the daemon to `name` (each a dependency of the one before). */
function dependencyChain(name) {
  const seen = new Set([self]);
  const queue = [[self, []]];
  while (queue.length > 0) {
    const [at, path] = queue.shift();
    if (at === name) return path;
    for (const dep of workspace.get(at)?.deps ?? []) {
      if (seen.has(dep) || !workspace.has(dep)) continue;
      seen.add(dep);
      queue.push([dep, [...path, dep]]);
    }
  }
  throw new Error(`${name} is not a runtime dependency of ${self}, directly or through others`);
}

/**
 * A workspace module that resolves files next to itself (`createRequire(import.meta.url)`,
 * `new URL('../package.json', import.meta.url)`, a sibling entry point) gets the URL its built file
 * has inside its own installed package instead of the bundle chunk's. The package is found as
 * Node finds it: through the dependencies that lead to it from the daemon (the daemon depends on
 * @opdbus/runtime, which depends on the plugins), each resolved from the one before; the module's
 * place in it is `dist/NAME.js`.
 */
const ownPackageUrl = {
  name: 'own-package-url',
  setup(b) {
    b.onLoad({ filter: /[\\/](packages|apps)[\\/][^\\/]+[\\/]src[\\/][^\\/]+\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const pkgDir = dirname(dirname(args.path));
      const { name } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
      const built = relative(pkgDir, args.path)
        .replace(/^src\//, 'dist/')
        .replace(/\.ts$/, '.js');
      const chain = name === self ? [self] : dependencyChain(name);
      const packageJson = `${JSON.stringify(chain)}.reduce((from, pkg) => __opdbusRequire(from).resolve(pkg + '/package.json'), import.meta.filename)`;
      const url = `new URL(${JSON.stringify(built)}, __opdbusFileUrl(${packageJson})).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
};

/**
 * zod's namespace carries every message locale; op-dbus reports in English only, so `z.locales`
 * holds `en` alone in the bundle (z.config(z.locales.en()) still works).
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

rmSync(join(app, 'dist', 'chunks'), { recursive: true, force: true });
const result = await build({
  absWorkingDir: app,
  entryPoints: { bin: 'src/bin.ts' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  minify: true,
  // Stack traces and logged errors keep the names of classes and functions.
  keepNames: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Workspace packages from their sources (as vitest sees them), npm packages from node_modules.
  conditions: ['@opdbus/source'],
  // Native addons, and large optional trees loaded by few deployments.
  external: [
    'fs-native-extensions',
    'node-unix-socket',
    'dbus-next',
    'hnswlib-node',
    '@opdbus/ml',
    '@tensorflow/*',
    'onnxruntime-node',
    'playwright-core',
  ],
  banner: {
    js: [
      "import { createRequire as __opdbusRequire } from 'node:module';",
      "import { pathToFileURL as __opdbusFileUrl } from 'node:url';",
      'const require = __opdbusRequire(import.meta.url);',
    ].join('\n'),
  },
  plugins: [ownPackageUrl, zodEnglishOnly],
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
writeFileSync(join(app, 'dist', 'bundle-meta.json'), JSON.stringify(result.metafile));
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stderr.write(
  `bundled dist/bin.js: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB\n`,
);
