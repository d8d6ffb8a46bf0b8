import { readFile } from 'node:fs/promises';
import {
  LineCounter,
  isMap,
  isPair,
  isScalar,
  parseDocument,
  stringify,
  type Document,
  type Node as YamlNode,
} from 'yaml';
import type { z } from 'zod';
import { OpdbusError } from './errors.js';
import type { PluginRegistry } from './registry.js';

/** A validated state document. */
export interface StateDocument {
  version: 1;
  /**
   * Section per plugin, parsed by the plugin's schema (defaults applied), in the order the
   * plugins were registered (which is also the tie-break order of a plan).
   */
  plugins: Record<string, unknown>;
  /** Where it came from, for messages. */
  source: string;
}

/** One problem found in a state document. */
export interface DocumentIssue {
  /** Path inside the document, e.g. `plugins.sysctl["net.ipv4.ip_forward"]`. */
  path: string;
  /** 1-based line and column in the source, when known. */
  line?: number;
  column?: number;
  message: string;
}

/** Format a path the way messages show it: `plugins.network.links[0].name`, `a["x.y"]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$-]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? '(document root)' : out;
}

/** Read and validate a state document file (YAML or JSON). */
export async function loadStateDocument(file: string, registry: PluginRegistry): Promise<StateDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_READ',
      `${file}: cannot read the state document (${code}); check the path and permissions.`,
      {
        data: { file, errno: code },
        cause: err,
      },
    );
  }
  return parseStateDocument(text, { source: file, registry });
}

/** Options of {@link parseStateDocument}. */
export interface ParseOptions {
  /** File name (or "<stdin>") used in messages. */
  source: string;
  registry: PluginRegistry;
}

/**
 * Parse and validate a state document. YAML and JSON are both accepted (JSON is YAML). Unknown
 * plugins and unknown fields are errors; every error names the source, the line, the path inside
 * the document and what was expected. All problems are reported at once.
 */
export function parseStateDocument(text: string, options: ParseOptions): StateDocument {
  const { source, registry } = options;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        path: '(syntax)',
        line: pos.line,
        column: pos.col,
        message: e.message.split('\n')[0] ?? e.message,
      };
    });
    throw documentError('OPDBUS_ERR_STATE_PARSE', source, issues, 'is not valid YAML or JSON');
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  const locate = (path: ReadonlyArray<PropertyKey>, key?: string): { line?: number; column?: number } =>
    locateNode(doc, lineCounter, path, key);

  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw documentError('OPDBUS_ERR_STATE_INVALID', source, [
      { path: '(document root)', message: 'expected a mapping with `version: 1` and `plugins:`' },
    ]);
  }
  const root = value as Record<string, unknown>;
  if (root.version !== 1) {
    throw documentError('OPDBUS_ERR_STATE_VERSION', source, [
      {
        path: 'version',
        ...locate(['version']),
        message:
          root.version === undefined
            ? 'missing; add `version: 1` at the top of the document'
            : `expected 1, got ${JSON.stringify(root.version)}; this op-dbus reads version 1 documents`,
      },
    ]);
  }

  const issues: DocumentIssue[] = [];
  const plugins = root.plugins;
  if (plugins !== undefined && plugins !== null && typeof plugins === 'object' && !Array.isArray(plugins)) {
    const unknown = Object.keys(plugins).filter((name) => registry.get(name) === undefined);
    if (unknown.length > 0) {
      throw documentError(
        'OPDBUS_ERR_UNKNOWN_PLUGIN',
        source,
        unknown.map((name) => ({
          path: formatPath(['plugins', name]),
          ...locate(['plugins'], name),
          message: `unknown plugin "${name}"; registered plugins: ${registry.names().join(', ') || '(none)'}. Correct the name, register the plugin, or remove the section`,
        })),
      );
    }
  }

  const result = registry.documentSchema().safeParse(root);
  if (!result.success) {
    for (const issue of result.error.issues) issues.push(...describeIssue(issue, locate));
    throw documentError('OPDBUS_ERR_STATE_INVALID', source, issues);
  }
  return { version: 1, plugins: result.data.plugins, source };
}

function describeIssue(
  issue: z.core.$ZodIssue,
  locate: (path: ReadonlyArray<PropertyKey>, key?: string) => { line?: number; column?: number },
): DocumentIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      ...locate(issue.path, key),
      message: `unknown field "${key}"; remove it or check its spelling (\`opdbus schema\` lists the fields)`,
    }));
  }
  if (issue.code === 'invalid_key') {
    // zod reports "Invalid key in record"; say which key and what its schema expects.
    const key = issue.path.at(-1);
    const expected = issue.issues.map((inner) => inner.message).join('; ');
    return [
      {
        path: formatPath(issue.path),
        ...locate(issue.path.slice(0, -1), String(key)),
        message: `invalid key ${JSON.stringify(String(key))}: expected ${expected || 'a valid key'}`,
      },
    ];
  }
  return [{ path: formatPath(issue.path), ...locate(issue.path), message: issue.message }];
}

function locateNode(
  doc: Document,
  lineCounter: LineCounter,
  path: ReadonlyArray<PropertyKey>,
  key?: string,
): { line?: number; column?: number } {
  // Walk down as far as the path exists; report the deepest node found (the key node when asked).
  let node: unknown = doc.contents;
  let found: YamlNode | undefined = doc.contents ?? undefined;
  const keys = key === undefined ? path : [...path, key];
  for (const [i, segment] of keys.entries()) {
    const wantKey = key !== undefined && i === keys.length - 1;
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment),
      );
      if (pair === undefined) break;
      if (wantKey && isScalar(pair.key)) {
        found = pair.key;
        break;
      }
      node = pair.value;
      if (node !== null && typeof node === 'object' && 'range' in node) found = node as YamlNode;
    } else if (node !== null && typeof node === 'object' && 'items' in node && typeof segment === 'number') {
      node = (node as { items: unknown[] }).items[segment];
      if (node !== null && typeof node === 'object' && 'range' in node) found = node as YamlNode;
    } else {
      break;
    }
  }
  const offset = found?.range?.[0];
  if (offset === undefined) return {};
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, column: pos.col };
}

function documentError(
  code:
    | 'OPDBUS_ERR_STATE_PARSE'
    | 'OPDBUS_ERR_STATE_INVALID'
    | 'OPDBUS_ERR_STATE_VERSION'
    | 'OPDBUS_ERR_UNKNOWN_PLUGIN',
  source: string,
  issues: DocumentIssue[],
  what = 'is not a valid state document',
): OpdbusError {
  const lines = issues.map(
    (i) => `  ${source}${i.line === undefined ? '' : `:${i.line}:${i.column ?? 1}`}: ${i.path}: ${i.message}`,
  );
  return new OpdbusError(code, `${source} ${what}:\n${lines.join('\n')}`, { data: { file: source, issues } });
}

/** Serialise plugin sections as a state document in YAML (sections in the given order). */
export function stringifyStateDocument(plugins: Record<string, unknown>): string {
  return stringify({ version: 1, plugins }, { lineWidth: 0, aliasDuplicateObjects: false });
}
