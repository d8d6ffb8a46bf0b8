import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateScores, FrequencyBaseline } from './evaluate.js';
import { generateFleetHistory } from './generator.js';
import { loadModel, trainModel, type AnomalyModel } from './model.js';

let dir: string;
const g = generateFleetHistory({ seed: 11, weeks: 3, testWeeks: 1, hosts: 16, anomaliesPerKind: 8 });
let model: AnomalyModel;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-ml-model-'));
  model = await trainModel(g.history, { autoencoder: { epochs: 2, backend: 'cpu' } });
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('AnomalyModel', () => {
  it('ranks the injected anomalies above normal changes, far better than a frequency table', () => {
    const scores = model.score(g.test).map((s) => s.score);
    const ours = evaluateScores(scores, g.labels);
    const baseline = evaluateScores(new FrequencyBaseline(g.history).score(g.test), g.labels);
    expect(ours.rocAuc).toBeGreaterThan(0.95);
    expect(ours.rocAuc).toBeGreaterThan(baseline.rocAuc);
  });

  it('returns a score in [0, 1], the decision, reasons and neighbours for each change', () => {
    const results = model.score(g.test.slice(0, 200));
    expect(results).toHaveLength(200);
    for (const r of results) {
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
      expect(r.anomalous).toBe(r.score >= model.threshold);
      expect(r.neighbours.length).toBeLessThanOrEqual(3);
      expect(Object.keys(r.signals).sort()).toEqual(
        ['actor', 'autoencoder', 'burst', 'day', 'host', 'hour', 'neighbour', 'value', 'what'].sort(),
      );
    }
    const newActor = g.test.findIndex((_, i) => g.kinds[i] === 'new_actor');
    const [r] = model.score([g.test[newActor]!]);
    expect(r!.anomalous).toBe(true);
    expect(r!.reasons.join('\n')).toMatch(/new actor: \S+ never changed anything/);
    expect(r!.neighbours[0]).toMatchObject({ plugin: g.test[newActor]!.plugin });
  });

  it('saves and loads to the same scores, replacing a model whole and leaving nothing beside it', async () => {
    const target = join(dir, 'model');
    await model.save(target);
    await model.save(target); // over an existing model
    expect((await readdir(dir)).sort()).toEqual(['model']);
    expect((await readdir(target)).sort()).toEqual([
      'autoencoder.json',
      'changes.hnsw',
      'changes.jsonl',
      'model.json',
      'profile.json',
    ]);
    const loaded = await loadModel(target);
    const sample = g.test.slice(0, 300);
    expect(loaded.score(sample).map((s) => s.score)).toEqual(model.score(sample).map((s) => s.score));
  });

  it('refuses a model directory of another version, naming both', async () => {
    const target = join(dir, 'old');
    await model.save(target);
    const json = JSON.parse(await readFile(join(target, 'model.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(target, 'model.json'), JSON.stringify({ ...json, formatVersion: 0 }));
    await expect(loadModel(target)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_ML_MODEL_VERSION',
      message: expect.stringMatching(/format version 0; this @opdbus\/ml reads version 1/),
    });
  });

  it('says what is missing or damaged', async () => {
    await expect(loadModel(join(dir, 'nowhere'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_ML_MODEL_MISSING',
    });
    const target = join(dir, 'damaged');
    await model.save(target);
    await writeFile(join(target, 'profile.json'), '{');
    await expect(loadModel(target)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_ML_MODEL_CORRUPT',
      message: expect.stringContaining('profile.json does not parse'),
    });
  });

  it('never writes into a directory that is not a model, and leaves no temporary directory on failure', async () => {
    const other = join(dir, 'photos');
    await mkdir(other);
    await writeFile(join(other, 'cat.jpg'), 'meow');
    await expect(model.save(other)).rejects.toMatchObject({ code: 'OPDBUS_ERR_ML_MODEL_WRITE' });
    expect(await readdir(other)).toEqual(['cat.jpg']);
    // A parent that is a file: nothing can be written, nothing is left.
    await expect(model.save(join(other, 'cat.jpg', 'model'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_ML_MODEL_WRITE',
    });
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('refuses too short a history', async () => {
    await expect(trainModel(g.history.slice(0, 10))).rejects.toMatchObject({ code: 'OPDBUS_ERR_ML_EMPTY' });
  });

  it('learns new changes incrementally: a repeated anomaly becomes less surprising', async () => {
    const copy = await loadModel(join(dir, 'model'));
    const i = g.test.findIndex((_, k) => g.kinds[k] === 'wrong_host');
    const e = g.test[i]!;
    const before = copy.score([e])[0]!.score;
    copy.learn(
      Array.from({ length: 5 }, (_, k) => ({
        ...e,
        at: new Date(Date.parse(e.at) - (k + 1) * 86_400_000).toISOString(),
      })),
    );
    expect(copy.score([e])[0]!.score).toBeLessThan(before);
  });
});

describe('state scoring', () => {
  const state = (extra: Record<string, string>) => ({
    version: 1,
    plugins: {
      sysctl: {
        ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`net.k${i}`, String(i)])),
        ...extra,
      },
      systemd: { units: { 'nginx.service': { enabled: true, active: true } } },
    },
  });

  it('flags a state unlike every known-good one and names the last known good', () => {
    const fresh = Object.create(model) as AnomalyModel;
    const results = model.addStates([
      { id: 's1', at: '2026-01-01T00:00:00Z', state: state({}) },
      { id: 's2', at: '2026-01-02T00:00:00Z', state: state({ 'net.k1': '5' }) },
      {
        id: 's3',
        at: '2026-01-03T00:00:00Z',
        state: { version: 1, plugins: { users: { root: { keys: ['ssh-rsa AAAA'] } } } },
      },
    ]);
    expect(results.map((r) => r.anomalous)).toEqual([false, false, true]);
    const r = model.scoreState(state({ 'net.k2': '7' }));
    expect(r.anomalous).toBe(false);
    expect(r.similarity).toBeGreaterThan(0.85);
    const bad = model.scoreState({ plugins: { firewall: { rules: { 'allow-all': { action: 'accept' } } } } });
    expect(bad).toMatchObject({ anomalous: true, lastKnownGood: { id: 's2', flagged: false } });
    expect(bad.reasons[0]).toMatch(/state unlike every known-good state: the nearest \(s[12]/);
    expect(fresh).toBeDefined();
  });
});
