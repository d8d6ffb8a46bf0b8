#!/usr/bin/env node
// Bundle the `opdbus` command into dist/bin.js (and lazily loaded chunks in dist/chunks/), so that
// a command loads a few files instead of resolving hundreds of modules across packages: most of a
// scoped command's start-up was module resolution and loading. tsc's own dist/*.js stay for the
// library exports (`import { main } from '@opdbus/cli'`); only the bin is replaced.
//
// Packages with native addons or CommonJS loaded by path stay external or are rewritten to find
// their files from their own package (below), never from the bundle's directory.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const pkgDir = dirname(dirname(args.path));
      const { name } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
      const built = relative(pkgDir, args.path)
        .replace(/^src\//, 'dist/')
        .replace(/\.ts$/, '.js');
      const url = `new URL(${JSON.stringify(built)}, import.meta.resolve(${JSON.stringify(`${name}/package.json`)})).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
};

rmSync(join(cli, 'dist', 'chunks'), { recursive: true, force: true });
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

const result = await build({
  absWorkingDir: cli,
  entryPoints: { bin: 'src/bin.ts' },
  outdir: 'dist',
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
  banner: {
    js: "import { createRequire as __opdbusRequire } from 'node:module';\nconst require = __opdbusRequire(import.meta.url);",
  },
  plugins: [runtimeIndexWithoutLoader, ownPackageUrl, zodEnglishOnly],
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
writeFileSync(join(cli, 'dist', 'bundle-meta.json'), JSON.stringify(result.metafile));
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stderr.write(
  `bundled dist/bin.js: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB\n`,
);
