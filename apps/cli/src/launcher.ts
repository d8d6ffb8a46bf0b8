/**
 * The start of the bundled `opdbus` command (dist/bin.js): it runs the bundle's chunks
 * (dist/chunks/*.cjs, written by scripts/bundle.mjs) as CommonJS scripts through `vm.Script`
 * with V8's code cache, so that a command does not compile the JavaScript it runs each time
 * (Node 20 has no module compile cache; compiling was the largest part of a command's start).
 *
 * A chunk's code cache is written when the process exits, for each chunk it ran without one (or
 * whose cache V8 rejected: another Node, other V8 flags), into the cache directory: where
 * `OPDBUS_CODE_CACHE` points (`off` turns caching off), else `dist/.code-cache` when this user
 * may write there, else `$XDG_CACHE_HOME/opdbus/code-cache/INSTALL` (`~/.cache/...`; INSTALL names
 * the bundle's directory). When it writes caches in a directory of its own choosing (not
 * `OPDBUS_CODE_CACHE`'s), it removes those of chunks that are no longer there (an upgrade's) and of
 * another Node, so the directory holds one build's caches. A cache is
 * compiled code: it is used only from a directory and files that this user owns and nobody
 * else may write, and its name carries the chunk's content hash, the command that wrote it, Node's
 * version, the architecture and a hash of Node's flags (V8 itself checks only the length of the
 * source, and refuses a cache made under other flags).
 *
 * @module
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { commandOf, type CommandLine } from './commandLine.js';

/** The exports of a chunk, as its CommonJS form sets them. */
type Exports = Record<string, unknown>;

interface ChunkModule {
  exports: Exports;
}

/**
 * A Node built-in module loaded at its first use rather than when a chunk that names it starts:
 * `crypto`, `child_process` and the like cost milliseconds each to load, and most commands use
 * few of the ones their chunks import. The bundle calls it for each `import { name } from 'node:X'`.
 */
export function lazyBuiltin(spec: string): object {
  let loaded: Record<PropertyKey, unknown> | undefined;
  const get = (): Record<PropertyKey, unknown> =>
    (loaded ??= process.getBuiltinModule(spec) as Record<PropertyKey, unknown>);
  return new Proxy(
    {},
    {
      get: (_, key) => get()[key],
      has: (_, key) => key in get(),
      ownKeys: () => Reflect.ownKeys(get()),
      getOwnPropertyDescriptor: (_, key) => {
        const d = Reflect.getOwnPropertyDescriptor(get(), key);
        return d === undefined ? undefined : { ...d, configurable: true };
      },
    },
  );
}

/** The code-cache directory and whether to use it (see the module's description). */
export function codeCacheDir(distDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chosen = env.OPDBUS_CODE_CACHE;
  if (chosen === 'off' || chosen === '0') return undefined;
  if (chosen !== undefined && chosen !== '') return chosen;
  const own = join(distDir, '.code-cache');
  if (usableDir(own, true)) return own;
  const base = env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'opdbus', 'code-cache', installKey(distDir));
}

/** FNV-1a of a string, as 8 hex digits. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/** A short name for the bundle's directory: one cache directory per install. */
function installKey(distDir: string): string {
  return fnv1a(distDir);
}

/**
 * The end of a cache file's name: Node's version, the architecture and, when Node was given flags
 * (its command line or NODE_OPTIONS), a hash of them. V8 refuses a cache made under other flags,
 * so each set of flags keeps caches of its own: a user who runs with NODE_OPTIONS now and then
 * does not recompile and rewrite every cache each time the flags change.
 */
export function cacheSuffix(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): string {
  const flags = [...execArgv, nodeOptions ?? ''].join(' ').trim();
  return `.${process.version}-${process.arch}${flags === '' ? '' : `+${fnv1a(flags)}`}.v8`;
}

/** Whether a file or directory is this user's and nobody else may write it. */
function trusted(stats: Stats): boolean {
  const uid = process.geteuid?.() ?? 0;
  return stats.uid === uid && (stats.mode & 0o022) === 0;
}

/** Whether `dir` exists (or, with `create`, could be made) as a trusted directory. */
function usableDir(dir: string, create: boolean): boolean {
  try {
    return trusted(statSync(dir));
  } catch {
    if (!create) return false;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      return trusted(statSync(dir));
    } catch {
      return false;
    }
  }
}

/**
 * A cached compilation, read only from a trusted file (in a directory the caller found trusted):
 * one open, fstat and read (a command reads one per script it runs).
 */
function readCache(path: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const stats = fstatSync(fd);
    if (!trusted(stats)) return undefined;
    const data = Buffer.allocUnsafe(stats.size);
    return readSync(fd, data, 0, stats.size, 0) === stats.size ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Write a cache file in whole (a temporary file renamed), or not at all. */
function writeCache(dir: string, file: string, data: Buffer): void {
  try {
    if (!usableDir(dir, true)) return;
    const tmp = join(dir, `.${file}.${process.pid}`);
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, join(dir, file));
  } catch {
    // A cache that cannot be written only costs the next start its compile time.
  }
}

