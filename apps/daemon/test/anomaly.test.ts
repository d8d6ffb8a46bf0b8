// opdbusd with an anomaly model (@opdbus/ml): API plans come back scored, what is at or above the
// threshold is an alert (ledger, /metrics, event), the plan policy refuses or asks before anything
// changes, and the drift policy rolls back unusual drift where the resource is only observed. The
// model is trained on a generated fleet history; the thresholds are set so that the plumbing, not
// the model's judgement, is what is tested (the model is tested in @opdbus/ml).
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@opdbus/core';
import { verifyLedger } from '@opdbus/ledger';
import { ChangeScorer, trainModel } from '@opdbus/ml';
import { generateFleetHistory } from '@opdbus/ml/generator';
import { TokenFile } from '@opdbus/runtime';
import { builtinPlugins } from '@opdbus/runtime/builtin-plugins';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../src/api.js';
import { ledgerEntries, next } from './helpers.js';
import type { AnomalyOptions } from '../src/anomaly.js';
import { Daemon } from '../src/daemon.js';

const probe = probeSandbox().netns;

let modelDir: string;
let dir: string;
let ns: SandboxNetns;
let daemon: Daemon | undefined;

beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'opdbusd-model-'));
  const g = generateFleetHistory({ seed: 3, weeks: 3, testWeeks: 1, hosts: 8 });
  await (await trainModel(g.history, { autoencoder: false })).save(join(modelDir, 'model'));
});
afterAll(async () => {
  await rm(modelDir, { recursive: true, force: true });
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  await ns?.destroy();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function start(anomaly: Omit<AnomalyOptions, 'scorer'>, threshold: number): Promise<Daemon> {
  dir = await mkdtemp(join(tmpdir(), 'opdbusd-anomaly-'));
  ns = await createNetns();
  await writeFile(
    join(dir, 'desired.yaml'),
    'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-a1, kind: bridge, state: up }\n',
  );
  await ns.exec('ip', ['link', 'add', 'br-a1', 'type', 'bridge'], { check: true });
  await ns.exec('ip', ['link', 'set', 'br-a1', 'up'], { check: true });
  daemon = new Daemon({
    runtime: { stateDir: join(dir, 'state'), logLevel: 'silent', netns: ns.name },
    desired: join(dir, 'desired.yaml'),
    mode: 'observe',
    targetCheckMs: 200,
    plugins: builtinPlugins(),
    logger: silentLogger,
    anomaly: { ...anomaly, scorer: await ChangeScorer.load(join(modelDir, 'model'), { threshold }) },
  });
  await daemon.start();
  await daemon.firstSync();
  return daemon;
}

async function api(d: Daemon) {
  const tokenFile = join(dir, 'tokens');
  await writeFile(tokenFile, 'write-token-0123456789 write mallory\n');
  await chmod(tokenFile, 0o600);
  const app = await buildApi({
    daemon: d,
    listener: { kind: 'tcp', host: '127.0.0.1', port: 1, label: '127.0.0.1:1' },
    tokens: TokenFile.load(tokenFile),
    version: '0',
  });
  return { app, headers: { authorization: 'Bearer write-token-0123456789' } };
}

const document =
  'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-new, kind: bridge, state: up }\n';

async function linkExists(name: string): Promise<boolean> {
  return (await ns.exec('ip', ['link', 'show', name])).code === 0;
}

describe.skipIf(!probe.available)('opdbusd with an anomaly model', () => {
  it('scores API plans; refuses an anomalous apply under --anomaly-plan refuse, with an alert in the ledger and /metrics', async () => {
    const d = await start({ plan: 'refuse', drift: 'off' }, 0.000001);
    const { app, headers } = await api(d);
    const planned = await app.inject({ method: 'POST', url: '/v1/plan', headers, payload: { document } });
    expect(planned.statusCode).toBe(200);
    const body = planned.json<{
      plan: { changes: { id: string }[] };
      anomalies: { key: string; changeId: string; score: number; anomalous: boolean; reasons: string[] }[];
    }>();
    expect(body.anomalies.map((a) => a.changeId)).toEqual(body.plan.changes.map((c) => c.id));
    for (const a of body.anomalies) {
      expect(a.score).toBeGreaterThanOrEqual(0);
      expect(a.score).toBeLessThanOrEqual(1);
      expect(a.anomalous).toBe(true);
    }
    const alerted = next(d, (e) => e.type === 'anomaly' && e.source === 'plan');
    const applied = await app.inject({ method: 'POST', url: '/v1/apply', headers, payload: { document } });
    expect(applied.statusCode).toBe(409);
    expect(applied.json<{ error: { code: string } }>().error.code).toBe('OPDBUS_ERR_ANOMALY_REFUSED');
    expect(await alerted).toMatchObject({ actor: 'mallory' });
    expect(await linkExists('br-new')).toBe(false);

    const alerts = (await ledgerEntries(join(dir, 'state'))).filter((e) => e.kind === 'alert');
    expect(alerts.length).toBeGreaterThanOrEqual(2); // the plan, and the apply's plan
    expect(alerts.at(-1)).toMatchObject({
      status: 'plan',
      actor: { name: 'opdbusd' },
      anomalies: [expect.objectContaining({ changeId: body.plan.changes[0]!.id })],
      changeRecords: [expect.objectContaining({ resource: 'link/br-new', op: 'create' })],
    });
    expect(alerts.at(-1)?.reason).toContain('actor mallory');
    expect((await verifyLedger(join(dir, 'state', 'ledger'))).ok).toBe(true);
    const metrics = await app.inject({ url: '/metrics', headers });
    expect(metrics.body).toMatch(/opdbus_anomaly_alerts_total\{source="plan"\} [1-9]/);
    expect(metrics.body).toContain('opdbus_anomaly_score_bucket');
    await app.close();
  });

  it('--anomaly-plan ask: applies only when the client acknowledges the anomalies', async () => {
    const d = await start({ plan: 'ask', drift: 'off' }, 0.000001);
    const { app, headers } = await api(d);
    const asked = await app.inject({ method: 'POST', url: '/v1/apply', headers, payload: { document } });
    expect(asked.statusCode).toBe(409);
    expect(asked.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'OPDBUS_ERR_ANOMALY_ASK',
      message: expect.stringContaining('"acknowledgeAnomalies": true'),
    });
    expect(await linkExists('br-new')).toBe(false);
    const acknowledged = await app.inject({
      method: 'POST',
      url: '/v1/apply',
      headers,
      payload: { document, acknowledgeAnomalies: true },
    });
    expect(acknowledged.statusCode).toBe(200);
    expect(acknowledged.json<{ status: string }>().status).toBe('committed');
    expect(await linkExists('br-new')).toBe(true);
    await app.close();
  });

  it('--anomaly-drift rollback: unusual drift of an observed resource is scored, alerted and rolled back', async () => {
    const d = await start({ plan: 'off', drift: 'rollback' }, 0.000001);
    const alerted = next(d, (e) => e.type === 'anomaly' && e.source === 'drift');
    const corrected = next(
      d,
      (e) => e.type === 'correction' && e.ok && e.keys.includes('network:link/br-a1'),
    );
    await ns.exec('ip', ['link', 'del', 'br-a1'], { check: true });
    const alert = await alerted;
    expect(alert).toMatchObject({
      actor: 'drift',
      scores: [expect.objectContaining({ key: 'network:link/br-a1' })],
    });
    await corrected;
    expect(await linkExists('br-a1')).toBe(true);
    const alerts = (await ledgerEntries(join(dir, 'state'))).filter(
      (e) => e.kind === 'alert' && e.status === 'drift',
    );
    // Recorded as what the host underwent: the bridge was deleted.
    expect(alerts[0]).toMatchObject({
      changeRecords: [expect.objectContaining({ resource: 'link/br-a1', op: 'delete' })],
    });
  });

  it('without a drift policy, unusual drift of an observed resource is reported with its score, not touched', async () => {
    const d = await start({ plan: 'off', drift: 'off' }, 0.000001);
    const drifted = next(d, (e) => e.type === 'drift');
    await ns.exec('ip', ['link', 'set', 'br-a1', 'down'], { check: true });
    await drifted;
    const item = d.driftReport().drift.find((i) => i.key === 'network:link/br-a1');
    expect(item?.anomaly).toMatchObject({ anomalous: true, score: expect.any(Number) });
    expect(item?.state).toBe('open');
    const r = await ns.exec('ip', ['-j', 'link', 'show', 'br-a1'], { check: true });
    expect((JSON.parse(r.stdout) as { flags: string[] }[])[0]?.flags).not.toContain('UP');
  });
});
