import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  OpdbusError,
  canonicalJson,
  formatPath,
  loadStateDocument,
  parseStateDocument,
  readStateText,
  type PluginRegistry,
  type StateDocument,
} from '@opdbus/core';
import { parse as parseYaml } from 'yaml';

/** File names a desired-state directory is read from: `*.yaml`, `*.yml`, `*.json`, not hidden. */
const documentName = /^[^.].*\.(ya?ml|json)$/;

/** Most files a desired-state directory may hold. */
export const MAX_DOCUMENTS = 256;

/**
 * Read a desired state as opdbusd (`--desired`) and `opdbus apply`/`diff` do: one document file, or every `*.yaml` / `*.yml` / `*.json` file of a
 * directory (not hidden, in name order) merged into one document (see {@link mergeDocuments}).
 * Every file is validated on its own first, so an error names the file and the path in it.
 *
 * @example
 * ```ts
 * const doc = await loadDesired('/etc/opdbus/desired.d', engine.registry);
 * const { plan } = await engine.plan(doc);
 * ```
 */
export async function loadDesired(path: string, registry: PluginRegistry): Promise<StateDocument> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_READ',
      `${path}: cannot read the desired state (${(err as NodeJS.ErrnoException).code ?? 'EIO'}); give a state document file or a directory of them.`,
      { data: { file: path }, cause: err },
    );
  }
  if (!isDir) return loadStateDocument(path, registry);
  const names = (await readdir(path)).filter((n) => documentName.test(n)).sort();
  if (names.length > MAX_DOCUMENTS) {
    throw new OpdbusError(
      'OPDBUS_ERR_LIMIT_EXCEEDED',
      `${path}: the directory holds ${names.length} documents; op-dbus reads at most ${MAX_DOCUMENTS}. Merge some of them.`,
      { data: { file: path, limit: 'documents', max: MAX_DOCUMENTS, actual: names.length } },
    );
  }
  const docs: StateDocument[] = [];
  for (const name of names) docs.push(await loadStateDocument(join(path, name), registry));
  return mergeDocuments(docs, path, registry);
}

/**
 * The plugin sections a document text names (none when it is not a mapping with a `plugins`
 * mapping: the parser then says what is wrong).
 */
export function documentSections(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    return [];
  }
  const sections = isMap(parsed) ? parsed.plugins : undefined;
  return isMap(sections) ? Object.keys(sections) : [];
}

/**
 * The plugin sections the desired state names (a file, or the documents of a directory), read
 * before it is validated, so that the daemon loads those plugins first. What cannot be read names
 * none: {@link loadDesired} then reports it.
 */
export async function desiredSections(path: string): Promise<string[]> {
  const names = new Set<string>();
  try {
    const files = (await stat(path)).isDirectory()
      ? (await readdir(path))
          .filter((n) => documentName.test(n))
          .sort()
          .slice(0, MAX_DOCUMENTS)
          .map((n) => join(path, n))
      : [path];
    for (const file of files) for (const n of documentSections(await readStateText(file))) names.add(n);
  } catch {
    // Reported by loadDesired, which reads the same files.
  }
  return [...names];
}

/**
 * Merge documents into one, section by section: mappings merge key by key, lists concatenate
 * (each plugin's schema then refuses duplicates, e.g. two links of one name), and a value that two
 * documents set differently is `OPDBUS_ERR_STATE_INVALID` naming both files and the path. The
 * merged document is validated again with the plugins' schemas.
 */
export function mergeDocuments(
  docs: readonly StateDocument[],
  source: string,
  registry: PluginRegistry,
): StateDocument {
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  for (const doc of docs) {
    for (const [name, section] of Object.entries(doc.plugins)) {
      if (section === undefined) continue;
      merged[name] = mergeValue(merged[name], section, ['plugins', name], doc.source, origin);
    }
  }
  return parseStateDocument(JSON.stringify({ version: 1, plugins: merged }), { source, registry });
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeValue(
  base: unknown,
  next: unknown,
  path: (string | number)[],
  file: string,
  origin: Map<string, string>,
): unknown {
  const where = formatPath(path);
  if (base === undefined) {
    origin.set(where, file);
    return next;
  }
  if (isMap(base) && isMap(next)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(next))
      out[key] = mergeValue(base[key], value, [...path, key], file, origin);
    return out;
  }
  if (Array.isArray(base) && Array.isArray(next)) return [...(base as unknown[]), ...(next as unknown[])];
  if (canonicalJson(base) === canonicalJson(next)) return base;
  // The value came with the deepest mapping an earlier document brought in whole.
  let first = 'an earlier document';
  for (let n = path.length; n > 0; n--) {
    const from = origin.get(formatPath(path.slice(0, n)));
    if (from !== undefined) {
      first = from;
      break;
    }
  }
  throw new OpdbusError(
    'OPDBUS_ERR_STATE_INVALID',
    `${file}: ${where} is set differently in ${first}; set it in one document only.`,
    { data: { file, path: where, other: first } },
  );
}
