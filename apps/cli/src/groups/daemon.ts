import type { CommandContext } from '../context.js';
import type { DaemonInstallOptions } from '../commands/daemonInstall.js';

/** `opdbus daemon …`: opdbusd as a systemd service. */
export function registerDaemon(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const daemon = program.command('daemon').description('run opdbusd, the op-dbus daemon, under systemd');
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(daemon)) return;
  const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

  daemon
    .command('install')
    .description(
      "install opdbusd.service (Type=notify, WatchdogSec, hardened) and enable and start it through op-dbus's systemd plugin (--root and --bus for another root)",
    )
    .option('--opdbusd <path>', 'the opdbusd executable (default: opdbusd on PATH)')
    .option('--desired <path>', "the daemon's desired state file or directory", '/etc/opdbus/desired.yaml')
    .option('--daemon-state-dir <dir>', "the daemon's state directory", '/var/lib/opdbus')
    .option('--mode <mode>', 'observe | enforce | ignore', 'observe')
    .option(
      '--listen <spec>',
      'unix:PATH | tcp:HOST:PORT, repeatable (default unix:/run/opdbus/api.sock)',
      collect,
    )
    .option('--token-file <file>', "the API's token file")
    .option('--daemon-arg <arg>', 'one more opdbusd argument (e.g. --netns=NS), repeatable', collect)
    .option('--watchdog-sec <s>', 'WatchdogSec: systemd restarts opdbusd when its pings stop this long', '30')
    .option('--unit <name>', 'the unit name', 'opdbusd.service')
    .option('--no-start', 'install and enable, do not start')
    .option('--dry-run', 'print the unit and the plan, change nothing')
    .action((options: DaemonInstallOptions) =>
      run(async () =>
        (await import('../commands/daemonInstall.js')).daemonInstall(globals(), options, output),
      )(),
    );
}
