import {
  OpdbusError,
  limits,
  parseStateDocument,
  readStateText,
  type AnyPlugin,
  type PluginRegistry,
  type StateDocument,
} from '@opdbus/core';
import { stat } from 'node:fs/promises';
import { desiredSections, loadDesired } from '@opdbus/runtime';
import { parse as parseYaml } from 'yaml';
import { packagesProgressBar } from '../progress.js';
import { pluginsFor, stdio, type GlobalOptions } from '../runtime.js';

/** Read a state document from a file, or stdin when the file is `-`. */
export async function readDocument(file: string, registry: PluginRegistry): Promise<StateDocument> {
  return parseStateDocument(await readDocumentText(file), { source: sourceName(file), registry });
}

/** The name a document read from `file` is reported under. */
export function sourceName(file: string): string {
  return file === '-' ? '<stdin>' : file;
}

/**
 * The plugins a document needs: those its sections name (all of them when it cannot be read as
 * a mapping of sections, so that the parser reports what is wrong, or when a plugin it names
 * expands into other plugins' sections).
 */
export async function pluginsForDocument(global: GlobalOptions, text: string): Promise<AnyPlugin[]> {
  let names: string[] | undefined;
  try {
    const parsed: unknown = parseYaml(text);
    const sections = (parsed as { plugins?: unknown } | null)?.plugins;
    if (sections !== null && typeof sections === 'object' && !Array.isArray(sections))
      names = Object.keys(sections);
  } catch {
    names = undefined;
  }
  return pluginsForSections(global, names);
}

/** The plugins that the named sections need (every plugin when `names` is undefined). */
async function pluginsForSections(global: GlobalOptions, names: string[] | undefined): Promise<AnyPlugin[]> {
  // A progress bar for package transactions when stderr is a terminal.
  const builtin = packagesProgressBar();
  const plugins = await pluginsFor(global, names, undefined, stdio, builtin);
  return plugins.some((p) => p.expand !== undefined)
    ? pluginsFor(global, undefined, undefined, stdio, builtin)
    : plugins;
}

/** A document given on the command line, before the plugins that read it are loaded. */
export interface DocumentInput {
  /** The plugins its sections need. */
  plugins: AnyPlugin[];
  /** Parse and validate it with the loaded plugins' schemas. */
  load(registry: PluginRegistry): Promise<StateDocument>;
}

/**
 * A state document from a file, stdin (`-`), or a directory: every `*.yaml`, `*.yml` and `*.json`
 * file in it (not hidden, in name order) merged into one document exactly as opdbusd merges its
 * `--desired` directory, so `opdbus diff DIR` shows what the daemon would enforce.
 */
export async function documentInput(global: GlobalOptions, file: string): Promise<DocumentInput> {
  if (file !== '-' && (await isDirectory(file))) {
    return {
      plugins: await pluginsForSections(global, await desiredSections(file)),
      load: (registry) => loadDesired(file, registry),
    };
  }
  const text = await readDocumentText(file);
  return {
    plugins: await pluginsForDocument(global, text),
    load: (registry) => Promise.resolve(parseStateDocument(text, { source: sourceName(file), registry })),
  };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    // readStateText reports a path that cannot be read, with the file name.
    return false;
  }
}

/** The text of a state document in a file, or on stdin when the file is `-`, bounded in size. */
export async function readDocumentText(file: string): Promise<string> {
  if (file !== '-') return readStateText(file);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin) {
    bytes += (chunk as Buffer).length;
    // Stop reading at the limit: an endless stdin must not fill memory.
    if (bytes > limits.documentBytes) {
      throw new OpdbusError(
        'OPDBUS_ERR_LIMIT_EXCEEDED',
        `<stdin>: the state document has more than ${limits.documentBytes} bytes (${limits.documentBytes / 1024 / 1024} MiB), the most op-dbus reads. Split it into several documents.`,
        { data: { file: '<stdin>', limit: 'documentBytes', max: limits.documentBytes } },
      );
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Run a step that reads the document's resources (plan, apply): a plugin error that names a
 * place in the document (`data.path`) gets the document's file name in front, so every such
 * message says file, path and what to do.
 */
export async function inDocument<T>(doc: StateDocument, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (
      err instanceof OpdbusError &&
      typeof err.data?.path === 'string' &&
      err.data.file === undefined &&
      !err.message.startsWith(doc.source)
    ) {
      throw new OpdbusError(err.code, `${doc.source}: ${err.message}`, {
        data: { ...err.data, file: doc.source },
        cause: err.cause,
      });
    }
    throw err;
  }
}
