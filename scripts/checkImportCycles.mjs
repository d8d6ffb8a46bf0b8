#!/usr/bin/env node
// Fails on an import cycle between the source modules of a package (run by `pnpm lint`, alone with
// `pnpm lint:cycles`). Type-only imports count: a cycle of types is still two modules that cannot be
// read, moved or split alone. The fix is to move what both sides need into a module of its own.
import { fileURLToPath } from 'node:url';
import { parseCircular, parseDependencyTree } from 'dpdm';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A cycle as text, starting from its first module in sort order (so that it reads the same from anywhere). */
function cycleKey(modules) {
  const first = modules.indexOf([...modules].sort()[0]);
  return [...modules.slice(first), ...modules.slice(0, first)].join(' -> ');
}

/**
 * Cycles that exist and are someone else's to remove, each as {@link cycleKey} writes it (`a.ts -> b.ts`, from
 * any module of the cycle). Remove an entry once its cycle is gone (the check says so); never add one for new
 * code. Empty: every import cycle fails `pnpm lint`.
 */
const known = new Set(/** @type {string[]} */ ([]).map((cycle) => cycleKey(cycle.split(' -> '))));

const tree = await parseDependencyTree(
  ['packages/*/src/**/*.ts', 'apps/*/src/**/*.ts', 'tooling/*/src/**/*.ts'],
  {
    context: root,
    cwd: root,
    transform: false,
    // Test files and other packages (resolved through node_modules) are not followed.
    exclude: /node_modules|\.test\.ts$/,
  },
);
const found = parseCircular(tree).map(cycleKey);
const added = found.filter((cycle) => !known.has(cycle));
const gone = [...known].filter((cycle) => !found.includes(cycle));
for (const cycle of gone)
  process.stderr.write(`import cycle gone, remove it from scripts/checkImportCycles.mjs: ${cycle}\n`);
if (added.length > 0) {
  process.stderr.write(
    `${added.length} new import cycle(s); move what both sides need into a module of their own:\n${added
      .map((cycle) => `  ${cycle}`)
      .join('\n')}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `import cycles: none new (${Object.keys(tree).length} modules, ${found.length} known)\n`,
);