/**
 * `require.resolve('PKG/package.json')` from `dir` the way Node looks in node_modules folders
 * (nearest first, the real path of what it finds), without Node's package-exports resolver, whose
 * first use loads modules of its own at each start; `undefined` for any other specifier or when no
 * node_modules folder holds the package (the caller then asks Node).
 */
export function packageJsonPath(dir: string, spec: string): string | undefined {
  const name = /^((?:@[^/]+\/)?[^/@.][^/]*)\/package\.json$/.exec(spec)?.[1];
  if (name === undefined) return undefined;
  for (let at = dir; ; at = dirname(at)) {
    if (basename(at) !== 'node_modules') {
      const candidate = join(at, 'node_modules', name, 'package.json');
      if (existsSync(candidate)) return realpathSync.native(candidate);
    }
    if (dirname(at) === at) return undefined;
  }
}

/**
 * Remove the cache files of scripts that `distDir` (its `*.cjs` and `chunks/*.cjs`) no longer has,
 * or of another Node or architecture, whatever command and flags wrote them.
 */
function pruneCaches(distDir: string, cacheDir: string): void {
  const node = `.${process.version}-${process.arch}`;
  try {
    if (!usableDir(cacheDir, false)) return;
    const current = new Set<string>();
    for (const dir of [distDir, join(distDir, 'chunks')]) {
      for (const file of readdirSync(dir)) {
        if (file.endsWith('.cjs')) current.add(relative(distDir, join(dir, file)).replaceAll(sep, '_'));
      }
    }
    for (const file of readdirSync(cacheDir)) {
      if (!file.endsWith('.v8')) continue;
      // SCRIPT[@COMMAND].vNODE-ARCH[+FLAGS].v8
      const name = /^(.+\.cjs)(?:@[\w-]+)?(\.v[\d.]+-\w+)(?:\+[0-9a-f]{8})?\.v8$/.exec(file);
      if (name === null || name[2] !== node || !current.has(name[1]!))
        rmSync(join(cacheDir, file), { force: true });
    }
  } catch {
    // A stale cache left behind costs disk space only.
  }
}

/** The file: URL of an absolute path, without Node's URL code for one that needs no escaping. */
function fileUrl(path: string): string {
  return /^\/[\w./-]*$/.test(path) ? `file://${path}` : pathToFileURL(path).href;
}

/**
 * Milliseconds since the process started: `performance.now()` would load perf_hooks (the
 * `performance` global is made at its first use), a millisecond of every start.
 */
function sinceStart(): number {
  return process.uptime() * 1000;
}

/** One script a {@link ChunkLoader} ran. */
export interface ScriptRun {
  file: string;
  cached: boolean;
  at: number;
  ms: number;
}

/** What {@link chunkLoader} gives. */
export interface ChunkLoader {
  /** Run a script (once) by its path and give its exports. */
  load: (file: string) => Exports;
  /**
   * Write the code cache of each script run without one (or with one V8 rejected), with what it
   * compiled so far: call it when the command is done (at exit).
   */
  writeCaches: () => void;
  /**
   * The scripts run so far, in the order they started: whether V8 took each one's cache, when it
   * started (ms since the process started) and how long it took to read, compile and run (with the
   * scripts it required).
   */
  loaded: () => ScriptRun[];
}

/** Options of {@link chunkLoader}. */
export interface ChunkLoaderOptions {
  /**
   * Writing caches also removes the cache files in `cacheDir` of chunks `distDir` no longer has or
   * of another Node (for a directory that holds this bundle's caches alone).
   */
  prune?: boolean;
  /**
   * Whose caches these are: a name (letters, digits, `-`) that the cache files carry, so that each
   * command keeps caches of its own ({@link launch} gives the command the arguments run).
   */
  profile?: string;
}

/**
 * Load the bundle's scripts under `distDir` (made by scripts/bundle.mjs: each the text of a function
 * `(function (exports, require, module, __filename, __dirname, __opdbusImport, __opdbusMetaUrl,
 * __opdbusMetaResolve, __opdbusLazy) {...})` around CommonJS code): returns the
 * function that runs one by its path and gives its exports. A relative `require` or `import()`
 * of `NAME.js` in a script means its `NAME.cjs`.
 */
