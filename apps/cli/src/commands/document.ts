import {
  OpdbusError,
  limits,
  loadStateDocument,
  parseStateDocument,
  type PluginRegistry,
  type StateDocument,
} from '@opdbus/core';

/** Read a state document from a file, or stdin when the file is `-`. */
export async function readDocument(file: string, registry: PluginRegistry): Promise<StateDocument> {
  if (file !== '-') return loadStateDocument(file, registry);
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
  return parseStateDocument(Buffer.concat(chunks).toString('utf8'), { source: '<stdin>', registry });
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
