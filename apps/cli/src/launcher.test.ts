import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import type * as NodeOs from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheSuffix, chunkLoader, codeCacheDir, lazyBuiltin, packageJsonPath } from './launcher.js';

let dist: string;

/** A bundle of two scripts as scripts/bundle.mjs writes them: an entry that requires a chunk. */
function writeBundle(): string {
  // Sources of their own: V8 keeps what it compiled in this process, by source, and would use
  // that before any code cache.
  const unique = `/*${dist}*/`;
  const wrap = (code: string): string =>
    `(function (exports, require, module, __filename, __dirname, __opdbusImport, __opdbusMetaUrl, __opdbusMetaResolve, __opdbusLazy) {${code}\n})`;
  mkdirSync(join(dist, 'chunks'));
  writeFileSync(
    join(dist, 'chunks', 'chunk-AAAA.cjs'),
    wrap(`${unique}function square(n){return n*n}exports.square=square;exports.url=__opdbusMetaUrl;`),
  );
  const entry = join(dist, 'main-BBBB.cjs');
  writeFileSync(
    entry,
    wrap(
      unique +
        'var c=require("./chunks/chunk-AAAA.js"),os=__opdbusLazy("node:os");exports.result=c.square(7);exports.url=c.url;exports.eol=os.EOL;exports.later=()=>__opdbusImport("./chunks/chunk-AAAA.js");',
    ),
  );
  return entry;
}

beforeEach(() => {
  dist = mkdtempSync(join(tmpdir(), 'opdbus-launcher-'));
});
afterEach(() => rmSync(dist, { recursive: true, force: true }));

describe('chunkLoader', () => {
  it('runs scripts, answers require and import() of chunks, and writes and then uses their code cache', async () => {
    const entry = writeBundle();
    const cache = join(dist, 'cache');
    const first = chunkLoader(dist, cache);
    const exports = first.load(entry);
    expect(exports.result).toBe(49);
    expect(exports.url).toBe(`file://${join(dist, 'chunks', 'chunk-AAAA.cjs')}`);
    expect(exports.eol).toBe('\n');
    expect(await (exports.later as () => Promise<{ square: (n: number) => number }>)()).toHaveProperty(
      'square',
    );
    expect(first.loaded().map((r) => r.cached)).toEqual([false, false]);
    expect(first.loaded().every((r) => r.at > 0 && r.ms >= 0)).toBe(true);
    first.writeCaches();
    const files = readdirSync(cache).sort();
    expect(files).toEqual([`chunks_chunk-AAAA.cjs${cacheSuffix()}`, `main-BBBB.cjs${cacheSuffix()}`]);
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(statSync(join(cache, files[0]!)).mode & 0o777).toBe(0o600);

    const second = chunkLoader(dist, cache);
    expect(second.load(entry).result).toBe(49);
    expect(second.loaded().map((r) => r.cached)).toEqual([true, true]);
  });

  it('compiles anew and rewrites a cache that V8 rejects', () => {
    const entry = writeBundle();
    const cache = join(dist, 'cache');
    mkdirSync(cache, { mode: 0o700 });
    const name = `main-BBBB.cjs${cacheSuffix()}`;
    writeFileSync(join(cache, name), Buffer.alloc(64, 7), { mode: 0o600 });
    const second = chunkLoader(dist, cache);
    expect(second.load(entry).result).toBe(49);
    expect(second.loaded().map(({ file, cached }) => ({ file, cached }))).toEqual([
      { file: entry, cached: false },
      { file: join(dist, 'chunks', 'chunk-AAAA.cjs'), cached: false },
    ]);
    second.writeCaches();
    expect(readFileSync(join(cache, name)).length).toBeGreaterThan(64);
  });

  it('does not use a cache that others may write', () => {
    const entry = writeBundle();
    const cache = join(dist, 'cache');
    const first = chunkLoader(dist, cache);
    first.load(entry);
    first.writeCaches();
    chmodSync(cache, 0o777);
    const second = chunkLoader(dist, cache);
    second.load(entry);
    expect(second.loaded().map((r) => r.cached)).toEqual([false, false]);
    chmodSync(cache, 0o700);
    const file = join(cache, readdirSync(cache)[0]!);
    chmodSync(file, 0o666);
    const third = chunkLoader(dist, cache);
    third.load(entry);
    expect(third.loaded().filter((r) => r.cached)).toHaveLength(1);
  });
});

