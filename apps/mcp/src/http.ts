import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { OpdbusError } from '@opdbus/core';
import { TokenFile, type TokenIdentity } from '@opdbus/runtime';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BoundedEventStore } from './eventStore.js';
import { isWriteTool } from './policy.js';
import { TokenBucket } from './rateLimit.js';
import type { OpdbusMcp } from './service.js';
import { OAuthRefusal, OAuthResourceServer, type OAuthOptions } from './oauth.js';

/** Options of {@link startHttp}. */
export interface HttpOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (0: any free one). */
  port: number;
  /** Bearer tokens (scopes read / write). Required unless the address is loopback (or `oauth` is given). */
  tokens?: TokenFile;
  /** OAuth 2.1 resource-server mode: JWT access tokens from this issuer (instead of a token file). */
  oauth?: OAuthOptions;
  /** Origins allowed besides the listener's own loopback ones (e.g. `https://dashboard.example`). */
  allowedOrigins?: string[];
  /** Host header names allowed on a non-loopback listener (default: any; loopback: only loopback names). */
  allowedHosts?: string[];
  /** Sessions at once (default 64); an initialize beyond is answered 503. */
  maxSessions?: number;
  /** A session unused this long is closed (default 30 minutes). */
  sessionIdleMs?: number;
}

/** A running Streamable HTTP endpoint. */
export interface HttpEndpoint {
  /** The MCP endpoint, e.g. `http://127.0.0.1:8765/mcp`. */
  url: string;
  /** Sessions open now. */
  sessions(): number;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** Whether a listen address is a loopback one (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return (
    host === 'localhost' ||
    host === '::1' ||
    host === '[::1]' ||
    (isIP(host) === 4 && host.startsWith('127.'))
  );
}

/** Parse `HOST:PORT` (`[::1]:8765`, `127.0.0.1:0`, or a bare port). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port > 65535)
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `--http takes HOST:PORT (e.g. 127.0.0.1:8765, [::1]:8765) or a port, got "${text.slice(0, 100)}".`,
    );
  return { host: match[1] || match[2] || '127.0.0.1', port };
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  /** The token that opened it (null: unauthenticated); every request of the session must show it. */
  token: string | null;
  lastSeen: number;
}

