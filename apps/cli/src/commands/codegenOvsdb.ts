import { mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { OpdbusError, writeOutputFile } from '@opdbus/core';
import { DatabaseSchema, generateTypes, typesFileName } from '@opdbus/ovsdb';
import type { GlobalOptions, Output } from '../runtime.js';

/** `opdbus codegen ovsdb SCHEMA --out DIR`: write DIR/<database>.ts. */
export async function codegenOvsdb(
  global: GlobalOptions,
  schemaFile: string,
  options: { out: string },
  output: Output,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(schemaFile, 'utf8');
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `Cannot read the OVSDB schema ${schemaFile}: ${(err as Error).message}; give the path of a .ovsschema file (Debian: /usr/share/openvswitch/vswitch.ovsschema).`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_OVSDB_SCHEMA',
      `${schemaFile} is not JSON: ${(err as Error).message}.`,
      {
        data: { source: schemaFile, path: '(file)' },
        cause: err,
      },
    );
  }
  const schema = DatabaseSchema.parse(json, schemaFile);
  const source = basename(schemaFile);
  // The file name comes from the schema's database name, made an identifier: never a path.
  const file = resolve(join(options.out, typesFileName(schema)));
  await mkdir(options.out, { recursive: true });
  await writeOutputFile(file, generateTypes(schema, { source }), 0o644);
  const summary = {
    ok: true,
    file,
    database: schema.name,
    version: schema.version,
    tables: schema.tables.size,
  };
  if (global.json) output.out(JSON.stringify(summary, null, 2));
  else
    output.out(
      `Wrote ${file}: types for ${schema.tables.size} tables of ${schema.name} ${schema.version} (from ${source}).`,
    );
  return 0;
}
