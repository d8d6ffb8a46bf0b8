import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isErrorCodeMap, type ErrorCodeInfo } from '@opdbus/core';
import { exitCategoryOf, exitCodes, type LoadedPlugin } from '@opdbus/runtime';

/** One documented error code. */
export interface ErrorCodeRow {
  code: string;
  /** The package whose error map defines it. */
  pkg: string;
  info: ErrorCodeInfo;
  /** Its exit status; `undefined` when it depends on the error (a state document path: 3, else 1). */
  exit: number | undefined;
}

interface PackageJson {
  name: string;
  exports?: unknown;
  main?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const docsDir = join(dirname(new URL(import.meta.url).pathname), '..');

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** The directory of `name` as the package in `fromDir` resolves it. */
function resolvePackageDir(name: string, fromDir: string): string | undefined {
  try {
    return dirname(createRequire(join(fromDir, 'package.json')).resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/**
 * The @opdbus packages reachable from `roots` through their dependencies (each resolved from the
 * package that depends on it, as Node does), in dependency order: a package before those that
 * depend on it.
 */
function opdbusPackages(
  roots: ReadonlyArray<{ name: string; dir: string }>,
): Array<{ name: string; dir: string }> {
  const seen = new Map<string, string>();
  const order: Array<{ name: string; dir: string }> = [];
  const visit = (name: string, dir: string): void => {
    if (seen.has(name)) return;
    seen.set(name, dir);
    const pkg = readPackage(dir);
    const deps = { ...pkg.peerDependencies, ...pkg.optionalDependencies, ...pkg.dependencies };
    for (const dep of Object.keys(deps).sort()) {
      if (!dep.startsWith('@opdbus/')) continue;
      const depDir = resolvePackageDir(dep, dir);
      if (depDir !== undefined) visit(dep, depDir);
    }
    order.push({ name, dir });
  };
  for (const root of roots) visit(root.name, root.dir);
  return order;
}

/**
 * The error maps (made with `defineErrorCodes` of @opdbus/core) that packages export, by package:
 * the @opdbus packages this docs tool depends on and every plugin package `plugins` were loaded
 * from (a plugin package from outside the repository included), with the @opdbus packages they
 * depend on. No package has to be listed by hand: one that exports an error map is documented.
 */
export async function errorMaps(
  plugins: readonly LoadedPlugin[] = [],
): Promise<Record<string, Record<string, ErrorCodeInfo>>> {
  const roots = Object.keys(readPackage(docsDir).dependencies ?? {})
    .filter((name) => name.startsWith('@opdbus/'))
    .map((name) => ({ name, dir: resolvePackageDir(name, docsDir) }))
    .filter((r): r is { name: string; dir: string } => r.dir !== undefined);
  for (const { package: name, source } of plugins) {
    const dir = source.startsWith('/')
      ? source
      : (resolvePackageDir(name, process.cwd()) ?? resolvePackageDir(name, docsDir));
    if (dir !== undefined) roots.push({ name, dir });
  }
  const out: Record<string, Record<string, ErrorCodeInfo>> = {};
  for (const { name, dir } of opdbusPackages(roots)) {
    if (readPackage(dir).exports === undefined && readPackage(dir).main === undefined) continue;
    let module: Record<string, unknown>;
    try {
      module = (await import(
        pathToFileURL(createRequire(join(dir, 'package.json')).resolve(name)).href
      )) as Record<string, unknown>;
    } catch {
      continue;
    }
    for (const value of Object.values(module))
      if (isErrorCodeMap(value)) out[name] = { ...out[name], ...value };
  }
  return out;
}

/** One row per code, checked for duplicates across packages (core first, then by dependency order). */
export async function allCodes(plugins: readonly LoadedPlugin[] = []): Promise<ErrorCodeRow[]> {
  const seen = new Map<string, string>();
  const rows: ErrorCodeRow[] = [];
  for (const [pkg, map] of Object.entries(await errorMaps(plugins))) {
    for (const [code, info] of Object.entries(map)) {
      const other = seen.get(code);
      if (other !== undefined) throw new Error(`error code ${code} is defined by both ${other} and ${pkg}`);
      seen.set(code, pkg);
      rows.push({
        code,
        pkg,
        info,
        exit: info.exit === undefined ? undefined : exitCodes[exitCategoryOf(info)].code,
      });
    }
  }
  return rows;
}
