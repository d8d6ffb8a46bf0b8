import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import {
  BACKENDS,
  evaluateScores,
  FrequencyBaseline,
  loadBackend,
  loadModel,
  readChangeEvents,
  readLabels,
  trainModel,
  type AnomalyScore,
  type BackendName,
  type ChangeEvent,
  type Evaluation,
  type Json,
  type StateSnapshot,
  type TrainProgress,
} from '@opdbus/ml';
import { generateFleetHistory, toJsonl } from '@opdbus/ml/generator';
import { parse } from 'yaml';
import type { GlobalOptions, Output } from '../runtime.js';

function number(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `${name} must be a number from ${min} to ${max}, got "${value}".`,
    );
  return n;
}

/** A progress bar on stderr while a terminal watches; nothing otherwise. */
function progressBar(): { update: (p: TrainProgress) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  let last = '';
  return {
    update: (p) => {
      if (!tty) return;
      const width = 30;
      const fraction = p.total === 0 ? 1 : Math.min(1, p.done / p.total);
      const filled = Math.round(fraction * width);
      const line = `${p.phase.padEnd(11)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(
        fraction * 100,
      )
        .toString()
        .padStart(3)} %`;
      if (line !== last) process.stderr.write(`\r${line}`);
      last = line;
    },
    done: () => {
      if (tty && last !== '') process.stderr.write('\n');
    },
  };
}

async function historyOf(
  globals: GlobalOptions,
  options: { history?: string; fromLedger?: boolean },
): Promise<ChangeEvent[]> {
  if (options.fromLedger === true && options.history !== undefined)
    throw new OpdbusError('OPDBUS_ERR_USAGE', 'Give either --history FILE or --from-ledger, not both.');
  if (options.fromLedger === true) {
    const { ledgerChangeEvents } = await import('./ledger.js');
    const events = (await ledgerChangeEvents(globals)).map(
      ({ at, host, actor, plugin, resource, op, before, after }): ChangeEvent => ({
        at,
        host,
        actor,
        plugin,
        resource,
        op,
        before,
        after,
      }),
    );
    if (events.length === 0)
      throw new OpdbusError(
        'OPDBUS_ERR_ML_EMPTY',
        `The ledger in ${globals.stateDir} records no changes yet: apply some documents first, or train from a JSONL history (--history FILE.jsonl).`,
        { data: { stateDir: globals.stateDir } },
      );
    return events;
  }
  if (options.history === undefined)
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      'Give the history to learn from: --history FILE.jsonl (or --from-ledger).',
    );
  return readChangeEvents(options.history);
}

/** `opdbus anomaly train`. */
export async function train(
  globals: GlobalOptions,
  options: TrainCliOptions,
  output: Output,
): Promise<number> {
  const events = await historyOf(globals, options);
  const states = options.states === undefined ? undefined : await readSnapshots(options.states);
  const bar = progressBar();
  const backend = options.backend;
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend))
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `--backend must be one of ${BACKENDS.join(', ')}, got "${backend}".`,
    );
  const started = Date.now();
  const model = await trainModel(events, {
    autoencoder: options.autoencoder
      ? {
          epochs: number(options.epochs, '--epochs', 1, 1000),
          ...(backend === undefined ? {} : { backend: backend as BackendName }),
        }
      : false,
    threshold: number(options.threshold, '--threshold', 0, 1),
    ...(states === undefined ? {} : { states }),
    onProgress: bar.update,
  });
  await model.save(options.model);
  bar.done();
  const info = model.info();
  if (globals.json)
    output.out(
      JSON.stringify({ ok: true, model: options.model, ...info, seconds: (Date.now() - started) / 1000 }),
    );
  else
    output.out(
      `Trained on ${info.history.events} changes (${info.history.hosts} hosts, ${info.history.actors} actors, ${info.history.from ?? '?'} … ${info.history.to ?? '?'}) in ${((Date.now() - started) / 1000).toFixed(1)} s; calibrated on the latest ${info.calibrationSize}.\n` +
        `Autoencoder: ${info.autoencoder === null ? 'off' : `${info.autoencoder.backend}, loss ${info.autoencoder.loss.toExponential(2)}`}. States: ${info.states}.\nModel written to ${options.model}.`,
    );
  return 0;
}

