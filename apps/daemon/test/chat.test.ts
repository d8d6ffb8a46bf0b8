// The Chat page's tool loop against opdbusd on a network namespace: the real daemon, engine,
// network plugin (rtnetlink), MCP server (in process, its policy) and ledger. The model is a
// scripted stand-in (a small HTTP server answering chat-completions requests): the model is not
// the thing under test, the loop, the approvals and the audit are.
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@opdbus/core';
import { Ledger } from '@opdbus/ledger';
import { OpdbusMcp, Policy } from '@opdbus/mcp';
import { TokenFile, ledgerPaths } from '@opdbus/runtime';
import { builtinPlugins } from '@opdbus/runtime/builtin-plugins';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import type { FastifyInstance } from 'fastify';
import { chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, listen } from '../src/api.js';
import { ChatService, readChatKeyFile, type ChatTurn } from '../src/chat.js';
import { Daemon } from '../src/daemon.js';

const probe = probeSandbox().netns;
const CHROMIUM = '/usr/bin/chromium';
// With OPDBUS_DASHBOARD_SCREENSHOTS=1 the screenshot replaces docs/dashboard/chat.png.
const docsShots = fileURLToPath(new URL('../../../docs/dashboard/', import.meta.url));

const WRITE = 'w'.repeat(8) + Math.random().toString(36).slice(2) + 'A1b2C3d4e5F6g7H8';
const READ = 'r'.repeat(8) + Math.random().toString(36).slice(2) + 'Z9y8X7w6V5u4T3s2';
const KEY = 'sk-test-' + Math.random().toString(36).slice(2);

interface ModelRequest {
  authorization: string | undefined;
  body: {
    model: string;
    messages: { role: string; content: string | null; tool_call_id?: string }[];
    tools: { type: string; function: { name: string } }[];
  };
}

/**
 * The scripted model: with no tool result yet it calls `query`, after one it calls `apply` of a
 * bridge named in the operator's message, after two it answers in text quoting the last result.
 * A latest message starting with `recall` asks what the links are: it calls `query` unless a tool
 * result it was sent (in this request or, kept by the daemon, from an earlier message) names
 * br-seen.
 */
function scriptedModel(requests: ModelRequest[]): Server {
  const answer = (body: ModelRequest['body']): unknown => {
    const results = body.messages.filter((m) => m.role === 'tool');
    const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
    const bridge = /br-[a-z0-9]+/.exec(user)?.[0] ?? 'br-none';
    const call = (name: string, args: unknown) => ({
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: `call-${results.length}`,
          type: 'function',
          function: { name, arguments: JSON.stringify(args) },
        },
      ],
    });
    let latest = '';
    for (const m of body.messages) if (m.role === 'user') latest = m.content ?? '';
    const recalled = results.filter((r) => r.content?.includes('br-seen')).length;
    const message = latest.startsWith('recall')
      ? recalled === 0
        ? call('query', { plugins: ['network'] })
        : { role: 'assistant', content: `Known from ${recalled} earlier tool result(s): br-seen is there.` }
      : user.includes('bogus') && results.length === 0
        ? {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'b1', type: 'function', function: { name: 'no-such-tool', arguments: '{}' } },
              { id: 'b2', type: 'function', function: { name: 'query', arguments: '{not json' } },
            ],
          }
        : user.includes('bogus')
          ? { role: 'assistant', content: `Seen: ${results.map((r) => r.content).join(' | ')}` }
          : results.length === 0
            ? call('query', { plugins: ['network'] })
            : results.length === 1
              ? call('apply', {
                  document: `version: 1\nplugins:\n  network:\n    links:\n      - { name: ${bridge}, kind: bridge, state: up }\n`,
                  commitConfirmed: false,
                })
              : { role: 'assistant', content: `Done. The apply said: ${results[1]!.content!.slice(0, 200)}` };
    return { id: 'x', object: 'chat.completion', choices: [{ index: 0, message, finish_reason: 'stop' }] };
  };
  return createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as ModelRequest['body'];
      requests.push({ authorization: req.headers.authorization, body });
      if (body.messages.some((m) => m.role === 'user' && m.content === 'overloaded')) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"the model is overloaded"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer(body)));
    });
  });
}

