import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callTool, errorCode, ledgerEntries, mcpBin, startHttpServer, stopServer } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
const WRITE = 'write-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-http', version: '1' } },
};

/** POST one JSON-RPC message; the response status, headers and body text. */
async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Open a session with a raw initialize; its id. */
async function openSession(url: string, headers: Record<string, string>): Promise<string> {
  const res = await post(url, initialize, headers);
  expect(res.status, res.text).toBe(200);
  const id = res.headers.get('mcp-session-id');
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  await post(
    url,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { ...headers, 'mcp-session-id': id!, 'mcp-protocol-version': '2025-11-25' },
  );
  return id!;
}

describe('opdbus-mcp --http refuses to listen off loopback without authentication', () => {
  it('exits with OPDBUS_ERR_MCP_UNSAFE_LISTEN', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-unsafe-'));
    try {
      const run = promisify(execFile)(process.execPath, [
        mcpBin,
        '--http',
        '0.0.0.0:0',
        '--state-dir',
        join(dir, 's'),
      ]);
      await expect(run).rejects.toMatchObject({
        stderr: expect.stringContaining('OPDBUS_ERR_MCP_UNSAFE_LISTEN'),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describeIf(
  asRoot,
  'opdbus-mcp over Streamable HTTP with bearer tokens, acting in a network namespace',
  () => {
    let netns: SandboxNetns;
    let dir: string;
    let stateDir: string;
    let server: ChildProcess | undefined;
    let url: string;
    const auth = (token: string) => ({ authorization: `Bearer ${token}` });

    beforeAll(async () => {
      netns = await createNetns();
      dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-http-'));
      stateDir = join(dir, 'state');
      await writeFile(join(dir, 'tokens'), `${WRITE} write agent-ci\n${READ} read viewer\n`);
      await chmod(join(dir, 'tokens'), 0o600);
      await writeFile(
        join(dir, 'policy.yaml'),
        'version: 1\nrules:\n  - { tools: [apply, rollback, confirm], plugins: network, action: ask }\n',
      );
      ({ child: server, url } = await startHttpServer([
        '--http',
        '127.0.0.1:0',
        '--netns',
        netns.name,
        '--state-dir',
        stateDir,
        '--token-file',
        join(dir, 'tokens'),
        '--policy',
        join(dir, 'policy.yaml'),
      ]));
    });
    afterAll(async () => {
      await stopServer(server);
      await netns?.destroy();
      await rm(dir, { recursive: true, force: true });
    });

    it('answers 401 with WWW-Authenticate without a token or with an unknown one', async () => {
      const none = await post(url, initialize);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="opdbus-mcp"/);
      const wrong = await post(url, initialize, auth('not-a-token-0123456789'));
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    });

    it('answers 403 to a foreign Origin and to a Host that is not loopback (DNS rebinding)', async () => {
      const origin = await post(url, initialize, { ...auth(WRITE), origin: 'http://evil.example' });
      expect(origin.status).toBe(403);
      const port = new URL(url).port;
      const ours = await post(url, initialize, { ...auth(WRITE), origin: `http://localhost:${port}` });
      expect(ours.status).toBe(200);
      // fetch does not let a Host header be set: node:http does.
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request(url, {
          method: 'POST',
          headers: {
            ...auth(WRITE),
            host: `evil.example:${port}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
        });
        req.once('response', (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.once('error', reject);
        req.end(JSON.stringify(initialize));
      });
      expect(status).toBe(403);
    });

    it('answers 403 insufficient_scope to a read token calling apply, and records it', async () => {
      const session = await openSession(url, auth(READ));
      const headers = { ...auth(READ), 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
      const query = await post(
        url,
        {
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'query', arguments: { plugins: ['network'] } },
        },
        headers,
      );
      expect(query.status).toBe(200);
      expect(query.text).toContain('"lo"');
      const apply = await post(
        url,
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/call',
          params: { name: 'apply', arguments: { document: 'version: 1\nplugins: {}\n' } },
        },
        headers,
      );
      expect(apply.status).toBe(403);
      expect(apply.headers.get('www-authenticate')).toMatch(/error="insufficient_scope", scope="write"/);
      const failures = await ledgerEntries(stateDir, 'mcp.auth-failed');
      expect(failures).toContainEqual(
        expect.objectContaining({ status: 403, token: 'viewer', tool: 'apply' }),
      );
      expect(failures).toContainEqual(expect.objectContaining({ status: 401 }));
    });

    it('answers 400 to an unsupported MCP-Protocol-Version, 404 once a session ended, 403 to another token', async () => {
      const session = await openSession(url, auth(WRITE));
      const ping = { jsonrpc: '2.0', id: 9, method: 'ping' };
      const bad = await post(url, ping, {
        ...auth(WRITE),
        'mcp-session-id': session,
        'mcp-protocol-version': '1999-01-01',
      });
      expect(bad.status).toBe(400);
      const good = { ...auth(WRITE), 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
      expect((await post(url, ping, good)).status).toBe(200);
      const other = await post(url, ping, { ...good, ...auth(READ) });
      expect(other.status).toBe(403);
      const ended = await fetch(url, { method: 'DELETE', headers: good });
      expect(ended.status).toBe(200);
      expect((await post(url, ping, good)).status).toBe(404);
      expect(
        (await post(url, ping, { ...good, 'mcp-session-id': 'ffffffff-0000-4000-8000-000000000000' })).status,
      ).toBe(404);
    });

    it('lets the SDK client with a write token apply after approval, then roll back', async () => {
      const client = new Client(
        { name: 'http-agent', version: '2.0.0' },
        { capabilities: { elicitation: { form: {} } } },
      );
      const asked: string[] = [];
      client.setRequestHandler(ElicitRequestSchema, (request) => {
        asked.push(request.params.message);
        return { action: 'accept', content: { approve: true } };
      });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth(WRITE) } }),
      );
      try {
        const doc =
          'version: 1\nplugins:\n  network:\n    links:\n      - { name: brhttp0, kind: bridge, state: up }\n';
        const plan = await callTool(client, 'plan', { document: doc });
        expect(plan.structuredContent).toMatchObject({
          applyPolicy: 'ask',
          changes: [expect.objectContaining({ resource: 'link/brhttp0' })],
        });
        const applied = await callTool(client, 'apply', {
          document: doc,
          planHash: (plan.structuredContent as { planHash: string }).planHash,
        });
        expect(applied.isError, JSON.stringify(applied.content)).toBeFalsy();
        expect(asked[0]).toContain('network create link/brhttp0');
        const { txId, status } = applied.structuredContent as { txId: string; status: string };
        expect(status).toBe('pending-confirm');
        expect((await netns.exec('ip', ['link', 'show', 'brhttp0'])).stdout).toContain('brhttp0');
        const rolled = await callTool(client, 'rollback', { txId });
        expect(rolled.structuredContent).toMatchObject({ transaction: { txId, status: 'rolled-back' } });
        expect((await netns.exec('ip', ['link', 'show', 'brhttp0'])).code).not.toBe(0);
        const calls = await ledgerEntries(stateDir, 'mcp.call');
        expect(calls).toContainEqual(
          expect.objectContaining({
            tool: 'apply',
            token: 'agent-ci',
            transport: 'http',
            approval: 'accept',
            actor: expect.objectContaining({ name: 'mcp:http-agent/agent-ci' }),
          }),
        );
      } finally {
        await client.close();
      }
    });
  },
);

describeIf(asRoot, 'opdbus-mcp --http on loopback without a token file', () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-ro-'));
    ({ child: server, url } = await startHttpServer([
      '--http',
      '127.0.0.1:0',
      '--state-dir',
      join(dir, 'state'),
    ]));
  });
  afterAll(async () => {
    await stopServer(server);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves unauthenticated and read-only: reads work, apply is refused with the reason', async () => {
    const client = new Client({ name: 'local-agent', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    try {
      const q = await callTool(client, 'transactions');
      expect(q.isError).toBeFalsy();
      const apply = await callTool(client, 'apply', { document: 'version: 1\nplugins: {}\n' });
      expect(errorCode(apply)).toBe('OPDBUS_ERR_MCP_DENIED');
      expect(JSON.stringify(apply.content)).toContain('read-only');
    } finally {
      await client.close();
    }
  });
});
