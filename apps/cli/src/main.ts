import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { commandIndex as commandIndexIn, type CommandLine } from './commandLine.js';
import { exitCodes } from './exitCodes.js';
import { commandGroups, type CommandContext } from './groups.js';
import { defaultStateDir, stdio, type GlobalOptions, type Output } from './io.js';

/**
 * Report an error with its exit code. @opdbus/core is loaded only here and in the commands, so
 * `opdbus --version` and `--help` start without it.
 */
async function report(err: unknown, json: boolean | undefined, output: Output): Promise<number> {
  return (await import('./report.js')).reportError(err, json, output);
}

/** The CLI's version: its package.json's (from src/, dist/ and the bundle alike, one directory up). */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * Build the `opdbus` program. Command modules are imported lazily, so `opdbus --help` starts
 * without loading plugins. Given the arguments it will parse (`argv`), it builds the subcommands
 * of the command group they run only (the other groups are listed by name and options): the
 * whole tree is milliseconds of every start.
 */
export function buildProgram(
  output: Output = stdio,
  setExit: (code: number) => void = (code) => (process.exitCode = code),
  argv?: readonly string[],
): Command {
  const program = new Command('opdbus');
  program
    .description(
      'Declarative state for Linux hosts over D-Bus, OVSDB and netlink: query, diff, apply as verified, reversible transactions.',
    )
    .version(VERSION, '-V, --version')
    .option('--netns <name>', 'act inside this network namespace (a name under /run/netns, a path, or pid:N)')
    .option('--state-dir <dir>', 'state directory: journals, lock, watchdog logs', defaultStateDir)
    .option('--bus <address>', 'D-Bus address (e.g. unix:path=/run/dbus/system_bus_socket)')
    .option('--ovsdb <address>', 'OVSDB address (e.g. unix:/run/openvswitch/db.sock)')
    .option(
      '--root <dir>',
      "the target's filesystem root, for files plugins write (e.g. a container's root with --bus)",
    )
    .option(
      '--plugin <spec>',
      'load a plugin package: npm name or directory (repeatable; also OPDBUS_PLUGINS, comma-separated)',
      (spec: string, previous: string[] | undefined) => [...(previous ?? []), spec],
    )
    .option('--config <file>', 'configuration file (default /etc/opdbus/config.yaml when it exists)')
    .option('--json', 'machine-readable output on stdout')
    .addOption(
      new Option('--log-level <level>', 'log level on stderr')
        .choices(['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'])
        .default('warn'),
    )
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => output.out(s), writeErr: (s) => output.err(s) })
    .exitOverride();

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const run = (fn: () => Promise<number> | number) => async (): Promise<void> => {
    try {
      setExit(await fn());
    } catch (err) {
      setExit(await report(err, globals().json, output));
    }
  };
  // With the arguments known, only the command group they run is built in full.
  // (The global options are all defined by now: where the command is is known once.)
  const given = argv === undefined ? undefined : (argv[commandIndex(program, argv)] ?? '');
  const builds = (group: Command): boolean =>
    given === undefined || given === 'help' || given === group.name() || group.aliases().includes(given);
  const context: CommandContext = { program, output, globals, run, builds };

  program
    .command('query')
    .description('print the observed state as a state document (YAML, or JSON with --json)')
    .option('-p, --plugin <name...>', 'only these plugins')
    .option('--show-secrets', 'do not redact secrets')
    .option(
      '--all',
      'also what a document cannot set: read-only and volatile values (sysctl counters, random ids)',
    )
    .option(
      '--dbus-service <name...>',
      'include these D-Bus services in the dbus section (every property of every object), e.g. org.freedesktop.hostname1',
    )
    .action((options: { plugin?: string[]; showSecrets?: boolean; all?: boolean; dbusService?: string[] }) =>
      run(async () => (await import('./commands/query.js')).query(globals(), options, output))(),
    );

  program
    .command('diff')
    .description('show the plan that takes the host to FILE; exit 2 when changes are pending')
    .argument(
      '<file>',
      'state document (YAML or JSON; - for stdin; a directory: its documents merged as opdbusd merges them)',
    )
    .action((file: string) =>
      run(async () => (await import('./commands/diff.js')).diff(globals(), file, output))(),
    );

  program
    .command('apply')
    .description('apply FILE as one transaction: checkpoint, apply, verify, roll back on failure')
    .argument(
      '<file>',
      'state document (YAML or JSON; - for stdin; a directory: its documents merged as opdbusd merges them)',
    )
    .option('--dry-run', 'only show the plan (exit 2 when changes are pending)')
    .option(
      '--confirm-timeout <seconds>',
      'commit-confirmed: roll back unless `opdbus confirm` arrives in time',
    )
    .option('--force', 'apply changes flagged risky without commit-confirmed')
    .action((file: string, options: { dryRun?: boolean; confirmTimeout?: string; force?: boolean }) =>
      run(async () => (await import('./commands/apply.js')).apply(globals(), file, options, output))(),
    );

  program
    .command('confirm')
    .description('confirm a pending commit-confirmed transaction (default: the latest)')
    .argument('[txid]', 'transaction id')
    .action((txId: string | undefined) =>
      run(async () => (await import('./commands/transactions.js')).confirm(globals(), txId, output))(),
    );

  program
    .command('rollback')
    .description('restore the checkpoint of a transaction (default: the latest committed or pending)')
    .argument('[txid]', 'transaction id')
    .option('--force', 'roll back even if later transactions changed the same resources')
    .action((txId: string | undefined, options: { force?: boolean }) =>
      run(async () =>
        (await import('./commands/transactions.js')).rollback(globals(), txId, options, output),
      )(),
    );

  program
    .command('transactions')
    .description('list the transactions in the state directory')
    .action(() =>
      run(async () => (await import('./commands/transactions.js')).transactions(globals(), output))(),
    );

  program
    .command('schema')
    .description('print the JSON Schema of the state document (all registered plugins)')
    .action(() => run(async () => (await import('./commands/schema.js')).schema(globals(), output))());

  program
    .command('demo')
    .description('show op-dbus at work in a disposable sandbox: query, diff, apply, verify, drift, rollback')
    .option('--keep', 'keep the sandbox (print how to remove it)')
    .action((options: { keep?: boolean }) =>
      run(async () => (await import('./commands/demo.js')).demo(globals(), options, output))(),
    );

  for (const register of commandGroups) register(context);

  program
    .command('__watchdog', { hidden: true })
    .argument('<txid>')
    .action((txId: string) =>
      run(async () => (await import('./commands/watchdog.js')).watchdog(globals(), txId))(),
    );

  return program;
}

