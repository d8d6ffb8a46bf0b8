import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { registerCodegenDbus } from './codegenDbus.js';
import { registerCodegenOvsdb } from './codegenOvsdb.js';

/**
 * Code generators, one subcommand each (`opdbus codegen ovsdb …`, `opdbus codegen dbus …`). A
 * generator module exports a function that adds its subcommand to `codegen`; list it here.
 */
export const codegenTargets: ReadonlyArray<(codegen: Command, context: CommandContext) => void> = [
  registerCodegenDbus,
  registerCodegenOvsdb,
];

/** Register `opdbus codegen` when at least one generator exists. */
export function registerCodegen(context: CommandContext): void {
  if (codegenTargets.length === 0) return;
  const codegen = context.program
    .command('codegen')
    .description('generate typed TypeScript from a schema or a live service');
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(codegen)) return;
  for (const register of codegenTargets) register(codegen, context);
}
