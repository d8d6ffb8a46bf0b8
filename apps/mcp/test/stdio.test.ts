import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callTool, errorCode, ledgerEntries, mcpBin } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

const POLICY = `version: 1
rules:
  - { tools: [apply, rollback, confirm], plugins: network, action: ask }
  - { tools: apply, plugins: sysctl, action: deny, reason: sysctl is managed by configuration management }
`;

const bridge = (name: string): string =>
  `version: 1\nplugins:\n  network:\n    links:\n      - { name: ${name}, kind: bridge, state: up }\n`;

describeIf(asRoot, 'opdbus-mcp over stdio, with the SDK client, acting in a network namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  let stateDir: string;
  let client: Client;
  let plainClient: Client;
  const asked: string[] = [];
  let answer: ElicitResult = { action: 'accept', content: { approve: true } };

  const connect = async (name: string, elicitation: boolean, extra: string[] = []): Promise<Client> => {
    const c = new Client(
      { name, version: '1.0.0' },
      { capabilities: elicitation ? { elicitation: { form: {} } } : {} },
    );
    if (elicitation)
      c.setRequestHandler(ElicitRequestSchema, (request) => {
        asked.push(request.params.message);
        return answer;
      });
    await c.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [
          mcpBin,
          '--netns',
          netns.name,
          '--state-dir',
          stateDir,
          '--policy',
          join(dir, 'policy.yaml'),
          '--write-rate',
          '120',
          ...extra,
        ],
        stderr: 'pipe',
      }),
    );
    return c;
  };

  const links = async (): Promise<string[]> =>
    (JSON.parse((await netns.exec('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[]).map(
      (l) => l.ifname,
    );

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-stdio-'));
    stateDir = join(dir, 'state');
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    client = await connect('opdbus-test-agent', true);
    plainClient = await connect('plain-agent', false);
  });
  afterAll(async () => {
    await client?.close();
    await plainClient?.close();
    await netns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('initializes with protocol 2025-11-25 and lists the tools with schemas and annotations', async () => {
    expect(client.getServerVersion()?.name).toBe('opdbus-mcp');
    expect(client.getServerCapabilities()).toMatchObject({
      tools: {},
      resources: {},
      prompts: {},
      logging: {},
    });
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const name of [
      'query',
      'plan',
      'apply',
      'confirm',
      'rollback',
      'transactions',
      'ledger_entries',
      'ledger_verify',
      'ledger_proof',
      'snapshots_list',
      'numa_topology',
    ])
      expect(byName.has(name), name).toBe(true);
    expect(byName.get('apply')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('query')?.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true });
    expect(byName.get('apply')?.inputSchema.required).toEqual(['document']);
    expect(byName.get('plan')?.outputSchema?.properties).toHaveProperty('changes');
  });

  it('queries the network plugin in the namespace', async () => {
    const result = await callTool(client, 'query', { plugins: ['network'] });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    const network = (result.structuredContent as { plugins: { network: { links: { name: string }[] } } })
      .plugins.network;
    expect(network.links.map((l) => l.name)).toContain('lo');
  });

  it('plans a document: the ordered changes, their risks, and what the policy would do', async () => {
    const result = await callTool(client, 'plan', { document: bridge('brmcp0') });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    const plan = result.structuredContent as {
      changes: { plugin: string; resource: string; op: string }[];
      applyPolicy: string;
      planHash: string;
    };
    expect(plan.changes).toEqual([
      expect.objectContaining({ plugin: 'network', resource: 'link/brmcp0', op: 'create' }),
    ]);
    expect(plan.applyPolicy).toBe('ask');
    expect(await links()).not.toContain('brmcp0');
  });

  it('applies after a human approves the plan through elicitation; commit-confirmed until confirmed', async () => {
    asked.length = 0;
    answer = { action: 'accept', content: { approve: true } };
    const result = await callTool(client, 'apply', { document: bridge('brmcp0'), confirmTimeoutS: 300 });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain('network create link/brmcp0');
    expect(asked[0]).toContain('Commit-confirmed');
    const applied = result.structuredContent as { status: string; txId: string; deadline: string };
    expect(applied.status).toBe('pending-confirm');
    expect(await links()).toContain('brmcp0');

    const confirmed = await callTool(client, 'confirm', { txId: applied.txId });
    expect(confirmed.isError, JSON.stringify(confirmed.content)).toBeFalsy();
    expect(confirmed.structuredContent).toMatchObject({
      transaction: { txId: applied.txId, status: 'committed' },
    });
    const txs = await callTool(client, 'transactions');
    expect(
      (txs.structuredContent as { transactions: { txId: string; actor: string }[] }).transactions,
    ).toContainEqual(expect.objectContaining({ txId: applied.txId, actor: 'mcp:opdbus-test-agent' }));
  });

  it('changes nothing when the human declines', async () => {
    asked.length = 0;
    answer = { action: 'decline' };
    const result = await callTool(client, 'apply', { document: bridge('brmcp1') });
    expect(errorCode(result)).toBe('OPDBUS_ERR_MCP_NOT_APPROVED');
    expect(asked).toHaveLength(1);
    expect(await links()).not.toContain('brmcp1');
  });

  it('refuses what the policy denies, and an ask to a client that cannot elicit', async () => {
    const denied = await callTool(client, 'apply', {
      document: 'version: 1\nplugins:\n  sysctl: { net.ipv4.ip_forward: "1" }\n',
    });
    expect(errorCode(denied)).toBe('OPDBUS_ERR_MCP_DENIED');
    expect(JSON.stringify(denied.content)).toContain('configuration management');
    expect((await netns.exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('0');

    const cannot = await plainClient.callTool({ name: 'apply', arguments: { document: bridge('brmcp2') } });
    expect(errorCode(cannot as never)).toBe('OPDBUS_ERR_MCP_CANNOT_ASK');
    expect(JSON.stringify(cannot.content)).toMatch(/cannot ask one.*elicitation/);
    expect(await links()).not.toContain('brmcp2');
  });

  it('applies then rolls back, both approved', async () => {
    answer = { action: 'accept', content: { approve: true } };
    const applied = await callTool(client, 'apply', { document: bridge('brmcp3'), commitConfirmed: false });
    expect(applied.isError, JSON.stringify(applied.content)).toBeFalsy();
    const { txId, status } = applied.structuredContent as { txId: string; status: string };
    expect(status).toBe('committed');
    expect(await links()).toContain('brmcp3');
    const rolled = await callTool(client, 'rollback', { txId });
    expect(rolled.isError, JSON.stringify(rolled.content)).toBeFalsy();
    expect(rolled.structuredContent).toMatchObject({ transaction: { txId, status: 'rolled-back' } });
    expect(await links()).not.toContain('brmcp3');
  });

  it('rate-limits write calls per session, refused calls included', async () => {
    const limited = await connect('hasty-agent', true, ['--write-rate', '1']);
    try {
      const doc = 'version: 1\nplugins:\n  sysctl: { net.ipv4.ip_forward: "1" }\n';
      expect(errorCode(await callTool(limited, 'apply', { document: doc }))).toBe('OPDBUS_ERR_MCP_DENIED');
      const second = await callTool(limited, 'apply', { document: doc });
      expect(errorCode(second)).toBe('OPDBUS_ERR_MCP_RATE_LIMITED');
      expect(JSON.stringify(second.content)).toMatch(/retry in \d+ s/);
      expect((await callTool(limited, 'transactions')).isError).toBeFalsy();
    } finally {
      await limited.close();
    }
  });

  it('turns a bad document into a tool error with the code, not a crash', async () => {
    const result = await callTool(client, 'plan', {
      document: 'version: 1\nplugins:\n  network: { linkz: [] }\n',
    });
    expect(errorCode(result)).toBe('OPDBUS_ERR_STATE_INVALID');
    const again = await callTool(client, 'query', { plugins: ['network'] });
    expect(again.isError).toBeFalsy();
  });

  it('serves the resources and prompts', async () => {
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toEqual(
      expect.arrayContaining([
        'opdbus://state/network',
        'opdbus://schema',
        'opdbus://ledger/checkpoint',
        'opdbus://transactions',
      ]),
    );
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain('opdbus://state/{plugin}');
    const state = await client.readResource({ uri: 'opdbus://state/network' });
    expect(JSON.parse((state.contents[0] as { text: string }).text)).toHaveProperty('links');
    const checkpoint = await client.readResource({ uri: 'opdbus://ledger/checkpoint' });
    expect((checkpoint.contents[0] as { text: string }).text).toMatch(/\/opdbus\n\d+\n/);
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual([
      'diagnose_drift',
      'plan_change_safely',
      'explain_transaction',
    ]);
    const prompt = await client.getPrompt({
      name: 'diagnose_drift',
      arguments: { document: bridge('brmcp0') },
    });
    expect(JSON.stringify(prompt.messages)).toContain('`plan` tool');
  });

  it('records every tool call, allowed or refused, in the ledger, and the ledger verifies', async () => {
    const calls = await ledgerEntries(stateDir, 'mcp.call');
    const summary = calls.map(
      (c) =>
        `${c.tool as string}:${(c.decision as { action: string } | null)?.action ?? 'none'}:${(c.result as { ok: boolean }).ok}`,
    );
    expect(summary).toEqual(
      expect.arrayContaining([
        'query:allow:true',
        'plan:allow:true',
        'apply:ask:true',
        'confirm:ask:true',
        'apply:ask:false',
        'apply:deny:false',
        'rollback:ask:true',
        'plan:none:false',
      ]),
    );
    const approved = calls.find((c) => c.tool === 'apply' && c.approval === 'accept');
    expect(approved).toMatchObject({
      actor: { kind: 'mcp', name: 'mcp:opdbus-test-agent' },
      client: { name: 'opdbus-test-agent', version: '1.0.0' },
      transport: 'stdio',
      arguments: { document: { $hash: expect.stringMatching(/^sha256:/) } },
    });
    const refused = calls.find((c) => (c.client as { name: string }).name === 'plain-agent');
    expect(refused).toMatchObject({
      approval: 'unavailable',
      result: { ok: false, code: 'OPDBUS_ERR_MCP_CANNOT_ASK' },
    });
    const verified = await callTool(client, 'ledger_verify');
    expect(verified.structuredContent).toMatchObject({ ok: true });
    const proof = await callTool(client, 'ledger_proof', { index: 0 });
    expect(proof.structuredContent).toMatchObject({
      index: 0,
      proof: expect.any(Array),
      checkpoint: expect.any(String),
    });
  });
});
