import type { CommandContext } from '../context.js';

/**
 * `opdbus compliance …`: SOC 2, PCI DSS and HIPAA evidence from the ledger and the host, written
 * as a signed bundle an auditor verifies offline. @opdbus/compliance is imported only when one
 * of them runs.
 */
export function registerCompliance(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const load = () => import('../commands/compliance.js');
  const compliance = program
    .command('compliance')
    .description('compliance evidence an auditor verifies offline: report, verify, check');
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(compliance)) return;

  compliance
    .command('report')
    .description(
      'write an evidence bundle for a framework: JSON and HTML report, ledger entries with inclusion proofs, signed checkpoint, verifier key, signed manifest',
    )
    .requiredOption('--framework <name>', 'soc2 | pci-dss | hipaa (or the path of a mapping file)')
    .requiredOption('--out <dir>', 'the bundle directory to create (new or empty)')
    .option('--from <date>', 'start of the period (ISO 8601; default: the first entry)')
    .option('--to <date>', 'end of the period, exclusive (ISO 8601; default: now)')
    .action((options: { framework: string; out: string; from?: string; to?: string }) =>
      run(async () => (await load()).report(globals(), options, output))(),
    );

  compliance
    .command('verify')
    .description(
      'verify an evidence bundle offline (no state directory): manifest signature, every file hash, checkpoint, every proof; exit 11 on tampering',
    )
    .argument('<dir>', 'the bundle directory')
    .option(
      '--key-file <file>',
      "the log's verifier key to pin (e.g. a copy of STATE_DIR/ledger/verifier.pub)",
    )
    .option('--key <vkey>', "the log's verifier key NAME+ID+BASE64 to pin")
    .action((dir: string, options: { keyFile?: string; key?: string }) =>
      run(async () => (await load()).verify(globals(), dir, options, output))(),
    );

  compliance
    .command('check')
    .description('evaluate the controls now, without writing a bundle (for CI); exit 12 when a control fails')
    .option('--framework <name...>', 'soc2 | pci-dss | hipaa (default: all three)')
    .option('--from <date>', 'start of the period (ISO 8601)')
    .option('--to <date>', 'end of the period, exclusive (ISO 8601)')
    .option('--all', 'list every control, not only those that fail or need a manual check')
    .action((options: { framework?: string[]; from?: string; to?: string; all?: boolean }) =>
      run(async () => (await load()).check(globals(), options, output))(),
    );
}