function jsonRpcError(
  reply: FastifyReply,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): FastifyReply {
  for (const [k, v] of Object.entries(headers)) void reply.header(k, v);
  return reply.code(status).send({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
}

/** Tool names of the `tools/call` requests in a POST body (a message or a batch). */
function calledTools(body: unknown): string[] {
  const messages = Array.isArray(body) ? (body as unknown[]) : [body];
  return messages.flatMap((m) => {
    if (typeof m !== 'object' || m === null) return [];
    const { method, params } = m as { method?: unknown; params?: { name?: unknown } };
    return method === 'tools/call' && typeof params?.name === 'string' ? [params.name] : [];
  });
}

/**
 * Serve MCP over Streamable HTTP at `/mcp` (fastify): sessions with cryptographically random ids
 * (never taken as authentication: every request is authenticated on its own and must come with
 * the token that opened its session), SSE streams with resumability, Origin validation (403) and
 * Host validation on loopback listeners (DNS rebinding), bearer tokens from a token file (401 with
 * WWW-Authenticate; 403 `insufficient_scope` for a read token calling a write tool), 404 for an
 * ended session and 400 for an unsupported MCP-Protocol-Version (the SDK's transport). Without a
 * token file it serves only on a loopback address, unauthenticated and read-only.
 */
/** Options of {@link registerMcpRoutes}. */
export interface McpRoutesOptions {
  /** Bearer tokens; without (and without `oauth`), every request is unauthenticated and read-only. */
  tokens?: TokenFile;
  /** OAuth resource-server mode: access tokens are JWTs verified by this (RFC 9728 metadata served). */
  oauth?: OAuthResourceServer;
  /** Whether the listener is on a loopback address (then only loopback Host names are accepted). */
  loopback: boolean;
  /** The Origin header values accepted (read per request: a listener knows its port late). */
  origins: () => ReadonlySet<string>;
  /** Host header names allowed on a non-loopback listener (default: any). */
  allowedHosts?: string[];
  /** Sessions at once (default 64). */
  maxSessions?: number;
  /** A session unused this long is closed (default 30 minutes). */
  sessionIdleMs?: number;
  /** The route (default `/mcp`). */
  path?: string;
}

/**
 * Add the MCP endpoint to a fastify instance (the daemon mounts it beside its API; {@link startHttp}
 * runs it alone). See {@link startHttp} for what it enforces.
 */
export function registerMcpRoutes(
  app: FastifyInstance,
  mcp: OpdbusMcp,
  options: McpRoutesOptions,
): { sessions(): number; close(): Promise<void> } {
  const { tokens, loopback, oauth } = options;
  const maxSessions = options.maxSessions ?? 64;
  const idleMs = options.sessionIdleMs ?? 30 * 60_000;
  const sessions = new Map<string, Session>();
  // Refused requests are recorded in the ledger, at most this often (a flood must not fill it).
  const failureRecords = new TokenBucket({ perMinute: 60, burst: 20 });

  // Recorded before the answer, so that what the client saw is in the ledger when it sees it.
  const recordFailure = async (
    request: FastifyRequest,
    status: 401 | 403,
    reason: string,
    token: string | null,
    tool: string | null,
  ): Promise<void> => {
    if (!failureRecords.take().ok) return;
    try {
      await mcp.calls.recordAuthFailure({ status, reason, remote: request.ip ?? null, token, tool });
    } catch (err) {
      mcp.logger.error({ err }, 'could not record an auth failure in the ledger');
    }
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    // DNS rebinding: a loopback listener answers only to loopback Host names, and any Origin
    // must be one of ours (or allowed by the operator).
    const hostHeader = request.headers.host;
    let hostname: string | undefined;
    try {
      hostname = hostHeader === undefined ? undefined : new URL(`http://${hostHeader}`).hostname;
    } catch {
      hostname = undefined;
    }
    if (hostname === undefined) return jsonRpcError(reply, 403, 'Forbidden: missing or invalid Host header');
    if (loopback && !LOOPBACK_NAMES.includes(hostname))
      return jsonRpcError(
        reply,
        403,
        `Forbidden: Host ${hostname} is not this loopback server (DNS rebinding protection)`,
      );
    if (!loopback && options.allowedHosts !== undefined && !options.allowedHosts.includes(hostname))
      return jsonRpcError(reply, 403, `Forbidden: Host ${hostname} is not allowed`);
    const origin = request.headers.origin;
    if (origin !== undefined && !options.origins().has(origin))
      return jsonRpcError(reply, 403, `Forbidden: Origin ${origin.slice(0, 200)} is not allowed`);

    let identity: TokenIdentity | undefined;
    // Where a client learns how to get a token (RFC 9728), in every OAuth challenge.
    const challenge = (extra: string): string =>
      `Bearer resource_metadata="${oauth?.metadataUrl() ?? ''}"${extra === '' ? '' : `, ${extra}`}`;
    if (oauth !== undefined) {
      const presented = TokenFile.bearer(request.headers.authorization);
      if (presented === undefined) {
        await recordFailure(request, 401, 'no bearer token', null, null);
        return jsonRpcError(reply, 401, 'Unauthorized: an OAuth access token is required', {
          'WWW-Authenticate': challenge('scope="read write"'),
        });
      }
      try {
        identity = await oauth.verify(presented);
      } catch (err) {
        if (!(err instanceof OAuthRefusal)) throw err;
        const status = err.error === 'invalid_token' ? 401 : 403;
        await recordFailure(request, status, err.message, null, null);
        return jsonRpcError(
          reply,
          status,
          `${status === 401 ? 'Unauthorized' : 'Forbidden'}: ${err.message}`,
          {
            'WWW-Authenticate': challenge(
              `error="${err.error}", error_description="${err.message.replace(/"/g, "'")}"${status === 403 ? ', scope="read"' : ''}`,
            ),
          },
        );
      }
    }
    if (oauth !== undefined && identity !== undefined && request.method === 'POST') {
      const write = calledTools(request.body).filter(isWriteTool);
      if (write.length > 0 && !TokenFile.allows(identity, 'write')) {
        await recordFailure(request, 403, 'insufficient scope', identity.name, write.join(','));
        return jsonRpcError(
          reply,
          403,
          `Forbidden: the access token of ${identity.name} has the read scope; ${write.join(', ')} needs the write scope`,
          {
            'WWW-Authenticate': challenge(
              `error="insufficient_scope", scope="write", error_description="${write.join(',')} needs the write scope"`,
            ),
          },
        );
      }
    } else if (tokens !== undefined) {
      const presented = TokenFile.bearer(request.headers.authorization);
      identity = presented === undefined ? undefined : tokens.check(presented);
      if (identity === undefined) {
        await recordFailure(
          request,
          401,
          presented === undefined ? 'no bearer token' : 'unknown token',
          null,
          null,
        );
        return jsonRpcError(reply, 401, 'Unauthorized: a bearer token from the token file is required', {
          'WWW-Authenticate':
            presented === undefined
              ? 'Bearer realm="opdbus-mcp", scope="read write"'
              : 'Bearer realm="opdbus-mcp", error="invalid_token", error_description="unknown token"',
        });
      }
      if (request.method === 'POST') {
        const write = calledTools(request.body).filter(isWriteTool);
        if (write.length > 0 && !TokenFile.allows(identity, 'write')) {
          await recordFailure(request, 403, 'insufficient scope', identity.name, write.join(','));
          return jsonRpcError(
            reply,
            403,
            `Forbidden: the token "${identity.name}" has the read scope; ${write.join(', ')} needs a write token`,
            {
              'WWW-Authenticate': `Bearer realm="opdbus-mcp", error="insufficient_scope", scope="write", error_description="${write.join(',')} needs the write scope"`,
            },
          );
        }
      }
    }

    const sessionId = request.headers['mcp-session-id'];
    let session: Session | undefined;
    if (typeof sessionId === 'string') {
      session = sessions.get(sessionId);
      if (session === undefined)
        return jsonRpcError(reply, 404, 'Session not found: it ended or never existed; initialize a new one');
      if (session.token !== (identity?.name ?? null))
        return jsonRpcError(reply, 403, 'Forbidden: this session was opened with another token');
    } else if (request.method === 'POST' && isInitializeRequest(request.body)) {
      if (sessions.size >= maxSessions)
        return jsonRpcError(
          reply,
          503,
          `Too many sessions (${maxSessions}); end one (DELETE) or retry later`,
        );
      const server = mcp.createServer({
        transport: 'http',
        ...(identity === undefined ? {} : { token: identity }),
        scope: identity?.scope ?? 'read',
        sessionId: () => transport.sessionId,
      });
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new BoundedEventStore(),
        onsessioninitialized: (id) => {
          sessions.set(id, created);
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
        },
      });
      const created: Session = { transport, server, token: identity?.name ?? null, lastSeen: Date.now() };
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      session = created;
    } else {
      return jsonRpcError(
        reply,
        400,
        'Bad Request: no Mcp-Session-Id header; start with an initialize request',
      );
    }
    session.lastSeen = Date.now();
    reply.hijack();
    await session.transport.handleRequest(request.raw, reply.raw, request.body);
    return undefined;
  };

  app.route({ method: ['GET', 'POST', 'DELETE'], url: options.path ?? '/mcp', handler: handle });
  if (oauth !== undefined) {
    // RFC 9728: at the well-known path, and at it with the resource's path appended (as MCP clients look).
    const metadata = async (_request: FastifyRequest, reply: FastifyReply) =>
      reply.header('cache-control', 'max-age=300').send(oauth.metadata());
    const path = options.path ?? '/mcp';
    app.get('/.well-known/oauth-protected-resource', metadata);
    app.get(`/.well-known/oauth-protected-resource${path}`, metadata);
  }

  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [id, s] of sessions) {
        if (now - s.lastSeen > idleMs) {
          sessions.delete(id);
          void s.server.close().catch((err: unknown) => mcp.logger.debug({ err }, 'closing an idle session'));
        }
      }
    },
    Math.min(idleMs, 60_000),
  );
  sweep.unref();

  return {
    sessions: () => sessions.size,
    close: async () => {
      clearInterval(sweep);
      for (const s of sessions.values())
        await s.server.close().catch((err: unknown) => mcp.logger.debug({ err }, 'closing a session'));
      sessions.clear();
    },
  };
}