let dir: string;
let ns: SandboxNetns;
let daemon: Daemon;
let chat: ChatService;
let app: FastifyInstance;
let model: Server;
let base: string;
const requests: ModelRequest[] = [];

beforeAll(async () => {
  if (!probe.available) return;
  dir = await mkdtemp(join(tmpdir(), 'opdbusd-chat-'));
  ns = await createNetns();
  await ns.exec('ip', ['link', 'add', 'br-seen', 'type', 'bridge'], { check: true });
  await writeFile(join(dir, 'desired.yaml'), 'version: 1\nplugins: {}\n');
  await writeFile(join(dir, 'tokens'), `${WRITE} write operator\n${READ} read viewer\n`);
  await chmod(join(dir, 'tokens'), 0o600);
  await writeFile(join(dir, 'key'), `${KEY}\n`);
  await chmod(join(dir, 'key'), 0o600);
  await writeFile(
    join(dir, 'policy.yaml'),
    'version: 1\nrules:\n  - { tools: apply, plugins: network, action: ask, reason: the operator approves network changes }\n',
  );
  model = scriptedModel(requests);
  await new Promise<void>((resolve) => model.listen(0, '127.0.0.1', resolve));
  const modelPort = (model.address() as { port: number }).port;
  const runtime = { stateDir: join(dir, 'state'), logLevel: 'silent', netns: ns.name };
  const plugins = builtinPlugins();
  daemon = new Daemon({
    runtime,
    desired: join(dir, 'desired.yaml'),
    mode: 'observe',
    plugins,
    logger: silentLogger,
  });
  await daemon.start();
  await daemon.firstSync();
  chat = new ChatService({
    endpoint: `http://127.0.0.1:${modelPort}/v1/chat/completions`,
    model: 'scripted',
    apiKey: readChatKeyFile(join(dir, 'key')),
    mcp: new OpdbusMcp(
      { ...runtime, policy: Policy.load(join(dir, 'policy.yaml')) },
      { plugins, logger: silentLogger },
    ),
    maxToolCalls: 4,
  });
  const listener = { kind: 'tcp' as const, host: '127.0.0.1', port: 0, label: '127.0.0.1:0' };
  app = await buildApi({
    daemon,
    listener,
    tokens: TokenFile.load(join(dir, 'tokens')),
    version: 'test',
    chat,
  });
  await listen(app, listener);
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  if (!probe.available) return;
  await app?.close();
  await chat?.close();
  await daemon?.stop();
  await new Promise((resolve) => model?.close(resolve));
  await ns?.destroy();
  await rm(dir, { recursive: true, force: true });
});

async function post<T>(path: string, token: string, body: unknown): Promise<{ status: number; data: T }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, data: (await res.json()) as T };
}

async function mcpCalls(): Promise<Record<string, unknown>[]> {
  const ledger = await Ledger.open({ dir: ledgerPaths(join(dir, 'state')).ledgerDir, readOnly: true });
  try {
    const out: Record<string, unknown>[] = [];
    for await (const e of ledger.entries()) {
      const value = e.value as Record<string, unknown>;
      if (value.kind === 'mcp.call') out.push(value);
    }
    return out;
  } finally {
    await ledger.close();
  }
}

const linkExists = async (name: string): Promise<boolean> =>
  (await ns.exec('ip', ['link', 'show', name])).code === 0;

