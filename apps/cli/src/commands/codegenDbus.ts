import { OpdbusError } from '@opdbus/core';
import {
  connectBus,
  describeService,
  describeXmlFiles,
  generateBindings,
  writeBindings,
  type ServiceDescription,
} from '@opdbus/dbus';
import type { GlobalOptions, Output } from '../runtime.js';

/** `opdbus codegen dbus`: introspect → build → deploy. */
export async function codegenDbus(
  global: GlobalOptions,
  options: CodegenDbusOptions,
  output: Output,
): Promise<number> {
  let description: ServiceDescription;
  if (options.xml !== undefined && options.xml.length > 0) {
    description = await describeXmlFiles(
      options.xml,
      options.dest === undefined ? {} : { destination: options.dest },
    );
  } else {
    if (options.dest === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        'opdbus codegen dbus needs --dest NAME (a live service) or --xml FILE.',
      );
    }
    await using bus = await connectBus(global.bus === undefined ? {} : { address: global.bus });
    description = await describeService(
      bus,
      options.dest,
      options.path === undefined ? {} : { paths: options.path },
    );
  }
  const files = generateBindings(
    description,
    options.interface === undefined ? {} : { interfaces: options.interface },
  );
  const written = await writeBindings(files, options.out);
  const interfaces = description.interfaces
    .filter((i) => files.some((f) => f.content.includes(`'${i.name}'`)))
    .map((i) => i.name);
  if (global.json)
    output.out(JSON.stringify({ ok: true, source: description.source, interfaces, files: written }, null, 2));
  else
    output.out(
      `Generated ${interfaces.length} interface(s) from ${description.source}:\n${written.map((f) => `  ${f}`).join('\n')}`,
    );
  return 0;
}

/** Options of `opdbus codegen dbus`. */
export interface CodegenDbusOptions {
  dest?: string;
  xml?: string[];
  out: string;
  path?: string[];
  interface?: string[];
}
