import { readFile } from 'node:fs/promises';
import { OpdbusError, formatPath, type DocumentIssue } from '@opdbus/core';
import { numaSectionSchema, readTopology, resolvePlacements } from '@opdbus/numa';
import { parse } from 'yaml';
import type { Output } from '../runtime.js';

/** Options of {@link place}. */
export interface PlaceOptions {
  fsroot: string;
  json: boolean;
}

async function readText(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new OpdbusError('OPDBUS_ERR_STATE_READ', `Cannot read ${file}: ${(err as Error).message}.`, {
      data: { file },
      cause: err,
    });
  }
}

/**
 * `opdbus numa place FILE`: resolve a `numa.placements` section (of a state document, or on its
 * own) against the topology, and print each unit's CPUAffinity / NUMAPolicy / NUMAMask and why.
 */
export async function place(file: string, options: PlaceOptions, output: Output): Promise<number> {
  const source = file === '-' ? '<stdin>' : file;
  let value: unknown;
  try {
    value = parse(await readText(file));
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_PARSE',
      `${source} is not valid YAML or JSON: ${(err as Error).message}`,
      {
        data: { file: source },
        cause: err,
      },
    );
  }
  // A whole state document (plugins.numa), or the section itself.
  const isDocument = typeof value === 'object' && value !== null && 'plugins' in value;
  const prefix = isDocument ? ['plugins', 'numa'] : [];
  const section: unknown = isDocument ? (value as { plugins?: { numa?: unknown } }).plugins?.numa : value;
  const parsed = numaSectionSchema.safeParse(section);
  if (!parsed.success) {
    const issues: DocumentIssue[] = parsed.error.issues.map((issue) => ({
      path: formatPath([...prefix, ...issue.path]),
      message: issue.message,
    }));
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_INVALID',
      `${source} has no valid numa section:\n${issues.map((i) => `  ${source}: ${i.path}: ${i.message}`).join('\n')}`,
      { data: { file: source, issues } },
    );
  }
  // Units are placed by systemd, not confined to this command's own cpuset: the whole machine.
  const topology = await readTopology({ root: options.fsroot, wholeSystem: true });
  const result = resolvePlacements(parsed.data, topology, { path: formatPath([...prefix, 'placements']) });
  if (options.json) {
    output.out(JSON.stringify({ ok: true, root: topology.root, ...result }, null, 2));
    return 0;
  }
  const lines: string[] = [];
  for (const p of result.placements) {
    const properties = Object.entries(p.properties)
      .map(([k, v]) => `${k}=${v}`)
      .join('  ');
    lines.push(p.unit, `  ${properties}`, `  ${p.reason}`);
  }
  output.out(lines.length === 0 ? 'No placements.' : lines.join('\n'));
  return 0;
}
