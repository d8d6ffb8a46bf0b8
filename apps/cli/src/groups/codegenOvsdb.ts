import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** `opdbus codegen ovsdb SCHEMA --out DIR`: TypeScript types for an OVSDB schema file. */
export function registerCodegenOvsdb(codegen: Command, context: CommandContext): void {
  codegen
    .command('ovsdb')
    .description(
      'generate TypeScript types for an OVSDB schema file (e.g. /usr/share/openvswitch/vswitch.ovsschema)',
    )
    .argument('<schema>', 'the .ovsschema file')
    .requiredOption('--out <dir>', 'directory to write the types to (created if missing)')
    .action((schema: string, options: { out: string }) =>
      context.run(async () =>
        (await import('../commands/codegenOvsdb.js')).codegenOvsdb(
          context.globals(),
          schema,
          options,
          context.output,
        ),
      )(),
    );
}
