import type { CommandContext } from '../context.js';

/** `opdbus ledger …`: verify, read and prove the transparency log of every change. */
export function registerLedger(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const load = () => import('../commands/ledger.js');
  const ledger = program
    .command('ledger')
    .description(
      'the tamper-evident log of every plan, apply, rollback and confirm: verify, read, prove, export',
    );
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(ledger)) return;

  ledger
    .command('verify')
    .description('verify the whole log: records, order, signed checkpoints; exit 11 on tampering')
    .option('--checkpoint <file...>', 'signed checkpoints saved earlier that the log must be consistent with')
    .option('--key <vkey>', "the log's verifier key to pin (default: STATE_DIR/ledger/verifier.pub)")
    .action((options: { checkpoint?: string[]; key?: string }) =>
      run(async () => (await load()).verify(globals(), options, output))(),
    );

  ledger
    .command('log')
    .description('list entries, one line each')
    .option('--from <index>', 'first entry (default: the last --limit entries)')
    .option('--limit <n>', 'at most this many entries', '50')
    .action((options: { from?: string; limit: string }) =>
      run(async () => (await load()).log(globals(), options, output))(),
    );

  ledger
    .command('show')
    .description('one entry in full, with its leaf hash')
    .argument('<index>', 'entry index (from 0)')
    .action((index: string) => run(async () => (await load()).show(globals(), index, output))());

  ledger
    .command('proof')
    .description('the RFC 9162 inclusion proof of an entry (checked before it is printed)')
    .argument('<index>', 'entry index')
    .option('--size <m>', 'tree size to prove against (default: the current size)')
    .action((index: string, options: { size?: string }) =>
      run(async () => (await load()).proof(globals(), index, options, output))(),
    );

  ledger
    .command('consistency')
    .description('the RFC 9162 consistency proof between tree sizes M and N')
    .argument('<m>', 'older tree size')
    .argument('<n>', 'newer tree size')
    .action((m: string, n: string) => run(async () => (await load()).consistency(globals(), m, n, output))());

  ledger
    .command('checkpoint')
    .description('the signed checkpoint (C2SP tlog-checkpoint note) of the current tree')
    .action(() => run(async () => (await load()).checkpoint(globals(), output))());

  ledger
    .command('export')
    .description('write an evidence bundle (entries, inclusion proofs, signed checkpoint) to FILE')
    .argument('<file>', 'output file (- for stdout)')
    .option('--from <index>', 'first entry (default 0)')
    .option('--to <index>', 'entry after the last (default: all)')
    .action((file: string, options: { from?: string; to?: string }) =>
      run(async () => (await load()).exportCommand(globals(), file, options, output))(),
    );

  ledger
    .command('export-changes')
    .description(
      'write every recorded change as JSONL change events, one per line (plugin, resource, op, before, after, actor, host, time)',
    )
    .option('--from <index>', 'first ledger entry (default 0)')
    .option('--out <file>', 'write to FILE (default: stdout)')
    .action((options: { from?: string; out?: string }) =>
      run(async () => (await load()).exportChanges(globals(), options, output))(),
    );

  ledger
    .command('verify-bundle')
    .description(
      'verify an evidence bundle offline (no state directory needed); exit 11 if it does not verify',
    )
    .argument('<file>', 'bundle file (- for stdin)')
    .option(
      '--key <vkey>',
      "the log's verifier key NAME+ID+BASE64 (pin it; default: the key the bundle names)",
    )
    .option('--key-file <file>', 'read the verifier key from a file (e.g. STATE_DIR/ledger/verifier.pub)')
    .action((file: string, options: { key?: string; keyFile?: string }) =>
      run(async () => (await load()).verifyBundleCommand(globals(), file, options, output))(),
    );
}