export async function startHttp(mcp: OpdbusMcp, options: HttpOptions): Promise<HttpEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  if (options.tokens !== undefined && options.oauth !== undefined)
    throw new OpdbusError(
      'OPDBUS_ERR_MCP_UNSAFE_LISTEN',
      'Give either --token-file (bearer tokens) or --oauth-issuer/--oauth-jwks (OAuth access tokens), not both.',
    );
  if (options.tokens === undefined && options.oauth === undefined && !loopback)
    throw new OpdbusError(
      'OPDBUS_ERR_MCP_UNSAFE_LISTEN',
      `opdbus-mcp will not listen on ${host} without authentication: anyone who reaches it could read the host's state. Pass --token-file FILE (lines TOKEN read|write NAME, mode 0600), or listen on 127.0.0.1.`,
      { data: { host } },
    );
  const app = Fastify({ bodyLimit: 5 * 1024 * 1024, logger: false });
  let origins: ReadonlySet<string> = new Set<string>();
  let endpointUrl = '';
  const oauth =
    options.oauth === undefined ? undefined : new OAuthResourceServer(options.oauth, () => endpointUrl);
  const routes = registerMcpRoutes(app, mcp, {
    ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
    ...(oauth === undefined ? {} : { oauth }),
    loopback,
    origins: () => origins,
    ...(options.allowedHosts === undefined ? {} : { allowedHosts: options.allowedHosts }),
    ...(options.maxSessions === undefined ? {} : { maxSessions: options.maxSessions }),
    ...(options.sessionIdleMs === undefined ? {} : { sessionIdleMs: options.sessionIdleMs }),
  });
  const address = await app.listen({ host, port: options.port });
  const port = Number(new URL(address).port);
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  origins = new Set([
    ...(loopback ? LOOPBACK_NAMES.map((name) => `http://${name}:${port}`) : [`http://${shown}:${port}`]),
    ...(options.allowedOrigins ?? []),
  ]);
  endpointUrl = `http://${shown}:${port}/mcp`;
  return {
    url: endpointUrl,
    sessions: () => routes.sessions(),
    close: async () => {
      await routes.close();
      await app.close();
    },
  };
}
