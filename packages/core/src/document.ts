import { open } from 'node:fs/promises';
import { Document, LineCounter, isMap, isPair, isScalar, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { OpdbusError } from './errors.js';
import { limits, quoteInput, quoteValue } from './limits.js';
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
    else if (typeof key === 'string' && key.length <= limits.messageQuote && /^[A-Za-z_$][\w$-]*$/.test(key))
      out += out === '' ? key : `.${key}`;
    else out += `[${quoteInput(String(key))}]`;
  }
  return out === '' ? '(document root)' : out;
}

/**
 * Read and validate a state document file (YAML or JSON). A file larger than
 * {@link limits}.documentBytes is refused before it is read.
 */
export async function loadStateDocument(file: string, registry: PluginRegistry): Promise<StateDocument> {
  return parseStateDocument(await readStateText(file), { source: file, registry });
}

/**
 * Read a state document's text from `file` (a file, a pipe such as `<(…)`, a /proc file), bounded
 * by `limits.documentBytes`, with errors that name the file (`OPDBUS_ERR_STATE_READ`,
 * `OPDBUS_ERR_LIMIT_EXCEEDED`). {@link loadStateDocument} is this and {@link parseStateDocument}.
 */
export async function readStateText(file: string): Promise<string> {
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      if (size > limits.documentBytes) throw tooLarge(file, size);
      // Read to the end, at most one byte more than the limit: a file that grows while it is
      // read, a pipe (`<(…)`) or a /proc file (whose size is 0) is read whole and bounded too.
      let buffer = Buffer.alloc(Math.min(size, limits.documentBytes) + 1);
      let length = 0;
      for (;;) {
        if (length === buffer.length) {
          if (length > limits.documentBytes) throw tooLarge(file, length);
          const grown = Buffer.alloc(Math.min(Math.max(buffer.length * 2, 65_536), limits.documentBytes + 1));
          buffer.copy(grown, 0, 0, length);
          buffer = grown;
        }
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      text = buffer.subarray(0, length).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
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
  return text;
}

function tooLarge(source: string, bytes: number): OpdbusError {
  return new OpdbusError(
    'OPDBUS_ERR_LIMIT_EXCEEDED',
    `${source}: the state document has ${bytes} bytes; op-dbus reads at most ${limits.documentBytes} (${limits.documentBytes / 1024 / 1024} MiB). Split it into several documents.`,
    { data: { file: source, limit: 'documentBytes', max: limits.documentBytes, actual: bytes } },
  );
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
  checkSize(text, source);
  const { doc, lineCounter, value } = readYaml(text, source);
  checkShape(value, source, (path, key) => locateNode(doc, lineCounter, path, key));
  const locate = (path: ReadonlyArray<PropertyKey>, key?: string): { line?: number; column?: number } =>
    locateNode(doc, lineCounter, path, key);
  return validateDocument(value, source, registry, locate);
}

/** Refuse a document over the size, item or flow-nesting limits before parsing it. */
function checkSize(text: string, source: string): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.documentBytes) throw tooLarge(source, bytes);
  const items = countItems(text);
  if (items > limits.documentItems) {
    throw new OpdbusError(
      'OPDBUS_ERR_LIMIT_EXCEEDED',
      `${source}: the state document holds up to ${items} items (lines and list/map entries); op-dbus reads at most ${limits.documentItems}. Split it into several documents.`,
      { data: { file: source, limit: 'documentItems', max: limits.documentItems, actual: items } },
    );
  }
  const flowDepth = flowNesting(text);
  if (flowDepth.depth > limits.documentDepth) throw tooDeep(source, flowDepth.line);
}

/** Parse YAML (or JSON) into a value, keeping the document and its line counter to locate paths. */
function readYaml(text: string, source: string): { doc: Document; lineCounter: LineCounter; value: unknown } {
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  } catch (err) {
    if (err instanceof RangeError) throw tooDeep(source);
    throw err;
  }
  if (doc.errors.length > 0) {
    const issues = doc.errors.slice(0, 20).map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        path: '(syntax)',
        line: pos.line,
        column: pos.col,
        message: clipLine(e.message.split('\n')[0] ?? e.message),
      };
    });
    throw documentError('OPDBUS_ERR_STATE_PARSE', source, issues, 'is not valid YAML or JSON');
  }
  try {
    return { doc, lineCounter, value: doc.toJS({ maxAliasCount: limits.documentAliases }) };
  } catch (err) {
    if (err instanceof RangeError) throw tooDeep(source);
    if (err instanceof ReferenceError && /alias/i.test(err.message)) {
      throw documentError(
        'OPDBUS_ERR_STATE_PARSE',
        source,
        [
          {
            path: '(syntax)',
            message: `its aliases expand to too many nodes (more than ${limits.documentAliases} alias expansions, as a "billion laughs" alias bomb does); write the values out or use fewer aliases`,
          },
        ],
        'is not a valid state document',
      );
    }
    throw err;
  }
}

