import type { RetentionOptions } from '../commands/snapshot.js';
import type { CommandContext } from '../context.js';

/** `opdbus snapshot …`: encrypted snapshots of the observed state, retention, point-in-time restore. */
export function registerSnapshot(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const load = () => import('../commands/snapshot.js');
  const snapshot = program
    .command('snapshot')
    .description(
      'encrypted snapshots of the observed state (one at every committed apply), retention, restore',
    );
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(snapshot)) return;

  snapshot
    .command('list')
    .description('every snapshot, checked against the ledger (replayed or altered ones are flagged)')
    .action(() => run(async () => (await load()).list(globals(), output))());

  snapshot
    .command('create')
    .description('snapshot the observed state of every available plugin now')
    .action(() => run(async () => (await load()).create(globals(), output))());

  snapshot
    .command('prune')
    .description(
      "apply snapper's timeline retention (default: first of each of the last 5 hours, days, ISO weeks, quarters)",
    )
    .option('--dry-run', 'only show what would be removed')
    .option('--hourly <n>', 'hours that keep their first snapshot (default 5)')
    .option('--daily <n>', 'days (default 5)')
    .option('--weekly <n>', 'ISO weeks (default 5)')
    .option('--monthly <n>', 'months (default 0)')
    .option('--quarterly <n>', 'quarters (default 5)')
    .option('--yearly <n>', 'years (default 0)')
    .option('--min-age <seconds>', 'always keep snapshots younger than this (default 1800)')
    .action((options: RetentionOptions) =>
      run(async () => (await load()).prune(globals(), options, output))(),
    );

  snapshot
    .command('restore')
    .description(
      'point-in-time restore: plan the snapshot as a document, show the diff, apply it as one transaction',
    )
    .argument('<id>', 'snapshot id')
    .option('--dry-run', 'only show the plan (exit 2 when changes are pending)')
    .option(
      '--confirm-timeout <seconds>',
      'commit-confirmed: roll back unless `opdbus confirm` arrives in time',
    )
    .option('--force', 'apply changes flagged risky without commit-confirmed')
    .action((id: string, options: { dryRun?: boolean; confirmTimeout?: string; force?: boolean }) =>
      run(async () => (await load()).restore(globals(), id, options, output))(),
    );

  snapshot
    .command('export')
    .description('export a snapshot with btrfs send (btrfs backend), incrementally against --parent')
    .argument('<id>', 'snapshot id')
    .argument('<file>', 'send stream file')
    .option('--parent <id>', 'an older snapshot the receiver has')
    .action((id: string, file: string, options: { parent?: string }) =>
      run(async () => (await load()).exportSnapshot(globals(), id, file, options, output))(),
    );

  snapshot
    .command('import')
    .description('import a btrfs send stream with btrfs receive and record it in the ledger')
    .argument('<file>', 'send stream file')
    .action((file: string) => run(async () => (await load()).importSnapshot(globals(), file, output))());
}