function short(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** `opdbus anomaly score FILE`. */
export async function score(
  globals: GlobalOptions,
  file: string,
  options: { model: string; threshold?: string; all?: boolean },
  output: Output,
): Promise<number> {
  const model = await loadModel(options.model);
  const events = await readChangeEvents(file);
  const threshold =
    options.threshold === undefined ? undefined : number(options.threshold, '--threshold', 0, 1);
  const results = model.score(events, threshold === undefined ? {} : { threshold });
  if (globals.json) {
    // Exactly one line per input event, in order.
    output.out(
      results
        .map(({ score: s, anomalous, reasons, neighbours }) =>
          JSON.stringify({ score: s, anomalous, reasons, neighbours }),
        )
        .join('\n'),
    );
    return 0;
  }
  const rows = results
    .map((r, i) => [r, events[i]!] as [AnomalyScore, ChangeEvent])
    .filter(([r]) => options.all === true || r.anomalous);
  const lines = [
    `${results.filter((r) => r.anomalous).length} of ${results.length} changes flagged (threshold ${threshold ?? model.threshold}).`,
  ];
  if (rows.length > 0) {
    lines.push(
      '',
      `${'SCORE'.padEnd(7)}  ${'AT'.padEnd(25)}  ${'HOST'.padEnd(16)}  ${'ACTOR'.padEnd(12)}  CHANGE`,
    );
    for (const [r, e] of rows) {
      lines.push(
        `${r.score.toFixed(4).padEnd(7)}  ${e.at.padEnd(25)}  ${short(e.host, 16).padEnd(16)}  ${short(e.actor, 12).padEnd(12)}  ${e.op} ${e.plugin}/${e.resource}`,
      );
      for (const reason of r.reasons) lines.push(`         - ${reason}`);
    }
  }
  output.out(lines.join('\n'));
  return 0;
}

async function readText(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new OpdbusError('OPDBUS_ERR_ML_READ', `Cannot read ${file}: ${(err as Error).message}.`, {
      data: { file },
      cause: err,
    });
  }
}

/** A state document (YAML/JSON) as one snapshot, or JSONL snapshots `{id?, at?, host?, state}`. */
async function readSnapshots(file: string): Promise<StateSnapshot[]> {
  const source = file === '-' ? '<stdin>' : file;
  const text = await readText(file);
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const looksJsonl =
    lines.length > 0 && lines.every((l) => l.trim().startsWith('{') && l.trim().endsWith('}'));
  if (looksJsonl && lines.length > 1) {
    return text.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new OpdbusError(
          'OPDBUS_ERR_ML_INPUT',
          `${source}:${i + 1}: not JSON (${(err as Error).message}).`,
          {
            data: { file: source, line: i + 1 },
          },
        );
      }
      if (typeof value !== 'object' || value === null || !('state' in value))
        throw new OpdbusError(
          'OPDBUS_ERR_ML_INPUT',
          `${source}:${i + 1}: not a state snapshot: it needs a "state" field.`,
          {
            data: { file: source, line: i + 1 },
          },
        );
      const v = value as { id?: unknown; at?: unknown; host?: unknown; state: Json };
      const snapshot: StateSnapshot = { state: v.state };
      if (typeof v.id === 'string') snapshot.id = v.id;
      if (typeof v.at === 'string') snapshot.at = v.at;
      if (typeof v.host === 'string') snapshot.host = v.host;
      return [snapshot];
    });
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_INPUT',
      `${source} is not valid YAML or JSON: ${(err as Error).message}`,
      {
        data: { file: source },
      },
    );
  }
  if (typeof value === 'object' && value !== null && 'state' in value && !('plugins' in value)) {
    const v = value as { id?: string; at?: string; host?: string; state: Json };
    return [{ ...v }];
  }
  return [{ id: source, state: value as Json }];
}

