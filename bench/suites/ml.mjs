// Anomaly scoring at fleet scale: a generated history of 100 000 changes (about 350 hosts, 5
// weeks). Training time and model size; scoring one change at a time against it (the daemon's
// case: a plan's changes scored at plan time); HNSW nearest-neighbour search against exact
// brute-force kNN over the same vectors (latency and recall@10), the search a user would
// otherwise write. The autoencoder runs on the backend the probe finds here (no GPU machine).
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BruteForceIndex,
  featurize,
  HashingEmbedder,
  HnswIndex,
  loadBackend,
  loadModel,
  trainModel,
} from '@opdbus/ml';
import { generateFleetHistory } from '@opdbus/ml/generator';
import { ms, stats, table } from '../lib.mjs';

export const title = 'ml: anomaly scoring against a 100k-change history';

const SIZE = 100_000;

function percentile(samples, q) {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function dirSize(dir) {
  let total = 0;
  for (const f of await readdir(dir)) total += (await stat(join(dir, f))).size;
  return total;
}

export async function run({ log }) {
  const backend = await loadBackend();
  log(`TensorFlow.js backend: ${backend.name}`);
  const g = generateFleetHistory({ seed: 42, hosts: 350, weeks: 5, testWeeks: 1 });
  const history = g.history.slice(0, SIZE);
  const test = g.test.slice(0, 2000);
  log(`generated ${history.length} history and ${test.length} test changes`);

  // Training: the whole pipeline, as `opdbus anomaly train` runs it.
  // Time per phase: from a phase's report to the next report of another phase.
  const phases = new Map();
  let current;
  let since = performance.now();
  const switchTo = (phase) => {
    const now = performance.now();
    if (current !== undefined) phases.set(current, (phases.get(current) ?? 0) + now - since);
    current = phase;
    since = now;
  };
  let t0 = performance.now();
  const model = await trainModel(history, { onProgress: (p) => p.phase !== current && switchTo(p.phase) });
  switchTo(undefined);
  const trainMs = performance.now() - t0;
  log(`trained in ${(trainMs / 1000).toFixed(1)} s`);
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-bench-ml-'));
  try {
    const modelDir = join(dir, 'model');
    t0 = performance.now();
    await model.save(modelDir);
    const saveMs = performance.now() - t0;
    const files = {};
    for (const f of await readdir(modelDir)) files[f] = (await stat(join(modelDir, f))).size;
    const size = await dirSize(modelDir);
    t0 = performance.now();
    const loaded = await loadModel(modelDir);
    const loadMs = performance.now() - t0;

    // Scoring one change at a time (warm-up first): wall time, and this process's CPU time
    // (the machine is shared; a preempted call shows in wall time only).
    for (const e of test.slice(0, 200)) loaded.score([e]);
    const one = [];
    const oneCpu = [];
    const load0 = loadavg()[0];
    for (const e of test) {
      const c = process.cpuUsage();
      const t = performance.now();
      loaded.score([e]);
      one.push(performance.now() - t);
      const d = process.cpuUsage(c);
      oneCpu.push((d.user + d.system) / 1000);
    }
    const load1 = loadavg()[0];
    t0 = performance.now();
    loaded.score(test);
    const batchMs = performance.now() - t0;

    // The model's own HNSW index against exact kNN over the same 100k vectors. The model labels
    // changes by their position in time order (a stable sort), as here.
    const embedder = new HashingEmbedder();
    const ordered = history.map((e) => [Date.parse(e.at), e]).sort((a, b) => a[0] - b[0]);
    const vectors = ordered.map(([, e]) => embedder.embedChange(featurize(e)));
    const hnsw = HnswIndex.load(join(modelDir, 'changes.hnsw'), embedder.dim);
    const hnswBuildMs = phases.get('index') ?? Number.NaN;
    t0 = performance.now();
    const brute = new BruteForceIndex(embedder.dim, vectors.length);
    vectors.forEach((v, i) => brute.add(v, i));
    const bruteBuildMs = performance.now() - t0;
    const queries = test.slice(0, 300).map((e) => embedder.embedChange(featurize(e)));
    const hnswTimes = [];
    const bruteTimes = [];
    let hit = 0;
    for (const q of queries) {
      let t = performance.now();
      const a = hnsw.search(q, 10);
      hnswTimes.push(performance.now() - t);
      t = performance.now();
      const b = brute.search(q, 10);
      bruteTimes.push(performance.now() - t);
      // Recall@10 by similarity: ties in similarity are equally correct neighbours.
      const kth = b[b.length - 1].similarity - 1e-6;
      hit += a.filter((h) => h.similarity >= kth).length / b.length;
    }
    const recall = hit / queries.length;
    const h = stats(hnswTimes);
    const bf = stats(bruteTimes);

    const phaseRows = [...phases.entries()].map(([name, t]) => [name, ms(t)]);
    const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    return [
      `History: ${history.length} changes, ${g.fleet.hosts.length} hosts (generated, seed 42). Autoencoder backend: **${backend.name}**` +
        ` (${backend.tried.map((t) => `${t.name}: ${t.error}`).join('; ') || 'first choice'}). No GPU machine was lent to this task, so the tfjs-node-gpu training time is not measured.`,
      '',
      table(
        ['what', 'op-dbus', 'goal'],
        [
          [
            'score one change, wall time p50 / p99, `model.score([change])`',
            `${ms(percentile(one, 0.5))} / **${ms(percentile(one, 0.99))}**`,
            'p99 < 5 ms',
          ],
          [
            'score one change, CPU time p50 / p99',
            `${ms(percentile(oneCpu, 0.5))} / **${ms(percentile(oneCpu, 0.99))}**`,
            '',
          ],
          ['score a batch of 2 000 changes', `${ms(batchMs)} (${ms(batchMs / test.length)} each)`, ''],
          [
            'train on 100k changes (featurize, embed, HNSW, autoencoder, calibrate)',
            `${(trainMs / 1000).toFixed(1)} s`,
            '',
          ],
          [
            'model size on disk',
            `${mib(size)} (${Object.entries(files)
              .map(([f, b]) => `${f} ${mib(b)}`)
              .join(', ')})`,
            '',
          ],
          ['save / load the model', `${ms(saveMs)} / ${ms(loadMs)}`, ''],
        ],
      ),
      '',
      `Load average while scoring: ${load0.toFixed(1)} → ${load1.toFixed(1)} on ${cpus().length} CPUs (the machine is shared): wall-time outliers are other processes' turns; the CPU time is what a call costs.`,
      '',
      'Training phases (the index phase is adding the history to HNSW, in two parts around calibration):',
      '',
      table(['phase', 'time'], phaseRows),
      '',
      'Nearest neighbours over the same 100k vectors (384 dimensions, cosine), 300 queries:',
      '',
      table(
        ['', 'HNSW (hnswlib-node, M 16, efConstruction 100, ef 64)', 'brute-force kNN (exact, JS)'],
        [
          ['build', `${(hnswBuildMs / 1000).toFixed(1)} s (inside training)`, ms(bruteBuildMs)],
          ['query k=10, median / p95', `${ms(h.median)} / ${ms(h.p95)}`, `${ms(bf.median)} / ${ms(bf.p95)}`],
          ['recall@10 against exact', `**${recall.toFixed(4)}**`, '1 (by definition)'],
        ],
      ),
    ].join('\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