export function chunkLoader(
  distDir: string,
  cacheDir: string | undefined,
  options: ChunkLoaderOptions = {},
): ChunkLoader {
  if (options.profile !== undefined && !/^[\w-]+$/.test(options.profile))
    throw new Error(`code-cache profile ${JSON.stringify(options.profile)}: letters, digits and - only`);
  const profile = options.profile === undefined ? '' : `@${options.profile}`;
  const loaded = new Map<string, ChunkModule>();
  let usable: boolean | undefined;
  const readable = (): boolean => (usable ??= cacheDir !== undefined && usableDir(cacheDir, false));
  // `relative(distDir, file)` with '_' for '/': the scripts are distDir's own files.
  const scriptName = (file: string): string =>
    (file.startsWith(distDir + sep) ? file.slice(distDir.length + 1) : relative(distDir, file)).replaceAll(
      sep,
      '_',
    );
  const toCache: { name: string; script: Script }[] = [];
  const runs: ScriptRun[] = [];
  const suffix = cacheSuffix();
  // `import.meta.resolve('PKG/package.json')` of the bundled packages, each resolved once.
  const resolved = new Map<string, string>();

  const load = (file: string): Exports => {
    const existing = loaded.get(file);
    if (existing !== undefined) return existing.exports;
    const module: ChunkModule = { exports: {} };
    loaded.set(file, module);
    const at = sinceStart();
    const name = scriptName(file);
    // The directory is checked once: a command that finds it untrusted reads no cache from it.
    const cachedData = readable() ? readCache(join(cacheDir!, `${name}${profile}${suffix}`)) : undefined;
    // The script is a function expression (scripts/bundle.mjs writes it so): V8 compiles the text
    // as read, without a wrapped copy.
    const script = new Script(readFileSync(file, 'utf8'), {
      filename: file,
      ...(cachedData === undefined ? {} : { cachedData }),
    });
    const cached = cachedData !== undefined && script.cachedDataRejected !== true;
    const run: ScriptRun = { file, cached, at, ms: 0 };
    runs.push(run);
    if (cacheDir !== undefined && !cached) toCache.push({ name, script });
    // Node's own require for this script, made at its first use: most chunks need none.
    let nodeRequire: NodeJS.Require | undefined;
    const node = (): NodeJS.Require => (nodeRequire ??= createRequire(file));
    const chunkOf = (spec: string): string | undefined =>
      spec.startsWith('./') && spec.endsWith('.js')
        ? join(dirname(file), spec.slice(0, -'.js'.length) + '.cjs')
        : undefined;
    const require = Object.defineProperties(
      (spec: string): unknown => {
        const chunk = chunkOf(spec);
        return chunk === undefined ? node()(spec) : load(chunk);
      },
      {
        resolve: { get: () => node().resolve },
        cache: { get: () => node().cache },
        main: { get: () => node().main },
      },
    );
    const dynamicImport = (spec: string): Promise<unknown> => {
      const chunk = chunkOf(spec);
      return chunk === undefined ? import(spec) : Promise.resolve().then(() => load(chunk));
    };
    const url = fileUrl(file);
    const resolve = (spec: string): string => {
      let url = resolved.get(spec);
      if (url === undefined) {
        const path = packageJsonPath(dirname(file), spec) ?? node().resolve(spec);
        resolved.set(spec, (url = fileUrl(path)));
      }
      return url;
    };
    (script.runInThisContext() as (...args: unknown[]) => void)(
      module.exports,
      require,
      module,
      file,
      dirname(file),
      dynamicImport,
      url,
      resolve,
      lazyBuiltin,
    );
    run.ms = sinceStart() - at;
    return module.exports;
  };
  const writeCaches = (): void => {
    if (cacheDir === undefined || toCache.length === 0) return;
    for (const c of toCache.splice(0))
      writeCache(cacheDir, `${c.name}${profile}${suffix}`, c.script.createCachedData());
    if (options.prune === true) pruneCaches(distDir, cacheDir);
  };
  return { load, writeCaches, loaded: () => [...runs] };
}

/**
 * Run the bundled command: its entry script `entry` (a file name in `distDir`).
 *
 * Each command keeps code caches of its own (`line`: the program's commands, to tell which one
 * the arguments run). A cache holds what the run that wrote it compiled, and loading it costs in
 * proportion to its size: shared by all commands, the caches would hold what the first command to
 * run each chunk compiled (`apply`'s YAML parser in a `query`'s start), and a query would
 * deserialize code it never runs.
 *
 * With `OPDBUS_DEBUG_CHUNKS=1` it says on stderr, at exit, where the code caches are and whose,
 * which scripts the command ran, whether each came from the code cache, when it started and how
 * long it took (with what it required), and when the command ended: what a command loads is what
 * its start costs.
 */
export function launch(distDir: string, entry: string, line?: CommandLine): void {
  const chosen = (process.env.OPDBUS_CODE_CACHE ?? '') !== '';
  const profile = line === undefined ? undefined : commandOf(process.argv.slice(2), line);
  const cacheDir = codeCacheDir(distDir);
  const loader = chunkLoader(distDir, cacheDir, {
    prune: !chosen,
    ...(profile === undefined ? {} : { profile }),
  });
  process.once('exit', () => {
    if (process.env.OPDBUS_DEBUG_CHUNKS === '1') {
      const runs = loader
        .loaded()
        .map(
          (r) =>
            `${relative(distDir, r.file)}${r.cached ? ' (cached)' : ''} at ${r.at.toFixed(1)} ms for ${r.ms.toFixed(1)} ms`,
        );
      process.stderr.write(
        `opdbus: code caches: ${cacheDir ?? 'off'}${profile === undefined ? '' : `, those of ${profile}`}\n` +
          `opdbus: scripts run: ${runs.join(', ')}; exit at ${sinceStart().toFixed(1)} ms\n`,
      );
    }
    loader.writeCaches();
  });
  loader.load(join(distDir, entry));
}