/** `opdbus anomaly score-state FILE`. */
export async function scoreState(
  globals: GlobalOptions,
  file: string,
  options: { model: string; threshold?: string; record?: boolean },
  output: Output,
): Promise<number> {
  const model = await loadModel(options.model);
  const snapshots = await readSnapshots(file);
  const threshold =
    options.threshold === undefined ? undefined : number(options.threshold, '--threshold', 0, 1);
  const opts = threshold === undefined ? {} : { threshold };
  const results =
    options.record === true
      ? model.addStates(snapshots, opts)
      : snapshots.map((s) => model.scoreState(s.state, opts));
  if (options.record === true) await model.save(options.model);
  if (globals.json) {
    output.out(results.map((r, i) => JSON.stringify({ id: snapshots[i]!.id ?? String(i), ...r })).join('\n'));
    return 0;
  }
  const lines: string[] = [];
  results.forEach((r, i) => {
    const id = snapshots[i]!.id ?? String(i);
    lines.push(
      `${id}: ${r.anomalous ? 'ANOMALOUS' : 'ok'} — similarity ${r.similarity.toFixed(3)} to the nearest known-good state${r.nearest[0] === undefined ? '' : ` (${r.nearest[0].id})`}, threshold ${r.threshold}`,
    );
    for (const reason of r.reasons) lines.push(`  - ${reason}`);
    if (r.anomalous && r.lastKnownGood !== null)
      lines.push(
        `  last known good: ${r.lastKnownGood.id}${r.lastKnownGood.at === null ? '' : ` (${r.lastKnownGood.at})`}`,
      );
  });
  if (options.record === true) lines.push(`Recorded ${snapshots.length} state(s) in ${options.model}.`);
  output.out(lines.join('\n'));
  return 0;
}

function metricsTable(rows: [string, Evaluation][]): string {
  const f = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(3));
  const lines = [
    `${'SCORER'.padEnd(18)}  ROC-AUC  PR-AUC  R@1%FPR  R@2%FPR  R@5%FPR`,
    ...rows.map(
      ([name, e]) =>
        `${name.padEnd(18)}  ${f(e.rocAuc).padEnd(7)}  ${f(e.prAuc).padEnd(6)}  ${f(e.recallAt1).padEnd(7)}  ${f(e.recallAt2).padEnd(7)}  ${f(e.recallAt5)}`,
    ),
  ];
  const kinds = Object.keys(rows[0]?.[1].kinds ?? {});
  if (kinds.length > 0) {
    lines.push(
      '',
      `${'KIND'.padEnd(18)}  ${'N'.padEnd(4)}  ${rows.map(([n]) => `ROC-AUC/R@2% ${n}`).join('  ')}`,
    );
    for (const k of kinds)
      lines.push(
        `${k.padEnd(18)}  ${String(rows[0]![1].kinds[k]!.n).padEnd(4)}  ${rows
          .map(([n, e]) =>
            `${f(e.kinds[k]?.rocAuc ?? Number.NaN)}/${f(e.kinds[k]?.recallAt2 ?? Number.NaN)}`.padEnd(
              13 + n.length,
            ),
          )
          .join('  ')}`,
      );
  }
  return lines.join('\n');
}

/** `opdbus anomaly eval`. */
export async function evaluate(
  globals: GlobalOptions,
  options: EvalCliOptions,
  output: Output,
): Promise<number> {
  const history = await readChangeEvents(options.history);
  const test = await readChangeEvents(options.test);
  const labels = await readLabels(options.labels, test.length);
  const bar = progressBar();
  const model =
    options.model !== undefined
      ? await loadModel(options.model)
      : await trainModel(history, { autoencoder: options.autoencoder ? {} : false, onProgress: bar.update });
  bar.done();
  const ours = evaluateScores(
    model.score(test).map((r) => r.score),
    labels.labels,
    labels.kinds,
  );
  const baseline = evaluateScores(new FrequencyBaseline(history).score(test), labels.labels, labels.kinds);
  if (globals.json) output.out(JSON.stringify({ ok: true, opdbus: ours, frequencyBaseline: baseline }));
  else
    output.out(
      `${test.length} test changes, ${ours.anomalies} labelled anomalous; trained on ${history.length}.\n\n${metricsTable(
        [
          ['opdbus', ours],
          ['frequency-baseline', baseline],
        ],
      )}`,
    );
  return 0;
}

