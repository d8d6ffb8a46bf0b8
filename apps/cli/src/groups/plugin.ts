import type { CommandContext } from '../context.js';

/** `opdbus plugin …`: the plugin author's kit. */
export function registerPlugin(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const plugin = program
    .command('plugin')
    .description('write and check plugin packages (see docs/plugins.md)');
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(plugin)) return;

  plugin
    .command('new')
    .description(
      'write a working plugin package (a file under --root, its conformance tests, README): npm install && npm test in it',
    )
    .argument('<name>', 'the plugin (and state document section) name, e.g. motd')
    .option('--dir <dir>', 'where to write it (default ./opdbus-plugin-NAME; must be new or empty)')
    .action((name: string, options: { dir?: string }) =>
      run(async () =>
        (await import('../commands/pluginNew.js')).pluginNew(globals(), name, options, output),
      )(),
    );
}