describe('pruned caches', () => {
  it("removes, when it writes caches, those of chunks the bundle no longer has and of another Node's", () => {
    const entry = writeBundle();
    const cache = join(dist, 'cache');
    const suffix = cacheSuffix();
    const first = chunkLoader(dist, cache, { prune: true });
    first.load(entry);
    first.writeCaches();
    const current = readdirSync(cache).sort();
    expect(current).toHaveLength(2);
    writeFileSync(join(cache, `chunks_chunk-GONE.cjs${suffix}`), 'stale');
    writeFileSync(join(cache, 'main-BBBB.cjs.v0.1.0-x64.v8'), 'other node');
    writeFileSync(join(cache, 'notes.txt'), 'not a cache');
    // Nothing to write: nothing is pruned (a start that uses its caches does no more).
    const second = chunkLoader(dist, cache, { prune: true });
    second.load(entry);
    second.writeCaches();
    expect(readdirSync(cache)).toHaveLength(5);
    // A chunk without its cache (a new build): written, and the stale ones go.
    rmSync(join(cache, current[0]!));
    const third = chunkLoader(dist, cache, { prune: true });
    third.load(entry);
    third.writeCaches();
    expect(readdirSync(cache).sort()).toEqual([...current, 'notes.txt'].sort());
  });
});

describe('per-command caches', () => {
  it('keeps a cache per profile: each command uses its own and writes its own', () => {
    const entry = writeBundle();
    const cache = join(dist, 'cache');
    const suffix = cacheSuffix();
    const query = chunkLoader(dist, cache, { profile: 'query' });
    query.load(entry);
    query.writeCaches();
    expect(readdirSync(cache).sort()).toEqual([
      `chunks_chunk-AAAA.cjs@query${suffix}`,
      `main-BBBB.cjs@query${suffix}`,
    ]);
    // Another command does not take the query's caches: it compiles and writes its own.
    const diff = chunkLoader(dist, cache, { profile: 'diff' });
    diff.load(entry);
    expect(diff.loaded().map((r) => r.cached)).toEqual([false, false]);
    diff.writeCaches();
    const again = chunkLoader(dist, cache, { profile: 'query' });
    again.load(entry);
    expect(again.loaded().map((r) => r.cached)).toEqual([true, true]);
    expect(readdirSync(cache)).toHaveLength(4);
  });

  it("prunes every command's caches of chunks the bundle no longer has, and keeps the others'", () => {
    const entry = writeBundle();
    const cache = join(dist, 'cache');
    const suffix = cacheSuffix();
    const diff = chunkLoader(dist, cache, { profile: 'diff', prune: true });
    diff.load(entry);
    diff.writeCaches();
    writeFileSync(join(cache, `chunks_chunk-GONE.cjs@diff${suffix}`), 'stale');
    writeFileSync(join(cache, `main-BBBB.cjs@diff.v0.1.0-x64.v8`), 'other node');
    const query = chunkLoader(dist, cache, { profile: 'query', prune: true });
    query.load(entry);
    query.writeCaches();
    expect(readdirSync(cache).sort()).toEqual(
      [
        `chunks_chunk-AAAA.cjs@diff${suffix}`,
        `chunks_chunk-AAAA.cjs@query${suffix}`,
        `main-BBBB.cjs@diff${suffix}`,
        `main-BBBB.cjs@query${suffix}`,
      ].sort(),
    );
  });

  it('keeps caches per set of Node flags, and prunes only those of another Node', () => {
    const node = `.${process.version}-${process.arch}`;
    expect(cacheSuffix([], undefined)).toBe(`${node}.v8`);
    expect(cacheSuffix([], ' ')).toBe(`${node}.v8`);
    const traced = cacheSuffix(['--trace-gc'], undefined);
    expect(traced).toMatch(new RegExp(`^\\${node}\\+[0-9a-f]{8}\\.v8$`));
    expect(cacheSuffix([], '--max-old-space-size=4096')).not.toBe(traced);
    expect(cacheSuffix(['--trace-gc'], undefined)).toBe(traced);

    const entry = writeBundle();
    const cache = join(dist, 'cache');
    const first = chunkLoader(dist, cache, { profile: 'query', prune: true });
    first.load(entry);
    first.writeCaches();
    const otherFlags = `main-BBBB.cjs@query${node}+0123abcd.v8`;
    const otherNode = `main-BBBB.cjs@query.v0.1.0-${process.arch}+0123abcd.v8`;
    writeFileSync(join(cache, otherFlags), 'compiled under other flags');
    writeFileSync(join(cache, otherNode), 'another Node');
    rmSync(join(cache, `main-BBBB.cjs@query${cacheSuffix()}`));
    const second = chunkLoader(dist, cache, { profile: 'query', prune: true });
    second.load(entry);
    second.writeCaches();
    expect(readdirSync(cache)).toContain(otherFlags);
    expect(readdirSync(cache)).not.toContain(otherNode);
  });

  it('refuses a profile that is not a plain name', () => {
    expect(() => chunkLoader(dist, join(dist, 'cache'), { profile: '../x' })).toThrow(/profile/);
  });
});