/** `opdbus anomaly info`. */
export async function info(
  globals: GlobalOptions,
  options: { model?: string },
  output: Output,
): Promise<number> {
  const backend = await loadBackend();
  const model = options.model === undefined ? undefined : (await loadModel(options.model)).info();
  if (globals.json) {
    output.out(
      JSON.stringify({ ok: true, backend: backend.name, tried: backend.tried, model: model ?? null }),
    );
    return 0;
  }
  const lines = [
    `TensorFlow.js backend: ${backend.name}${backend.tried.length === 0 ? '' : ` (not used: ${backend.tried.map((t) => `${t.name}: ${t.error}`).join('; ')})`}`,
  ];
  if (model !== undefined) {
    lines.push(
      `Model: format ${model.formatVersion}, embedder ${model.embedder.name} (${model.embedder.dim} dimensions), trained ${model.createdAt}`,
      `History: ${model.history.events} changes, ${model.history.hosts} hosts, ${model.history.actors} actors, ${model.history.from ?? '?'} … ${model.history.to ?? '?'}; ${model.indexed} in the HNSW index`,
      `Calibrated on ${model.calibrationSize} held-out changes; threshold ${model.threshold}; state threshold ${model.stateThreshold}; ${model.states} states`,
      `Autoencoder: ${model.autoencoder === null ? 'off' : `trained on ${model.autoencoder.trainedOn} vectors with ${model.autoencoder.backend}, loss ${model.autoencoder.loss.toExponential(2)}`}`,
    );
  }
  output.out(lines.join('\n'));
  return 0;
}

/** `opdbus anomaly generate`. */
export async function generate(
  _globals: GlobalOptions,
  options: GenerateCliOptions,
  output: Output,
): Promise<number> {
  const g = generateFleetHistory({
    seed: number(options.seed, '--seed', 0, 2 ** 31),
    weeks: number(options.weeks, '--weeks', 1, 520),
    testWeeks: number(options.testWeeks, '--test-weeks', 1, 520),
    ...(options.hosts === undefined ? {} : { hosts: number(options.hosts, '--hosts', 1, 100_000) }),
    ...(options.rate === undefined ? {} : { rateScale: number(options.rate, '--rate', 0.01, 1000) }),
  });
  await mkdir(options.out, { recursive: true });
  await writeFile(join(options.out, 'history.jsonl'), toJsonl(g.history));
  await writeFile(join(options.out, 'test.jsonl'), toJsonl(g.test));
  await writeFile(
    join(options.out, 'labels.json'),
    JSON.stringify({ labels: g.labels.map((l) => (l ? 1 : 0)), kinds: g.kinds }),
  );
  output.out(
    `Wrote ${g.history.length} history and ${g.test.length} test changes (${g.labels.filter(Boolean).length} anomalous) for ${g.fleet.hosts.length} hosts to ${options.out}.`,
  );
  return 0;
}

/** Options of `opdbus anomaly train`. */
export interface TrainCliOptions {
  history?: string;
  fromLedger?: boolean;
  model: string;
  states?: string;
  autoencoder: boolean;
  epochs: string;
  backend?: string;
  threshold: string;
}

/** Options of `opdbus anomaly eval`. */
export interface EvalCliOptions {
  history: string;
  test: string;
  labels: string;
  model?: string;
  autoencoder: boolean;
}

/** Options of `opdbus anomaly generate`. */
export interface GenerateCliOptions {
  out: string;
  seed: string;
  weeks: string;
  testWeeks: string;
  hosts?: string;
  rate?: string;
}
