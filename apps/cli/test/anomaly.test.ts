// `opdbus anomaly …` end to end, spawned from the built CLI: generate a small fleet history,
// train, score (JSON and human), evaluate, info, score-state; and the errors a user meets.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStateDocument } from '@opdbus/core';
import { createEngine, loadBuiltinPlugins } from '@opdbus/runtime';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { runCli } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

let dir: string;
let data: string;
let model: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-anomaly-'));
  data = join(dir, 'data');
  model = join(dir, 'model');
  const gen = await runCli([
    'anomaly',
    'generate',
    '--seed',
    '21',
    '--weeks',
    '3',
    '--test-weeks',
    '1',
    '--hosts',
    '16',
    '--out',
    data,
  ]);
  expect(gen.code, gen.stderr).toBe(0);
  const train = await runCli([
    'anomaly',
    'train',
    '--history',
    join(data, 'history.jsonl'),
    '--model',
    model,
    '--epochs',
    '2',
  ]);
  expect(train.code, train.stderr).toBe(0);
  expect(train.stdout).toMatch(/^Trained on \d+ changes \(16 hosts/);
}, 300_000);
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('opdbus anomaly', () => {
  it('is listed in --help', async () => {
    const help = await runCli(['anomaly', '--help']);
    expect(help.stdout).toMatch(/train[\s\S]*score[\s\S]*score-state[\s\S]*eval[\s\S]*info/);
  });

  it('score --json: exactly one line per input line, in order, with score, anomalous, reasons, neighbours', async () => {
    const test = join(data, 'test.jsonl');
    const lines = (await readFile(test, 'utf8')).trim().split('\n');
    const result = await runCli(['--json', 'anomaly', 'score', test, '--model', model]);
    expect(result.code, result.stderr).toBe(0);
    const out = result.stdout.trim().split('\n');
    expect(out).toHaveLength(lines.length);
    const labels = (JSON.parse(await readFile(join(data, 'labels.json'), 'utf8')) as { labels: number[] })
      .labels;
    const parsed = out.map(
      (l) =>
        JSON.parse(l) as {
          score: number;
          anomalous: boolean;
          reasons: string[];
          neighbours: { at: string }[];
        },
    );
    for (const r of parsed) expect(Object.keys(r)).toEqual(['score', 'anomalous', 'reasons', 'neighbours']);
    // Flagged changes are mostly the injected ones.
    const flagged = parsed.map((r, i) => [r, labels[i]] as const).filter(([r]) => r.anomalous);
    expect(flagged.filter(([, l]) => l === 1).length / flagged.length).toBeGreaterThan(0.7);
    const human = await runCli(['anomaly', 'score', test, '--model', model]);
    expect(human.stdout).toMatch(
      /^\d+ of \d+ changes flagged \(threshold 0\.99\)\.\n\nSCORE\s+AT\s+HOST\s+ACTOR\s+CHANGE\n/,
    );
    expect(human.stdout).toMatch(
      /\n {9}- (new actor|unusual|value out of band|burst|new kind of change|unlike)/,
    );
  });

  it('eval: ROC-AUC, PR-AUC and recall at 1/2/5 % FPR beside the frequency baseline', async () => {
    const result = await runCli([
      '--json',
      'anomaly',
      'eval',
      '--history',
      join(data, 'history.jsonl'),
      '--test',
      join(data, 'test.jsonl'),
      '--labels',
      join(data, 'labels.json'),
      '--model',
      model,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const r = JSON.parse(result.stdout) as {
      opdbus: Record<string, number>;
      frequencyBaseline: Record<string, number>;
    };
    expect(Object.keys(r.opdbus)).toEqual(
      expect.arrayContaining(['rocAuc', 'prAuc', 'recallAt1', 'recallAt2', 'recallAt5', 'kinds']),
    );
    expect(r.opdbus.rocAuc).toBeGreaterThan(0.95);
    expect(r.opdbus.rocAuc).toBeGreaterThan(r.frequencyBaseline.rocAuc!);
  });

  it('info: the backend that runs and what the model holds', async () => {
    const result = await runCli(['anomaly', 'info', '--model', model]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^TensorFlow\.js backend: (tfjs-node-gpu|tfjs-node|wasm|cpu)/);
    expect(result.stdout).toMatch(/embedder hashing-v1 \(384 dimensions\)/);
    expect(result.stdout).toMatch(/Autoencoder: trained on \d+ vectors/);
  });

  it('score-state: records known-good states and flags one unlike them', async () => {
    const base = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`net.k${i}`, String(i)]));
    const snapshots = [0, 1, 2].map((i) =>
      JSON.stringify({
        id: `snap-${i}`,
        at: `2026-01-0${i + 1}T00:00:00Z`,
        state: { plugins: { sysctl: { ...base, 'net.k0': String(i) } } },
      }),
    );
    const file = join(dir, 'states.jsonl');
    await writeFile(file, `${snapshots.join('\n')}\n`);
    const record = await runCli(['anomaly', 'score-state', file, '--model', model, '--record']);
    expect(record.code, record.stderr).toBe(0);
    expect(record.stdout).toMatch(/Recorded 3 state\(s\)/);
    const odd = join(dir, 'odd.yaml');
    await writeFile(
      odd,
      'version: 1\nplugins:\n  firewall:\n    rules:\n      allow-all: { action: accept }\n',
    );
    const result = await runCli(['--json', 'anomaly', 'score-state', odd, '--model', model]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ anomalous: true, lastKnownGood: { id: 'snap-2' } });
  });

  it('a line that is not a change event: exit 3, naming the file and the line', async () => {
    const bad = join(dir, 'bad.jsonl');
    const good = (await readFile(join(data, 'test.jsonl'), 'utf8')).split('\n').slice(0, 2).join('\n');
    await writeFile(bad, `${good}\n{"at":"2026-01-01T00:00:00Z","host":"h"}\n`);
    const result = await runCli(['anomaly', 'score', bad, '--model', model]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`${bad}:3: not a change event: field "actor"`);
    expect(result.stderr).toContain('OPDBUS_ERR_ML_INPUT');
  });

  it('a model directory from another version: a clear error; a missing one: exit 8', async () => {
    const other = join(dir, 'other-model');
    const copy = await runCli([
      'anomaly',
      'train',
      '--history',
      join(data, 'history.jsonl'),
      '--model',
      other,
      '--no-autoencoder',
    ]);
    expect(copy.code, copy.stderr).toBe(0);
    const json = JSON.parse(await readFile(join(other, 'model.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(other, 'model.json'), JSON.stringify({ ...json, formatVersion: 99 }));
    const result = await runCli(['anomaly', 'score', join(data, 'test.jsonl'), '--model', other]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/has format version 99; this @opdbus\/ml reads version 1\. Retrain it/);
    const missing = await runCli(['anomaly', 'info', '--model', join(dir, 'none')]);
    expect(missing.code).toBe(8);
    expect(missing.stderr).toContain('OPDBUS_ERR_ML_MODEL_MISSING');
  });

  it('train --from-ledger: a state directory without a ledger, or a history as well, is refused', async () => {
    const stateDir = join(dir, 'state');
    const empty = await runCli([
      '--state-dir',
      stateDir,
      'anomaly',
      'train',
      '--from-ledger',
      '--model',
      join(dir, 'l'),
    ]);
    expect(empty.code).toBe(8);
    expect(empty.stderr).toContain('OPDBUS_ERR_LEDGER_NOT_FOUND');
    const both = await runCli([
      'anomaly',
      'train',
      '--from-ledger',
      '--history',
      'x.jsonl',
      '--model',
      join(dir, 'l'),
    ]);
    expect(both.code).toBe(3);
  });
});

describeIf(asRoot, 'opdbus anomaly train --from-ledger', () => {
  let netns: SandboxNetns;
  let stateDir: string;
  beforeAll(async () => {
    netns = await createNetns();
    stateDir = join(dir, 'ledger-state');
  });
  afterAll(async () => {
    await netns?.destroy();
  });

  it('trains on the per-change records of real applies, and scores the next change', async () => {
    // 30 transactions of 2 changes each, carried out in a network namespace through the same
    // engine and ledger as `opdbus apply`.
    const options = { stateDir, netns: netns.name, logLevel: 'silent' };
    const engine = createEngine(options, { plugins: await loadBuiltinPlugins(['sysctl']) });
    const registry = engine.registry;
    for (let i = 0; i < 30; i++) {
      const doc = parseStateDocument(
        JSON.stringify({
          version: 1,
          plugins: { sysctl: { 'net.ipv4.ip_default_ttl': 60 + (i % 5), 'net.core.somaxconn': 1000 + i } },
        }),
        { source: `apply-${i}.yaml`, registry },
      );
      expect((await engine.apply(doc)).status).toBe('committed');
    }
    const trained = await runCli([
      '--json',
      '--state-dir',
      stateDir,
      'anomaly',
      'train',
      '--from-ledger',
      '--model',
      join(dir, 'from-ledger'),
      '--no-autoencoder',
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(JSON.parse(trained.stdout)).toMatchObject({ history: { events: 60 } });
    // The history's own kind of change scores low; the same key set far out of its band, high.
    const exported = await runCli(['--state-dir', stateDir, 'ledger', 'export-changes']);
    const last = JSON.parse(exported.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    const odd = { ...last, after: '9', before: '1029' };
    const file = join(dir, 'next.jsonl');
    await writeFile(file, `${JSON.stringify(last)}\n${JSON.stringify(odd)}\n`);
    const scored = await runCli(['anomaly', 'score', file, '--model', join(dir, 'from-ledger'), '--json']);
    expect(scored.code, scored.stderr).toBe(0);
    const [a, b] = scored.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { score: number });
    expect(b!.score).toBeGreaterThan(a!.score);
  });
});