describe.skipIf(!probe.available)('the Chat tool loop against opdbusd in a network namespace', () => {
  it('runs query, holds apply for approval, and applies once approved', async () => {
    const first = await post<ChatTurn>('/v1/chat', WRITE, {
      messages: [{ role: 'user', content: 'Create the bridge br-chat1 please.' }],
    });
    expect(first.status).toBe(200);
    // The endpoint got the key, the model name and the MCP tools.
    expect(requests[0]!.authorization).toBe(`Bearer ${KEY}`);
    expect(requests[0]!.body.model).toBe('scripted');
    expect(requests[0]!.body.tools.map((t) => t.function.name)).toEqual(
      expect.arrayContaining(['query', 'plan', 'apply']),
    );
    // The query result (the namespace's links) reached the model.
    const second = requests[1]!.body.messages.at(-1)!;
    expect(second.role).toBe('tool');
    expect(second.content).toContain('br-seen');
    // The apply waits: the plan is shown, nothing changed yet.
    expect(first.data.entries[0]).toMatchObject({ kind: 'tool', tool: 'query', ok: true });
    const pending = first.data.pending!;
    expect(pending).toMatchObject({ tool: 'apply' });
    expect(pending.message).toContain('br-chat1');
    expect(pending.message).toContain('the operator approves network changes');
    expect(await linkExists('br-chat1')).toBe(false);

    // A read token cannot approve; a wrong id is refused.
    expect((await post('/v1/chat/approve', READ, { id: pending.id, approve: true })).status).toBe(403);
    const wrong = await post<{ error: { code: string } }>('/v1/chat/approve', WRITE, {
      id: 'nope',
      approve: true,
    });
    expect(wrong).toMatchObject({ status: 404, data: { error: { code: 'OPDBUS_ERR_CHAT_NO_APPROVAL' } } });

    const approved = await post<ChatTurn>('/v1/chat/approve', WRITE, { id: pending.id, approve: true });
    expect(approved.status).toBe(200);
    expect(approved.data.pending).toBeUndefined();
    expect(approved.data.entries).toEqual([
      expect.objectContaining({ kind: 'notice' }),
      expect.objectContaining({ kind: 'tool', tool: 'apply', ok: true }),
      expect.objectContaining({
        kind: 'assistant',
        content: expect.stringContaining('Committed transaction'),
      }),
    ]);
    expect(await linkExists('br-chat1')).toBe(true);
    // The ledger has both calls, with the token's name and the approval.
    const calls = await mcpCalls();
    expect(calls).toContainEqual(
      expect.objectContaining({ tool: 'query', token: 'operator', transport: 'dashboard' }),
    );
    expect(calls).toContainEqual(
      expect.objectContaining({
        tool: 'apply',
        token: 'operator',
        transport: 'dashboard',
        approval: 'accept',
        actor: expect.objectContaining({ name: 'mcp:opdbus-dashboard-chat/operator' }),
        result: expect.objectContaining({ ok: true }),
      }),
    );
  });

  it('changes nothing when the operator denies', async () => {
    const first = await post<ChatTurn>('/v1/chat', WRITE, {
      messages: [{ role: 'user', content: 'Create the bridge br-chat2.' }],
    });
    const pending = first.data.pending!;
    expect(pending.tool).toBe('apply');
    const denied = await post<ChatTurn>('/v1/chat/approve', WRITE, { id: pending.id, approve: false });
    expect(denied.status).toBe(200);
    expect(denied.data.entries).toContainEqual(
      expect.objectContaining({ kind: 'tool', tool: 'apply', ok: false }),
    );
    expect(await linkExists('br-chat2')).toBe(false);
    expect(await mcpCalls()).toContainEqual(
      expect.objectContaining({
        tool: 'apply',
        token: 'operator',
        approval: 'decline',
        result: expect.objectContaining({ ok: false, code: 'OPDBUS_ERR_MCP_NOT_APPROVED' }),
      }),
    );
    // The id is spent.
    expect((await post('/v1/chat/approve', WRITE, { id: pending.id, approve: true })).status).toBe(404);
  });

  it('keeps the conversation between messages: the model sees the earlier tool results', async () => {
    const said = { role: 'user', content: 'recall the links' };
    const first = await post<ChatTurn>('/v1/chat', READ, { messages: [said] });
    expect(first.status).toBe(200);
    expect(first.data.entries).toEqual([
      expect.objectContaining({ kind: 'tool', tool: 'query', ok: true }),
      { kind: 'assistant', content: 'Known from 1 earlier tool result(s): br-seen is there.' },
    ]);
    const sent = requests.length;
    const again = { role: 'user', content: 'recall them again' };
    const second = await post<ChatTurn>('/v1/chat', READ, {
      messages: [
        said,
        { role: 'assistant', content: 'Known from 1 earlier tool result(s): br-seen is there.' },
        again,
      ],
      conversation: first.data.conversation,
    });
    expect(second.status).toBe(200);
    // No tool was called again: the daemon sent the earlier call and its result with the new message.
    expect(second.data).toMatchObject({ conversation: first.data.conversation, toolCalls: 0 });
    expect(second.data.entries).toEqual([
      { kind: 'assistant', content: 'Known from 1 earlier tool result(s): br-seen is there.' },
    ]);
    expect(requests).toHaveLength(sent + 1);
    const messages = requests.at(-1)!.body.messages;
    expect(messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual([
      'recall the links',
      'recall them again',
    ]);
    expect(messages.filter((m) => m.role === 'tool')).toEqual([
      expect.objectContaining({ content: expect.stringContaining('br-seen') }),
    ]);

    // Another token cannot go on with it: a new conversation starts from the messages, and says so.
    const other = await post<ChatTurn>('/v1/chat', WRITE, {
      messages: [{ role: 'user', content: 'recall once more' }],
      conversation: first.data.conversation,
    });
    expect(other.status).toBe(200);
    expect(other.data.conversation).not.toBe(first.data.conversation);
    expect(other.data.entries).toEqual([
      expect.objectContaining({ kind: 'notice', content: expect.stringMatching(/no longer kept/) }),
      expect.objectContaining({ kind: 'tool', tool: 'query', ok: true }),
      expect.objectContaining({ kind: 'assistant' }),
    ]);
    // The last message must be the operator's.
    const bad = await post<{ error: { code: string } }>('/v1/chat', READ, {
      messages: [{ role: 'assistant', content: 'hi' }],
    });
    expect(bad).toMatchObject({ status: 400, data: { error: { code: 'OPDBUS_ERR_API_BAD_REQUEST' } } });
  });

  it('gives a read token the read tools only', async () => {
    const turn = await post<ChatTurn>('/v1/chat', READ, {
      messages: [{ role: 'user', content: 'Create the bridge br-chat3.' }],
    });
    expect(turn.status).toBe(200);
    expect(turn.data.pending).toBeUndefined();
    expect(turn.data.entries).toContainEqual(
      expect.objectContaining({
        kind: 'tool',
        tool: 'apply',
        ok: false,
        result: expect.stringMatching(/OPDBUS_ERR_MCP_DENIED/),
      }),
    );
    expect(await linkExists('br-chat3')).toBe(false);
  });
});

const shot = (page: Page, name: string): Promise<Buffer> =>
  page.screenshot({
    path: join(process.env.OPDBUS_DASHBOARD_SCREENSHOTS === '1' ? docsShots : dir, `${name}.png`),
    fullPage: true,
  });

describe.skipIf(!probe.available)('the Chat tool loop with a misbehaving model', () => {
  it('tells the model about unknown tools and bad arguments, and goes on', async () => {
    const turn = await post<ChatTurn>('/v1/chat', WRITE, {
      messages: [{ role: 'user', content: 'bogus' }],
    });
    expect(turn.status).toBe(200);
    expect(turn.data.entries).toEqual([
      expect.objectContaining({ kind: 'tool', tool: 'no-such-tool', ok: false }),
      expect.objectContaining({ kind: 'tool', tool: 'query', ok: false, arguments: '{not json' }),
      expect.objectContaining({ kind: 'assistant', content: expect.stringContaining('not a JSON object') }),
    ]);
    expect(turn.data.entries[0]).toMatchObject({ result: expect.stringContaining('no-such-tool') });
    expect(turn.data.toolCalls).toBe(2);
  });
});

describe.skipIf(!probe.available)('the Chat tool loop when the endpoint fails', () => {
  it('answers 502 with what the endpoint said, never the key', async () => {
    const turn = await post<{ error: { code: string; message: string } }>('/v1/chat', WRITE, {
      messages: [{ role: 'user', content: 'overloaded' }],
    });
    expect(turn.status).toBe(502);
    expect(turn.data.error.code).toBe('OPDBUS_ERR_CHAT_ENDPOINT');
    expect(turn.data.error.message).toContain('the model is overloaded');
    expect(turn.data.error.message).not.toContain(KEY);
  });
});

describe.skipIf(!probe.available || !existsSync(CHROMIUM))('the Chat page in Chromium', () => {
  it('sends a message, shows the approval inline, approves by keyboard, shows the answer', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(base);
      await page.getByLabel('Token').fill(WRITE);
      await page.getByLabel('Token').press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      await page.getByRole('link', { name: 'Chat', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'Chat' }).waitFor();
      await page.getByText('scripted').waitFor();
      await page.getByLabel('Message').fill('Create the bridge br-chat4.');
      await page.getByLabel('Message').press('Enter');
      const approval = page.getByRole('group', { name: /Approve apply/ });
      await approval.waitFor();
      await expect(approval.textContent()).resolves.toContain('br-chat4');
      expect(await linkExists('br-chat4')).toBe(false);
      await shot(page, 'chat-approval');
      // Focus is on Approve once the approval shows: Enter approves.
      await expect(page.evaluate('document.activeElement?.textContent?.trim()')).resolves.toBe('Approve');
      await page.keyboard.press('Enter');
      await page.getByText(/Done\. The apply said: Committed transaction/).waitFor();
      expect(await linkExists('br-chat4')).toBe(true);
      await expect(page.evaluate('document.activeElement?.id')).resolves.toBe('chat-message');
      // The next message goes on with the same conversation: the model answers from the query
      // result it got before, without calling a tool again.
      const tools = await page.locator('li.chat-tool').count();
      await page.getByLabel('Message').fill('recall the links');
      await page.getByLabel('Message').press('Enter');
      await page.getByText('Known from 1 earlier tool result(s): br-seen is there.').waitFor();
      await expect(page.locator('li.chat-tool').count()).resolves.toBe(tools);
      await shot(page, 'chat');
    } finally {
      await browser.close();
    }
  });

  it('says how to configure a model when the daemon has none', async () => {
    const listener = { kind: 'tcp' as const, host: '127.0.0.1', port: 0, label: '127.0.0.1:0' };
    const bare = await buildApi({
      daemon,
      listener,
      tokens: TokenFile.load(join(dir, 'tokens')),
      version: 'test',
    });
    await listen(bare, listener);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(bare.server.address() as { port: number }).port}/#/chat`);
      await page.getByLabel('Token').fill(READ);
      await page.getByLabel('Token').press('Enter');
      const help = page.getByTestId('chat-unconfigured');
      await help.waitFor();
      await expect(help.textContent()).resolves.toContain('--chat-endpoint');
      const res = await fetch(
        `http://127.0.0.1:${(bare.server.address() as { port: number }).port}/v1/chat`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${READ}`, 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
        },
      );
      expect(res.status).toBe(503);
      await expect(res.json()).resolves.toMatchObject({ error: { code: 'OPDBUS_ERR_CHAT_NOT_CONFIGURED' } });
    } finally {
      await browser.close();
      await bare.close();
    }
  });
});
