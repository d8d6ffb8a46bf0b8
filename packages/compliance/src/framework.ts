import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { OpdbusError } from '@opdbus/core';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** The evidence queries a control can name (see docs/compliance.md for what each one checks). */
export const evidenceQueryIds = [
  'ledger.integrity',
  'ledger.attribution',
  'ledger.change-records',
  'ledger.outcomes',
  'ledger.drift',
  'snapshots.coverage',
  'snapshots.restores',
  'keys.protected',
  'host.sysctl',
  'host.firewall',
  'host.time-sync',
] as const;

/** The id of an evidence query. */
export type EvidenceQueryId = (typeof evidenceQueryIds)[number];

/** The frameworks shipped with the package (one mapping file each, under `frameworks/`). */
export const frameworkIds = ['soc2', 'pci-dss', 'hipaa'] as const;

/** The id of a shipped framework. */
export type FrameworkId = (typeof frameworkIds)[number];

const evidenceRefSchema = z.strictObject({
  query: z.enum(evidenceQueryIds),
  /** Why this evidence supports the control, for the auditor. */
  why: z.string().min(1),
  params: z.record(z.string(), z.unknown()).optional(),
});

const controlSchema = z
  .strictObject({
    id: z.string().min(1).max(64),
    title: z.string().min(1),
    evidence: z.array(evidenceRefSchema).default([]),
    /** What op-dbus cannot evidence for this control and an auditor must check by other means. */
    manual: z.string().min(1).optional(),
  })
  .refine((c) => c.evidence.length > 0 || c.manual !== undefined, {
    message: 'a control needs evidence queries, or a `manual` note saying what is checked by hand',
  });

/** The schema of a framework mapping file. */
export const frameworkSchema = z.strictObject({
  framework: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string().min(1),
  /** The edition of the standard the mapping follows. */
  standard: z.string().min(1),
  /** The version of this mapping (changes when a control's evidence or pass rule changes). */
  version: z.string().regex(/^\d+\.\d+(\.\d+)?$/),
  notes: z.string().optional(),
  controls: z.array(controlSchema).min(1),
});

/** A framework mapping: controls, each with the evidence queries that support it. */
export type Framework = z.infer<typeof frameworkSchema>;
/** One control of a framework mapping. */
export type ControlMapping = Framework['controls'][number];
/** One evidence reference of a control. */
export type EvidenceRef = ControlMapping['evidence'][number];

/** The path of a shipped mapping file (`frameworks/ID.yaml` in the package). */
export function frameworkFile(id: FrameworkId): string {
  return fileURLToPath(new URL(`../frameworks/${id}.yaml`, import.meta.url));
}

function frameworkError(message: string, data: Record<string, unknown>, cause?: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_COMPLIANCE_FRAMEWORK', message, {
    data,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Load a framework mapping: a shipped one by id (`soc2`, `pci-dss`, `hipaa`) or a mapping file of
 * your own by path (YAML or JSON, same schema). Throws `OPDBUS_ERR_COMPLIANCE_FRAMEWORK` naming the
 * file and the path of what is wrong.
 */
export async function loadFramework(idOrFile: string): Promise<Framework> {
  const shipped = (frameworkIds as readonly string[]).includes(idOrFile);
  if (!shipped && !/[/.]/.test(idOrFile))
    throw frameworkError(
      `Unknown framework "${idOrFile}": use one of ${frameworkIds.join(', ')}, or the path of a mapping file.`,
      { framework: idOrFile },
    );
  const file = shipped ? frameworkFile(idOrFile as FrameworkId) : idOrFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw frameworkError(
      `Cannot read the framework mapping ${file}: ${(err as Error).message}.`,
      { file },
      err,
    );
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw frameworkError(
      `The framework mapping ${file} is not YAML: ${(err as Error).message}`,
      { file },
      err,
    );
  }
  const parsed = frameworkSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    throw frameworkError(
      `The framework mapping ${file} is not valid at ${path === '' ? 'the top level' : path}: ${issue.message}. See docs/compliance.md for the format.`,
      { file, path },
    );
  }
  const seen = new Set<string>();
  for (const control of parsed.data.controls) {
    if (seen.has(control.id))
      throw frameworkError(`The framework mapping ${file} lists control ${control.id} twice.`, {
        file,
        control: control.id,
      });
    seen.add(control.id);
  }
  return parsed.data;
}
