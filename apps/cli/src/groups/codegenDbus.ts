import type { Command } from 'commander';
import type { CodegenDbusOptions } from '../commands/codegenDbus.js';
import type { CommandContext } from '../context.js';

/** Add `opdbus codegen dbus`: typed TypeScript bindings from a live service or introspection XML. */
export function registerCodegenDbus(codegen: Command, context: CommandContext): void {
  codegen
    .command('dbus')
    .description(
      'typed TypeScript proxies + zod argument schemas from D-Bus introspection: of a live service (--dest, on --bus or the system bus) or of XML files (--xml)',
    )
    .option(
      '--dest <name>',
      'the service bus name (introspected live unless --xml is given; the proxies default to it)',
    )
    .option('--xml <file...>', 'introspection XML files instead of a live service')
    .option('--path <path...>', 'only these object paths of the live service (default: walk its whole tree)')
    .option('--interface <name...>', 'only these interfaces (default: all but org.freedesktop.DBus.*)')
    .requiredOption('--out <dir>', 'where to write the modules (one per interface, plus index.ts)')
    .action((options: CodegenDbusOptions) =>
      context.run(async () =>
        (await import('../commands/codegenDbus.js')).codegenDbus(context.globals(), options, context.output),
      )(),
    );
}
