import type { Command } from 'commander';
import type { GlobalOptions, Output } from './runtime.js';

/** What a command group receives to add its commands to the program. */
export interface CommandContext {
  program: Command;
  output: Output;
  /** The global options, parsed (call inside an action). */
  globals: () => GlobalOptions;
  /** Wrap an action: its result is the exit code; errors are reported with the right exit code. */
  run: (fn: () => Promise<number> | number) => () => Promise<void>;
  /**
   * Whether a command group is to be built in full (its subcommands) or only listed by name with
   * its own options: a command builds only the group it runs (`opdbus ledger verify` builds
   * `ledger`, `opdbus query` none), `opdbus help …` and a program built without its arguments all.
   */
  builds: (group: Command) => boolean;
}
