import { loadStateDocument, parseStateDocument, type PluginRegistry, type StateDocument } from '@opdbus/core';

/** Read a state document from a file, or stdin when the file is `-`. */
export async function readDocument(file: string, registry: PluginRegistry): Promise<StateDocument> {
  if (file !== '-') return loadStateDocument(file, registry);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return parseStateDocument(Buffer.concat(chunks).toString('utf8'), { source: '<stdin>', registry });
}
