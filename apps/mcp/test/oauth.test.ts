// opdbus-mcp as an OAuth 2.1 resource server, as a real process: JWT access tokens issued here by
// a test issuer (its own ES256 key, published as a JWKS file), verified by the server against the
// issuer and its resource URL as audience; RFC 9728 metadata; 401 / 403 as the MCP spec says.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callTool, ledgerEntries, startHttpServer, stopServer } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');
const ISSUER = 'https://issuer.opdbus.test';

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-http', version: '1' } },
};

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

describeIf(asRoot, 'opdbus-mcp --oauth-issuer: OAuth 2.1 resource server', () => {
  let netns: SandboxNetns;
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;
  let key: CryptoKey;
  let otherKey: CryptoKey;

  const token = (claims: { scope?: string; aud?: string; sub?: string }, signWith = key) =>
    new SignJWT({ scope: claims.scope ?? 'read', client_id: 'test-agent' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setSubject(claims.sub ?? 'alice')
      .setAudience(claims.aud ?? url)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signWith);
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-mcp-oauth-'));
    ({ privateKey: otherKey } = await generateKeyPair('ES256'));
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    ({ child: server, url } = await startHttpServer([
      '--http',
      '127.0.0.1:0',
      '--netns',
      netns.name,
      '--state-dir',
      join(dir, 'state'),
      '--oauth-issuer',
      ISSUER,
      '--oauth-jwks',
      join(dir, 'jwks.json'),
    ]));
  }, 60_000);
  afterAll(async () => {
    await stopServer(server);
    await netns?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('publishes RFC 9728 protected resource metadata naming the issuer', async () => {
    const metadataUrl = new URL('/.well-known/oauth-protected-resource/mcp', url).href;
    const res = await fetch(metadataUrl);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      resource: url,
      authorization_servers: [ISSUER],
      scopes_supported: ['read', 'write'],
      bearer_methods_supported: ['header'],
    });
    const root = await fetch(new URL('/.well-known/oauth-protected-resource', url));
    expect(((await root.json()) as { resource: string }).resource).toBe(url);
  });

  it('answers 401 with WWW-Authenticate resource_metadata without a token, for another audience, or another key', async () => {
    const metadata = `resource_metadata="${new URL('/.well-known/oauth-protected-resource/mcp', url).href}"`;
    const none = await post(url, initialize);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain(metadata);
    const wrongAudience = await post(
      url,
      initialize,
      bearer(await token({ aud: 'https://elsewhere.test/mcp' })),
    );
    expect(wrongAudience.status).toBe(401);
    expect(wrongAudience.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(wrongAudience.headers.get('www-authenticate')).toContain(metadata);
    expect(wrongAudience.text).toContain('aud');
    const forged = await post(url, initialize, bearer(await token({}, otherKey)));
    expect(forged.status).toBe(401);
    const noScope = await post(url, initialize, bearer(await token({ scope: 'profile' })));
    expect(noScope.status).toBe(403);
    expect(noScope.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
  });

  it('lets a read-scoped token query and answers 403 insufficient_scope to its apply, recorded in the ledger', async () => {
    const read = await token({ scope: 'read', sub: 'viewer' });
    const opened = await post(url, initialize, bearer(read));
    expect(opened.status, opened.text).toBe(200);
    const session = opened.headers.get('mcp-session-id')!;
    const headers = { ...bearer(read), 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers);
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
    expect(apply.headers.get('www-authenticate')).toContain('resource_metadata=');
    const refused = await ledgerEntries(join(dir, 'state'), 'mcp.auth-failed');
    expect(refused).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ status: 403, token: 'oauth:viewer', tool: 'apply' }),
        expect.objectContaining({ status: 401 }),
      ]),
    );
  });

  it('serves the SDK client with a write-scoped access token', async () => {
    const write = await token({ scope: 'read write', sub: 'agent' });
    const client = new Client({ name: 'oauth-client', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: bearer(write) } }),
    );
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain('apply');
      const result = await callTool(client, 'query', { plugins: ['network'] });
      expect(result.isError).not.toBe(true);
      const calls = await ledgerEntries(join(dir, 'state'), 'mcp.call');
      expect(calls.at(-1)).toMatchObject({ tool: 'query', token: 'oauth:agent' });
    } finally {
      await client.close();
    }
  });
});