/** Check a parsed document's root, version, plugin names and sections against the registry. */
function validateDocument(
  value: unknown,
  source: string,
  registry: PluginRegistry,
  locate: (path: ReadonlyArray<PropertyKey>, key?: string) => { line?: number; column?: number },
): StateDocument {
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
            : `expected 1, got ${quoteValue(root.version)}; this op-dbus reads version 1 documents`,
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
          message: `unknown plugin ${quoteInput(name)}; registered plugins: ${registry.names().join(', ') || '(none)'}. Correct the name, register the plugin, or remove the section`,
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
      message: `unknown field ${quoteInput(key)}; remove it or check its spelling (\`opdbus schema\` lists the fields)`,
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
        message: `invalid key ${quoteInput(String(key))}: expected ${expected || 'a valid key'}`,
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

/** An upper bound of the collection items a text can hold: every item needs a line or a flow separator. */
function countItems(text: string): number {
  let n = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x2c || c === 0x5b || c === 0x7b) n++;
  }
  return n;
}

/**
 * The deepest nesting of flow collections (`[`, `{`) outside quoted strings and comments, found
 * without parsing: a 100 000-deep `[[[…` is refused before the parser recurses into it. Block
 * nesting is checked after parsing (it costs the text an indentation per level).
 */
function flowNesting(text: string): { depth: number; line: number } {
  let depth = 0;
  let max = 0;
  let line = 1;
  let maxLine = 1;
  let quote = 0;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (quote !== 0) {
      if (c === 0x5c && quote === 0x22) i++;
      else if (c === quote) quote = 0;
      continue;
    }
    if (c === 0x22 || (c === 0x27 && depth > 0)) quote = c;
    else if (c === 0x23 && (i === 0 || text.charCodeAt(i - 1) <= 0x20)) comment = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        maxLine = line;
        if (max > limits.documentDepth) break;
      }
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return { depth: max, line: maxLine };
}

function tooDeep(source: string, line?: number): OpdbusError {
  return documentError(
    'OPDBUS_ERR_STATE_PARSE',
    source,
    [
      {
        path: '(syntax)',
        ...(line === undefined ? {} : { line }),
        message: `too deep: mappings and lists nest more than ${limits.documentDepth} levels, which no state document needs`,
      },
    ],
    'is not a valid state document',
  );
}

function clipLine(text: string): string {
  return text.length <= 400 ? text : `${text.slice(0, 400)}…`;
}

/**
 * Walk the parsed value without recursion: nesting deeper than the limit is a parse error of the
 * file ("too deep"); a key or a string value over its limit is refused, naming its path.
 */
function checkShape(
  value: unknown,
  source: string,
  locate: (path: ReadonlyArray<PropertyKey>, key?: string) => { line?: number; column?: number },
): void {
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: node, path } = stack.pop()!;
    if (typeof node === 'string') {
      const bytes = Buffer.byteLength(node, 'utf8');
      if (bytes > limits.valueBytes) {
        throw limitIssue(
          source,
          'valueBytes',
          bytes,
          path,
          locate(path),
          `a value of ${bytes} bytes; at most ${limits.valueBytes} are accepted`,
        );
      }
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (path.length >= limits.documentDepth) {
      const where = locate(path);
      throw documentError(
        'OPDBUS_ERR_STATE_PARSE',
        source,
        [
          {
            path: formatPath(path.slice(0, 8)) + (path.length > 8 ? '…' : ''),
            ...where,
            message: `too deep: mappings and lists nest more than ${limits.documentDepth} levels, which no state document needs`,
          },
        ],
        'is not a valid state document',
      );
    }
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push({ value: node[i], path: [...path, i] });
      continue;
    }
    const entries = Object.entries(node as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, member] = entries[i]!;
      const bytes = Buffer.byteLength(key, 'utf8');
      if (bytes > limits.keyBytes) {
        throw limitIssue(
          source,
          'keyBytes',
          bytes,
          [...path, key],
          locate(path, key),
          `a key of ${bytes} bytes; at most ${limits.keyBytes} are accepted`,
        );
      }
      stack.push({ value: member, path: [...path, key] });
    }
  }
}

function limitIssue(
  source: string,
  limit: 'valueBytes' | 'keyBytes',
  actual: number,
  path: ReadonlyArray<PropertyKey>,
  where: { line?: number; column?: number },
  message: string,
): OpdbusError {
  const at = formatPath(path);
  const position = where.line === undefined ? '' : `:${where.line}:${where.column ?? 1}`;
  return new OpdbusError('OPDBUS_ERR_LIMIT_EXCEEDED', `${source}${position}: ${at}: ${message}.`, {
    data: { file: source, path: at, limit, max: limits[limit], actual },
  });
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
  // A document with thousands of problems gets the first ones: enough to fix, never a flood.
  const shown = 20;
  const lines = issues
    .slice(0, shown)
    .map(
      (i) =>
        `  ${source}${i.line === undefined ? '' : `:${i.line}:${i.column ?? 1}`}: ${i.path}: ${i.message}`,
    );
  if (issues.length > shown) lines.push(`  … and ${issues.length - shown} more problems`);
  return new OpdbusError(code, `${source} ${what}:\n${lines.join('\n')}`, {
    data: {
      file: source,
      issues: issues.slice(0, 100),
      ...(issues.length > 100 ? { more: issues.length - 100 } : {}),
    },
  });
}

/** Serialise plugin sections as a state document in YAML (sections in the given order). */
export function stringifyStateDocument(plugins: Record<string, unknown>): string {
  // What yaml's `stringify(value, options)` does, through its Document alone: a command that only
  // prints (`opdbus query`) then needs none of yaml's parser (the CLI bundle loads it on demand).
  const options = { lineWidth: 0, aliasDuplicateObjects: false };
  return new Document({ version: 1, plugins }, options).toString(options);
}