/** Where the command is in `argv`: after the global options (and their values) before it. */
function commandIndex(program: Command, argv: readonly string[]): number {
  return commandIndexIn(new Set(valuedOptions(program)), argv);
}

/** The program's global options, long and short, that take a value. */
export function valuedOptions(program: Command): string[] {
  return program.options
    .filter((o) => o.required || o.optional)
    .flatMap((o) => [o.long, o.short])
    .filter((flag): flag is string => flag !== undefined);
}

/**
 * What the launcher needs to know of the program's command line (scripts/bundle.mjs builds it into
 * the bundle): its commands with their aliases, and the global options that take a value.
 */
export function commandLineOf(program: Command): CommandLine {
  const commands: Record<string, string> = {};
  for (const c of program.commands) for (const name of [c.name(), ...c.aliases()]) commands[name] = c.name();
  return { commands, valued: valuedOptions(program) };
}

/**
 * Global options may come after the command (`opdbus query --json`), but a command's own option
 * with a global one's name belongs to the command: `opdbus --plugin DIR query --plugin motd` loads
 * DIR and queries the `motd` section. Such options after the command are given by their short flag.
 */
function commandOwnOptions(program: Command, argv: readonly string[]): string[] {
  const i = commandIndex(program, argv);
  const command = program.commands.find((c) => c.name() === argv[i] || c.aliases().includes(argv[i] ?? ''));
  if (command === undefined) return [...argv];
  const own = new Map<string, string>();
  for (const option of command.options) {
    if (
      option.long !== undefined &&
      option.short !== undefined &&
      program.options.some((o) => o.long === option.long)
    )
      own.set(option.long, option.short);
  }
  return argv.map((arg, j) => (j > i && own.has(arg) ? own.get(arg)! : arg));
}

/** Run `opdbus` with these arguments (without node and script). Resolves to the exit code. */
export async function main(argv: readonly string[], output: Output = stdio): Promise<number> {
  let code: number = exitCodes.OK.code;
  const program = buildProgram(output, (c) => (code = c), argv);
  try {
    await program.parseAsync(commandOwnOptions(program, argv), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return exitCodes.OK.code;
      const { OpdbusError } = await import('@opdbus/core');
      return report(new OpdbusError('OPDBUS_ERR_USAGE', err.message.replace(/^error: /, '')), false, {
        out: () => undefined,
        err: () => undefined,
      });
    }
    return report(err, false, output);
  }
  return code;
}
