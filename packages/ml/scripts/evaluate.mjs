#!/usr/bin/env node
// The evaluation of docs/ml.md: for each seed, generate a fleet history, train on its normal
// weeks, score its test weeks, and compare with the frequency-count baseline.
// Usage (after a build): node packages/ml/scripts/evaluate.mjs [--seeds 1,2,3] [--weeks 6]
//   [--test-weeks 2] [--hosts N] [--rate X] [--no-autoencoder] [--json]
// (--hosts and --rate change the fleet's size and traffic: the default draws 20–40 hosts and about
// 100 changes per host and week from the seed.)
import { performance } from 'node:perf_hooks';
import { evaluateScores, FrequencyBaseline, trainModel } from '../dist/index.js';
import { generateFleetHistory } from '../dist/generator.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const seeds = opt('--seeds', '1,2,3,4,5,6').split(',').map(Number);
const json = args.includes('--json');
const rows = [];
for (const seed of seeds) {
  const t0 = performance.now();
  const g = generateFleetHistory({
    seed,
    weeks: Number(opt('--weeks', '6')),
    testWeeks: Number(opt('--test-weeks', '2')),
    ...(opt('--hosts') === undefined ? {} : { hosts: Number(opt('--hosts')) }),
    ...(opt('--rate') === undefined ? {} : { rateScale: Number(opt('--rate')) }),
  });
  const model = await trainModel(g.history, { autoencoder: args.includes('--no-autoencoder') ? false : {} });
  const t1 = performance.now();
  const scored = model.score(g.test);
  const t2 = performance.now();
  const ours = evaluateScores(
    scored.map((s) => s.score),
    g.labels,
    g.kinds,
  );
  const base = evaluateScores(new FrequencyBaseline(g.history).score(g.test), g.labels, g.kinds);
  const flagged = scored.filter((s) => s.anomalous);
  const fp = scored.filter((s, i) => s.anomalous && !g.labels[i]).length;
  rows.push({
    seed,
    history: g.history.length,
    test: g.test.length,
    anomalies: ours.anomalies,
    hosts: g.fleet.hosts.length,
    ours,
    base,
    trainMs: t1 - t0,
    scoreMs: t2 - t1,
    flagged: flagged.length,
    flaggedNormal: fp,
  });
  process.stderr.write(
    `seed ${seed}: ours ROC ${ours.rocAuc.toFixed(3)} R@2 ${ours.recallAt2.toFixed(3)} | base ROC ${base.rocAuc.toFixed(3)} R@2 ${base.recallAt2.toFixed(3)} (${((t2 - t0) / 1000).toFixed(1)} s)\n`,
  );
}
if (json) {
  process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
} else {
  const f = (x) => (Number.isNaN(x) ? 'n/a' : x.toFixed(3));
  console.log(
    '| seed | hosts | history | test | anomalies | ROC-AUC (ours / baseline) | PR-AUC | recall @1 % FPR | @2 % | @5 % | flagged at 0.99 (of them normal) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.seed} | ${r.hosts} | ${r.history} | ${r.test} | ${r.anomalies} | **${f(r.ours.rocAuc)}** / ${f(r.base.rocAuc)} | ${f(r.ours.prAuc)} / ${f(r.base.prAuc)} | ${f(r.ours.recallAt1)} / ${f(r.base.recallAt1)} | **${f(r.ours.recallAt2)}** / ${f(r.base.recallAt2)} | ${f(r.ours.recallAt5)} / ${f(r.base.recallAt5)} | ${r.flagged} (${r.flaggedNormal}) |`,
    );
  if (rows.length > 1) {
    const mean = (get) => rows.reduce((a, r) => a + get(r), 0) / rows.length;
    const min = (get) => Math.min(...rows.map(get));
    const both = (get) => `${f(mean((r) => get(r.ours)))} / ${f(mean((r) => get(r.base)))}`;
    console.log(
      `| mean | | | | | **${both((e) => e.rocAuc)}** | ${both((e) => e.prAuc)} | ${both((e) => e.recallAt1)} | **${both((e) => e.recallAt2)}** | ${both((e) => e.recallAt5)} | |`,
    );
    console.log(
      `| worst seed | | | | | ${f(min((r) => r.ours.rocAuc))} / ${f(min((r) => r.base.rocAuc))} | ${f(min((r) => r.ours.prAuc))} / ${f(min((r) => r.base.prAuc))} | ${f(min((r) => r.ours.recallAt1))} / ${f(min((r) => r.base.recallAt1))} | ${f(min((r) => r.ours.recallAt2))} / ${f(min((r) => r.base.recallAt2))} | ${f(min((r) => r.ours.recallAt5))} / ${f(min((r) => r.base.recallAt5))} | |`,
    );
  }
  const kinds = Object.keys(rows[0]?.ours.kinds ?? {});
  console.log('\nPer kind (ROC-AUC ours / baseline; recall at 2 % FPR ours / baseline), by seed:\n');
  console.log(`| kind | ${rows.map((r) => `seed ${r.seed}`).join(' | ')} |`);
  console.log(`| --- | ${rows.map(() => '---').join(' | ')} |`);
  for (const k of kinds)
    console.log(
      `| ${k} | ${rows.map((r) => (r.ours.kinds[k] ? `${f(r.ours.kinds[k].rocAuc)} / ${f(r.base.kinds[k].rocAuc)}; ${f(r.ours.kinds[k].recallAt2)} / ${f(r.base.kinds[k].recallAt2)}` : 'n/a')).join(' | ')} |`,
    );
}
