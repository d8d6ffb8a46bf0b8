import type { EvalCliOptions, GenerateCliOptions, TrainCliOptions } from '../commands/anomaly.js';
import type { CommandContext } from '../context.js';

/**
 * `opdbus anomaly …`: train a model on a history of changes, score changes and state snapshots
 * against it, evaluate it on labelled changes. @opdbus/ml is imported only when one of them runs.
 */
export function registerAnomaly(context: CommandContext): void {
  const { program, output, globals, run } = context;
  const load = () => import('../commands/anomaly.js');
  const anomaly = program
    .command('anomaly')
    .description('score changes and states against the history: train, score, score-state, eval, info');
  // Its subcommands only when it is the command given (CommandContext.builds).
  if (!context.builds(anomaly)) return;

  anomaly
    .command('train')
    .description('learn what is usual from a history of change events (JSONL) into a model directory')
    .option('--history <file>', 'change events, one JSON object per line (- for stdin)')
    .option('--from-ledger', "read the history from the state directory's ledger")
    .requiredOption('--model <dir>', 'model directory to write (replaced whole, never half-written)')
    .option('--states <file>', 'state snapshots of the same history, JSONL {"id","at","host","state"}')
    .option('--no-autoencoder', 'train without the autoencoder detector')
    .option('--epochs <n>', 'autoencoder epochs', '8')
    .option('--backend <name>', 'start the TensorFlow.js probe at tfjs-node-gpu | tfjs-node | wasm | cpu')
    .option('--threshold <score>', 'decision threshold on the calibrated score', '0.99')
    .action((options: TrainCliOptions) =>
      run(async () => (await load()).train(globals(), options, output))(),
    );

  anomaly
    .command('score')
    .description('score change events (JSONL); --json prints one line per event, in order')
    .argument('<file>', 'change events, one JSON object per line (- for stdin)')
    .requiredOption('--model <dir>', 'model directory')
    .option('--threshold <score>', "decision threshold (default: the model's)")
    .option('--all', 'list every event, not only the flagged ones')
    .action((file: string, options: { model: string; threshold?: string; all?: boolean }) =>
      run(async () => (await load()).score(globals(), file, options, output))(),
    );

  anomaly
    .command('score-state')
    .description(
      'compare state snapshots with the known-good states of the model (similarity rule, default 0.85)',
    )
    .argument(
      '<file>',
      'a state document (YAML/JSON) or JSONL snapshots {"id","at","host","state"} (- for stdin)',
    )
    .requiredOption('--model <dir>', 'model directory')
    .option(
      '--threshold <similarity>',
      "similarity below which a state is anomalous (default: the model's, 0.85)",
    )
    .option(
      '--record',
      'add the snapshots to the model\'s state history (flagged ones are never "known good")',
    )
    .action((file: string, options: { model: string; threshold?: string; record?: boolean }) =>
      run(async () => (await load()).scoreState(globals(), file, options, output))(),
    );

  anomaly
    .command('eval')
    .description(
      'train on a history, score labelled test events: ROC-AUC, PR-AUC, recall at 1/2/5 % FPR, beside a frequency baseline',
    )
    .requiredOption('--history <file>', 'training change events (JSONL)')
    .requiredOption('--test <file>', 'test change events (JSONL)')
    .requiredOption('--labels <file>', 'one label per test event: [0,1,…] or {"labels":[…],"kinds":[…]}')
    .option('--model <dir>', 'score with this trained model instead of training on --history')
    .option('--no-autoencoder', 'train without the autoencoder detector')
    .action((options: EvalCliOptions) =>
      run(async () => (await load()).evaluate(globals(), options, output))(),
    );

  anomaly
    .command('info')
    .description('what a model was trained on, and which TensorFlow.js backend runs here')
    .option('--model <dir>', 'model directory')
    .action((options: { model?: string }) =>
      run(async () => (await load()).info(globals(), options, output))(),
    );

  anomaly
    .command('generate')
    .description(
      'write a synthetic fleet history with labelled anomalies (history.jsonl, test.jsonl, labels.json)',
    )
    .requiredOption('--out <dir>', 'directory to write into')
    .option('--seed <n>', 'seed (everything is drawn from it)', '1')
    .option('--weeks <n>', 'weeks of normal history', '6')
    .option('--test-weeks <n>', 'weeks of test events', '2')
    .option('--hosts <n>', 'about this many hosts (default: 20–40 from the seed)')
    .option('--rate <x>', 'multiply every routine rate (default 4, about 100 changes per host and week)')
    .action((options: GenerateCliOptions) =>
      run(async () => (await load()).generate(globals(), options, output))(),
    );
}