describe('packageJsonPath', () => {
  it('finds PKG/package.json in the nearest node_modules folder, by its real path', () => {
    const store = join(dist, 'store', 'y');
    mkdirSync(store, { recursive: true });
    writeFileSync(join(store, 'package.json'), '{"name":"@x/y"}');
    mkdirSync(join(dist, 'node_modules', '@x'), { recursive: true });
    symlinkSync(store, join(dist, 'node_modules', '@x', 'y'));
    mkdirSync(join(dist, 'node_modules', 'plain'), { recursive: true });
    writeFileSync(join(dist, 'node_modules', 'plain', 'package.json'), '{"name":"plain"}');
    const deep = join(dist, 'node_modules', 'plain', 'dist', 'chunks');
    mkdirSync(deep, { recursive: true });
    expect(packageJsonPath(deep, '@x/y/package.json')).toBe(
      join(realpathSync(dist), 'store', 'y', 'package.json'),
    );
    expect(packageJsonPath(deep, 'plain/package.json')).toBe(
      join(realpathSync(dist), 'node_modules', 'plain', 'package.json'),
    );
    // Nearer wins: a copy inside the package's own node_modules.
    mkdirSync(join(dist, 'node_modules', 'plain', 'node_modules', 'inner'), { recursive: true });
    writeFileSync(join(dist, 'node_modules', 'plain', 'node_modules', 'inner', 'package.json'), '{}');
    expect(packageJsonPath(deep, 'inner/package.json')).toBe(
      join(realpathSync(dist), 'node_modules', 'plain', 'node_modules', 'inner', 'package.json'),
    );
    expect(packageJsonPath(deep, 'missing-package-opdbus-test/package.json')).toBeUndefined();
    expect(packageJsonPath(deep, '@x/y')).toBeUndefined();
    expect(packageJsonPath(deep, './package.json')).toBeUndefined();
  });
});

describe('codeCacheDir', () => {
  it('is OPDBUS_CODE_CACHE, off, or the bundle’s own directory', () => {
    expect(codeCacheDir(dist, { OPDBUS_CODE_CACHE: 'off' })).toBeUndefined();
    expect(codeCacheDir(dist, { OPDBUS_CODE_CACHE: '/somewhere' })).toBe('/somewhere');
    expect(codeCacheDir(dist, {})).toBe(join(dist, '.code-cache'));
  });

  it('is a directory per install under XDG_CACHE_HOME when the bundle’s own may not be used', () => {
    const other = join(dist, 'other');
    for (const d of [dist, other]) mkdirSync(join(d, '.code-cache'), { recursive: true, mode: 0o777 });
    for (const d of [dist, other]) chmodSync(join(d, '.code-cache'), 0o777);
    const xdg = { XDG_CACHE_HOME: join(dist, 'xdg') };
    const mine = codeCacheDir(dist, xdg)!;
    expect(mine).toMatch(new RegExp(`^${join(dist, 'xdg', 'opdbus', 'code-cache')}/[0-9a-f]{8}$`));
    expect(codeCacheDir(dist, xdg)).toBe(mine);
    expect(codeCacheDir(other, xdg)).not.toBe(mine);
  });
});

describe('lazyBuiltin', () => {
  it('loads the module at its first use and behaves as its namespace', () => {
    const os = lazyBuiltin('node:os') as typeof NodeOs;
    expect(os.EOL).toBe('\n');
    expect('cpus' in os).toBe(true);
    expect(Object.keys(os)).toContain('hostname');
  });
});
