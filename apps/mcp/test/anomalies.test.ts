// The anomalies tool, end to end: a model trained with @opdbus/ml on a generated fleet history,
// opdbus-mcp started with --anomaly-model, an apply through MCP in a network namespace (its
// per-change records land in the ledger), then the tool scores the ledger's recent changes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { trainModel } from '@opdbus/ml';
import { generateFleetHistory } from '@opdbus/ml/generator';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callTool, mcpBin } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

describeIf(asRoot, 'opdbus-mcp anomalies: recent ledger changes scored against a trained model', () => {
  let netns: SandboxNetns;
  let dir: string;
  let client: Client;

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-anomalies-'));
    const history = generateFleetHistory({ seed: 7, weeks: 2, testWeeks: 1, hosts: 4, anomaliesPerKind: 2 });
    const model = await trainModel(history.history, { autoencoder: false });
    await model.save(join(dir, 'model'));
    await writeFile(
      join(dir, 'policy.yaml'),
      'version: 1\nrules:\n  - { tools: [apply, confirm, rollback], plugins: network, action: allow }\n',
    );
    client = new Client({ name: 'anomaly-test', version: '1' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [
          mcpBin,
          '--netns',
          netns.name,
          '--state-dir',
          join(dir, 'state'),
          '--policy',
          join(dir, 'policy.yaml'),
          '--anomaly-model',
          join(dir, 'model'),
        ],
        stderr: 'pipe',
      }),
    );
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await netns?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("scores the ledger's recent changes: a change the history never saw is unusual, with the reason", async () => {
    const applied = await callTool(client, 'apply', {
      document:
        'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-a1, kind: bridge, state: up }\n',
      commitConfirmed: false,
    });
    expect(applied.isError, JSON.stringify(applied.content)).not.toBe(true);
    const result = await callTool(client, 'anomalies', { all: true });
    expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
    const report = result.structuredContent as {
      threshold: number;
      scored: number;
      changes: { resource: string; score: number; anomalous: boolean; reasons: string[] }[];
    };
    expect(report.scored).toBeGreaterThan(0);
    const bridge = report.changes.find((c) => c.resource.includes('br-a1'));
    expect(bridge).toBeDefined();
    expect(bridge!.score).toBeGreaterThanOrEqual(0);
    expect(bridge!.score).toBeLessThanOrEqual(1);
    expect(bridge!.anomalous).toBe(true);
    expect(bridge!.reasons.join('\n')).toMatch(/new kind of change: create network\/link\/br-a1/);
  });

  it("the plan tool shows each change's score and reasons, and names the unusual ones", async () => {
    const result = await callTool(client, 'plan', {
      document:
        'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-p9, kind: bridge, state: up }\n',
    });
    expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
    const plan = result.structuredContent as {
      changes: { id: string }[];
      anomalies: { key: string; changeId: string; score: number; anomalous: boolean; reasons: string[] }[];
    };
    expect(plan.anomalies.map((a) => a.changeId)).toEqual(plan.changes.map((c) => c.id));
    const bridge = plan.anomalies.find((a) => a.key === 'network:link/br-p9');
    expect(bridge).toMatchObject({ anomalous: true });
    expect(bridge!.reasons.join('\n')).toMatch(/new kind of change/);
    const text = (result.content as { type: string; text: string }[]).map((c) => c.text).join('\n');
    expect(text).toContain('Unusual for this host');
    expect(text).toContain('network:link/br-p9');
  });
});
