import { chmod, chown, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import {
  OpdbusError,
  isOpdbusError,
  limits,
  parseStateDocument,
  type StateDocument,
  type TransactionRecord,
} from '@opdbus/core';
import { buildReport, engineObserver, frameworkIds, loadFramework } from '@opdbus/compliance';
import { dashboardAssetsDir } from '@opdbus/dashboard';
import { Ledger, SnapshotManager, changeEventsOf, openCheckpoint, verifyInclusion } from '@opdbus/ledger';
import { readTopology } from '@opdbus/numa';
import {
  ledgerPaths,
  TokenFile,
  type TokenIdentity,
  type TokenScope,
  documentSections,
} from '@opdbus/runtime';
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ChatService } from './chat.js';
import type { Daemon } from './daemon.js';
import { driftHistory } from './history.js';
import { numaPlacements } from './placements.js';
import type { Listener } from './listen.js';
import { SESSION_COOKIE, SessionStore, type Session } from './sessions.js';

/** Options of {@link buildApi}. */
export interface ApiOptions {
  daemon: Daemon;
  listener: Listener;
  /** Bearer tokens; required on TCP listeners, optional on a unix socket (whose mode is the access control). */
  tokens?: TokenFile;
  /** TLS key and certificate (PEM) for a TCP listener. */
  tls?: { key: Buffer; cert: Buffer };
  /** Failed authentications per peer and minute before 429 (default 10). */
  maxAuthFailures?: number;
  /** The daemon's version, for the dashboard and the OpenAPI document. */
  version: string;
  /** The dashboard's browser sessions (default: a store with 30 min idle and 12 h absolute expiry). */
  sessions?: SessionStore;
  /** The folder of the built dashboard (default: the one @opdbus/dashboard ships). */
  dashboardDir?: string;
  /** The root whose /sys the NUMA topology is read from (default `/`). */
  numaRoot?: string;
  /** The Chat page's tool loop (`--chat-endpoint`); absent: the page says how to configure it. */
  chat?: ChatService;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: TokenIdentity;
    /** The dashboard session the request came with (cookie authentication). */
    session?: Session;
  }
  interface FastifyContextConfig {
    /** What a route needs: nothing (public), a read token or a write token. */
    scope?: TokenScope | 'public';
  }
}

// The request bodies and their JSON Schemas (for validation and /openapi.json) from the same zod types.
const documentBody = z
  .union([z.string().max(limits.documentBytes), z.record(z.string(), z.unknown())])
  .describe('A state document: YAML or JSON text, or the document as a JSON object');
const planBody = z.strictObject({ document: documentBody });
const applyBody = z.strictObject({
  document: documentBody,
  confirmTimeoutS: z
    .number()
    .int()
    .min(1)
    .max(86_400)
    .optional()
    .describe('Commit-confirmed: roll back unless confirmed in time'),
  force: z.boolean().optional().describe('Apply risky changes without commit-confirmed'),
  acknowledgeAnomalies: z
    .boolean()
    .optional()
    .describe('Go ahead with changes that score at or above the anomaly threshold (`--anomaly-plan ask`)'),
});
const txBody = z.strictObject({ txId: z.string().max(64).optional() });
const rollbackBody = z.strictObject({ txId: z.string().max(64).optional(), force: z.boolean().optional() });
const rangeQuery = z.strictObject({
  from: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const historyQuery = z.strictObject({
  hours: z.coerce.number().int().min(1).max(336).optional().describe('The window, in hours (default 24)'),
});
const proofQuery = z.strictObject({ size: z.coerce.number().int().min(1).optional() });
const consistencyQuery = z.strictObject({
  from: z.coerce.number().int().min(0).describe('The older tree size'),
  to: z.coerce.number().int().min(0).optional().describe('The newer tree size (default: the ledger size)'),
});
const chatBody = z.strictObject({
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['user', 'assistant']),
        content: z.string().min(1).max(16_000),
      }),
    )
    .min(1)
    .max(50)
    .describe("The conversation so far, the last message being the operator's"),
  conversation: z
    .string()
    .uuid()
    .optional()
    .describe(
      'The id a previous answer gave: the model goes on with that conversation, earlier tool results included',
    ),
});
const chatApproveBody = z.strictObject({
  id: z.string().max(64).describe("The pending approval's id"),
  approve: z.boolean().describe('true: run the tool call; false: deny it (nothing changes)'),
});
const indexParams = z.strictObject({ index: z.coerce.number().int().min(0) });
const frameworkParams = z.strictObject({ framework: z.enum(frameworkIds) });
const snapshotParams = z.strictObject({
  id: z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9._-]+$/),
});

const jsonSchema = (schema: z.ZodType): Record<string, unknown> => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-7' }) as Record<
    string,
    unknown
  >;
  return rest;
};

const errorBody = (code: string, message: string, data?: Record<string, unknown>) => ({
  error: { code, message, ...(data === undefined ? {} : { data }) },
});

function httpStatusOf(err: OpdbusError): number {
  switch (err.code) {
    case 'OPDBUS_ERR_STATE_PARSE':
    case 'OPDBUS_ERR_STATE_INVALID':
    case 'OPDBUS_ERR_STATE_VERSION':
    case 'OPDBUS_ERR_UNKNOWN_PLUGIN':
    case 'OPDBUS_ERR_LIMIT_EXCEEDED':
    case 'OPDBUS_ERR_PLAN_CONFLICT':
    case 'OPDBUS_ERR_USAGE':
    case 'OPDBUS_ERR_API_BAD_REQUEST':
      return 400;
    case 'OPDBUS_ERR_TX_NOT_FOUND':
    case 'OPDBUS_ERR_LEDGER_NOT_FOUND':
      return 404;
    case 'OPDBUS_ERR_TX_STATE':
    case 'OPDBUS_ERR_LOCKED':
    case 'OPDBUS_ERR_RISKY_CHANGE':
    case 'OPDBUS_ERR_ANOMALY_REFUSED':
    case 'OPDBUS_ERR_ANOMALY_ASK':
      return 409;
    case 'OPDBUS_ERR_CHAT_NO_APPROVAL':
      return 404;
    case 'OPDBUS_ERR_CHAT_RATE_LIMITED':
    case 'OPDBUS_ERR_CHAT_BUSY':
      return 429;
    case 'OPDBUS_ERR_CHAT_ENDPOINT':
      return 502;
    case 'OPDBUS_ERR_PLUGIN_UNAVAILABLE':
    case 'OPDBUS_ERR_CHAT_NOT_CONFIGURED':
      return 503;
    default:
      return 500;
  }
}

function transactionSummary(r: TransactionRecord): Record<string, unknown> {
  return {
    txId: r.txId,
    status: r.status,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    actor: r.actor,
    changes: r.plan.changes.length,
    planHash: r.plan.hash,
    plugins: [...new Set(r.plan.changes.map((c) => c.plugin))],
    ...(r.confirm?.deadline === undefined ? {} : { deadline: r.confirm.deadline }),
    ...(r.failure === undefined ? {} : { failure: r.failure }),
    ...(r.restore === undefined ? {} : { restore: { ok: r.restore.ok, reason: r.restore.reason } }),
  };
}

/**
 * The daemon's HTTP API on one listener: fastify with helmet's headers, bearer tokens from a
 * {@link TokenFile} (401 / 403), refusal of cross-origin state-changing requests (403), a rate
 * limit on failed authentication per peer (429), body limits, and an OpenAPI document.
 */
export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { daemon, listener, tokens } = options;
  const app = fastify({
    logger: false,
    bodyLimit: limits.documentBytes + 64 * 1024,
    ...(options.tls === undefined ? {} : { https: { key: options.tls.key, cert: options.tls.cert } }),
    // No proxy is trusted: the peer is the socket's.
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true } },
  });

  const needsToken = tokens !== undefined;
  const isPublic = (req: FastifyRequest): boolean =>
    req.routeOptions.config?.scope === 'public' || req.routeOptions.url === undefined;
  const sessions = options.sessions ?? new SessionStore();
  const sessionOf = (req: FastifyRequest): Session | undefined => {
    const id = req.cookies[SESSION_COOKIE];
    return id === undefined ? undefined : sessions.get(id);
  };
  // A bearer token (API clients), else the dashboard's session cookie (browsers).
  const identify = (req: FastifyRequest): TokenIdentity | undefined => {
    const presented = TokenFile.bearer(req.headers.authorization);
    if (presented !== undefined) return tokens?.check(presented);
    const session = sessionOf(req);
    if (session !== undefined) req.session = session;
    return session?.identity;
  };

  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        scriptSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
      },
    },
    // A unix socket or loopback listener serves plain HTTP: HSTS only with TLS.
    hsts: options.tls !== undefined,
  });
  // Session cookies for the dashboard: httpOnly, SameSite=Strict, Secure with TLS (set at login).
  await app.register(cookie);
  // Failed authentication is rate limited per peer: requests with a valid token and public routes
  // are not counted, so a burst of wrong tokens ends in 429 while the owner of a token goes on.
  await app.register(rateLimit, {
    global: true,
    max: options.maxAuthFailures ?? 10,
    timeWindow: 60_000,
    hook: 'onRequest',
    allowList: (req) => !needsToken || isPublic(req) || identify(req) !== undefined,
    keyGenerator: (req) => req.socket.remoteAddress ?? 'unix',
    errorResponseBuilder: (req, context) => {
      daemon.authFailures.note(req.socket.remoteAddress ?? listener.label, req.url, 'rate-limited');
      return {
        statusCode: 429,
        ...errorBody(
          'OPDBUS_ERR_API_RATE_LIMITED',
          `Too many failed authentications from this peer; retry in ${Math.ceil(context.ttl / 1000)} s.`,
        ),
      };
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'opdbusd',
        version: options.version,
        description: 'The op-dbus daemon: desired state, drift, transactions and the ledger of a Linux host.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
  });

  // Authentication runs as a route-level onRequest hook added after the rate limiter's, so a peer
  // over its limit of failures gets 429 before its token is looked at.
  const authenticate = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    if (isPublic(req)) return;
    const scope = req.routeOptions.config?.scope;
    const needed: TokenScope = scope === 'read' ? 'read' : 'write';
    if (needsToken) {
      const identity = identify(req);
      if (identity === undefined) {
        const presented = TokenFile.bearer(req.headers.authorization) !== undefined;
        const peer = req.socket.remoteAddress ?? listener.label;
        daemon.authFailures.note(peer, req.url, presented ? 'wrong-token' : 'no-token');
        daemon.logger.warn(
          { peer: req.socket.remoteAddress ?? listener.label, url: req.url.slice(0, 200) },
          presented
            ? 'API: a request with a wrong token was refused'
            : 'API: a request without a token was refused',
        );
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="opdbusd"')
          .send(
            errorBody(
              'OPDBUS_ERR_API_UNAUTHORIZED',
              presented
                ? 'The bearer token is not valid.'
                : "Send Authorization: Bearer TOKEN (a token from the daemon's token file).",
            ),
          );
      }
      req.identity = identity;
      // A browser session changes state only with its CSRF token (on top of the Origin check below).
      if (req.session !== undefined && req.method !== 'GET' && req.method !== 'HEAD') {
        if (!SessionStore.csrfMatches(req.session, req.headers['x-csrf-token'])) {
          daemon.logger.warn(
            { actor: identity.name, url: req.url.slice(0, 200) },
            'API: a session request without its CSRF token was refused',
          );
          return reply
            .code(403)
            .send(
              errorBody(
                'OPDBUS_ERR_API_FORBIDDEN',
                "A request with a session cookie that changes state needs the session's X-CSRF-Token header.",
              ),
            );
        }
      }
    } else {
      // A unix socket without a token file: its file mode (0660, owner and group) is the access control.
      req.identity = { name: `unix:${listener.label}`, scope: 'write' };
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const origin = req.headers.origin;
      const site = req.headers['sec-fetch-site'];
      const own = new Set([`http://${req.headers.host ?? ''}`, `https://${req.headers.host ?? ''}`]);
      if ((origin !== undefined && !own.has(origin)) || site === 'cross-site') {
        daemon.logger.warn(
          { origin, actor: req.identity.name },
          'API: a cross-origin state-changing request was refused',
        );
        return reply
          .code(403)
          .send(
            errorBody('OPDBUS_ERR_API_FORBIDDEN', 'Cross-origin requests that change state are refused.'),
          );
      }
    }
    if (!TokenFile.allows(req.identity, needed)) {
      return reply
        .code(403)
        .send(
          errorBody(
            'OPDBUS_ERR_API_FORBIDDEN',
            `The token "${req.identity.name}" has the ${req.identity.scope} scope; this needs ${needed}.`,
          ),
        );
    }
    return undefined;
  };
  app.addHook('onRoute', (route) => {
    const existing =
      route.onRequest === undefined
        ? []
        : Array.isArray(route.onRequest)
          ? route.onRequest
          : [route.onRequest];
    route.onRequest = [...existing, authenticate];
  });

  app.setErrorHandler((err, _req, reply) => {
    if (isOpdbusError(err)) {
      const status = httpStatusOf(err);
      if (status >= 500) daemon.logger.error({ err }, 'API request failed');
      return reply.code(status).send(errorBody(err.code, err.message, err.data));
    }
    if (err instanceof z.ZodError) {
      const issue = err.issues[0];
      return reply
        .code(400)
        .send(
          errorBody(
            'OPDBUS_ERR_API_BAD_REQUEST',
            `${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'}`,
          ),
        );
    }
    const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
    if (e.validation !== undefined || (e.statusCode !== undefined && e.statusCode < 500)) {
      return reply
        .code(e.statusCode ?? 400)
        .send(errorBody('OPDBUS_ERR_API_BAD_REQUEST', e.message ?? 'bad request'));
    }
    daemon.logger.error({ err }, 'API request failed');
    return reply.code(500).send(errorBody('OPDBUS_ERR_INTERNAL', 'Internal error; see the daemon log.'));
  });

  // The plugins a document names are loaded first (the daemon starts with those of its desired state).
  const parseDocument = async (value: string | Record<string, unknown>): Promise<StateDocument> => {
    await daemon.ensurePlugins(
      typeof value === 'string'
        ? documentSections(value)
        : typeof value.plugins === 'object' && value.plugins !== null && !Array.isArray(value.plugins)
          ? Object.keys(value.plugins)
          : [],
    );
    return parseStateDocument(typeof value === 'string' ? value : JSON.stringify(value), {
      source: 'request body document',
      registry: daemon.engine.registry,
    });
  };

  const read = { config: { scope: 'read' as const } };
  const write = { config: { scope: 'write' as const } };
  const pub = { config: { scope: 'public' as const } };

  app.get('/healthz', { ...pub, schema: { hide: true } }, async (_req, reply) => {
    const d = daemon.describe();
    return reply.code(d.status === 'watching' && daemon.synced ? 200 : 503).send({ status: d.status });
  });
  // The dashboard: built static files (no CDN, nothing fetched at run time), public like any login page;
  // everything it shows comes from the /v1 API with a session.
  await app.register(fastifyStatic, {
    root: options.dashboardDir ?? dashboardAssetsDir(),
    serve: false,
    cacheControl: false,
  });
  app.get('/', { ...pub, schema: { hide: true } }, (_req, reply) =>
    reply.header('cache-control', 'no-cache').sendFile('index.html'),
  );
  app.get<{ Params: { '*': string } }>('/assets/*', { ...pub, schema: { hide: true } }, (req, reply) =>
    reply.header('cache-control', 'no-cache').sendFile(`assets/${req.params['*']}`),
  );

  const sessionView = (s: Session) => ({
    name: s.identity.name,
    scope: s.identity.scope,
    csrf: s.csrf,
    expiresAt: new Date(s.expiresAt).toISOString(),
  });
  const sessionSchema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      scope: { type: 'string', enum: ['read', 'write'] },
      csrf: { type: 'string' },
      expiresAt: { type: 'string' },
    },
  } as const;
  app.post(
    '/v1/session',
    {
      ...read,
      schema: {
        description:
          'Log in (the dashboard): send the token as Authorization: Bearer; answers the session and sets its httpOnly, SameSite=Strict cookie',
        response: { 200: sessionSchema },
      },
    },
    async (req, reply) => {
      const identity = req.identity!;
      if (req.session !== undefined) sessions.delete(req.session.id);
      const session = sessions.create(identity);
      daemon.logger.info({ actor: identity.name, peer: req.socket.remoteAddress }, 'API: dashboard login');
      return reply
        .setCookie(SESSION_COOKIE, session.id, {
          path: '/',
          httpOnly: true,
          sameSite: 'strict',
          secure: options.tls !== undefined,
          maxAge: Math.floor(sessions.maxAgeMs / 1000),
        })
        .send(sessionView(session));
    },
  );
  app.get(
    '/v1/session',
    { ...read, schema: { description: 'The current dashboard session', response: { 200: sessionSchema } } },
    async (req, reply) => {
      if (req.session !== undefined) return sessionView(req.session);
      // A bearer token or an unauthenticated unix socket: no cookie session, no CSRF token needed.
      return reply.send({ name: req.identity!.name, scope: req.identity!.scope, csrf: '', expiresAt: '' });
    },
  );
  app.delete(
    '/v1/session',
    { ...read, schema: { description: 'Log out: the session ends and its cookie is cleared' } },
    async (req, reply) => {
      if (req.session !== undefined) sessions.delete(req.session.id);
      daemon.logger.info({ actor: req.identity!.name }, 'API: dashboard logout');
      return reply.clearCookie(SESSION_COOKIE, { path: '/' }).code(204).send();
    },
  );
  app.get('/openapi.json', { ...pub, schema: { hide: true } }, () => Promise.resolve(app.swagger()));

  app.get(
    '/metrics',
    { ...read, schema: { description: 'Prometheus metrics (opdbus_* series)' } },
    async (_req, reply) =>
      reply.type(daemon.metrics.registry.contentType).send(await daemon.metrics.registry.metrics()),
  );
  app.get(
    '/v1/state',
    {
      ...read,
      schema: { description: 'The daemon, the desired state and the observed state of its plugins' },
    },
    async () => {
      const doc = daemon.desired;
      const names = Object.keys(doc?.plugins ?? {});
      const observed = names.length === 0 ? {} : await daemon.engine.query(names);
      return {
        daemon: {
          ...daemon.describe(),
          mode: daemon.options.mode,
          modes: daemon.policy.rules,
          startedAt: daemon.startedAt,
          version: options.version,
        },
        desired: doc === undefined ? null : { source: doc.source, plugins: doc.plugins },
        observed,
      };
    },
  );
  app.get(
    '/v1/drift',
    { ...read, schema: { description: 'Resources not at their desired state, holds and baselines' } },
    () => Promise.resolve(daemon.driftReport()),
  );
  app.post(
    '/v1/plan',
    {
      ...read,
      schema: { description: 'The plan that takes the host to a document', body: jsonSchema(planBody) },
    },
    async (req) => {
      const body = planBody.parse(req.body);
      const doc = await parseDocument(body.document);
      const { plan, notes } = await daemon.engine.plan(doc);
      // With --anomaly-model, each change's score and reasons (an alert for the unusual ones).
      const anomalies = await daemon.scorePlan(plan.changes, req.identity?.name ?? 'api');
      return { plan, notes, anomalies };
    },
  );
  app.post(
    '/v1/apply',
    {
      ...write,
      schema: {
        description: 'Apply a document as one transaction (commit-confirmed with confirmTimeoutS)',
        body: jsonSchema(applyBody),
      },
    },
    async (req) => {
      const body = applyBody.parse(req.body);
      const doc = await parseDocument(body.document);
      const actor = req.identity!.name;
      daemon.logger.info({ actor, plugins: Object.keys(doc.plugins) }, 'API: apply');
      const result = await daemon.apply(doc, actor, {
        ...(body.confirmTimeoutS === undefined ? {} : { confirmTimeoutS: body.confirmTimeoutS }),
        ...(body.force === undefined ? {} : { force: body.force }),
        ...(body.acknowledgeAnomalies === undefined
          ? {}
          : { acknowledgeAnomalies: body.acknowledgeAnomalies }),
      });
      return {
        status: result.status,
        txId: result.txId ?? null,
        deadline: result.deadline ?? null,
        plan: result.plan,
      };
    },
  );
  app.post(
    '/v1/confirm',
    { ...write, schema: { description: 'Confirm a pending transaction', body: jsonSchema(txBody) } },
    async (req) => {
      const body = txBody.parse(req.body ?? {});
      return transactionSummary(await daemon.confirm(body.txId, req.identity!.name));
    },
  );
  app.post(
    '/v1/rollback',
    { ...write, schema: { description: 'Roll a transaction back', body: jsonSchema(rollbackBody) } },
    async (req) => {
      const body = rollbackBody.parse(req.body ?? {});
      return transactionSummary(await daemon.rollback(body.txId, req.identity!.name, body.force === true));
    },
  );
  app.get(
    '/v1/transactions',
    { ...read, schema: { description: 'Transactions, newest first', querystring: jsonSchema(rangeQuery) } },
    async (req) => {
      const q = rangeQuery.parse(req.query);
      const all = await daemon.engine.transactions();
      const limit = q.limit ?? 100;
      return {
        transactions: all
          .reverse()
          .slice(q.from ?? 0, (q.from ?? 0) + limit)
          .map(transactionSummary),
        total: all.length,
      };
    },
  );

  const withLedger = async <T>(fn: (ledger: Ledger) => T | Promise<T>): Promise<T> => {
    const dir = ledgerPaths(daemon.options.runtime.stateDir).ledgerDir;
    if (!existsSync(join(dir, 'log')))
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_NOT_FOUND',
        `There is no ledger in ${dir} yet; it is created by the first apply.`,
        { data: { dir } },
      );
    const ledger = await Ledger.open({ dir, readOnly: true });
    try {
      return await fn(ledger);
    } finally {
      await ledger.close();
    }
  };
  app.get(
    '/v1/ledger/entries',
    {
      ...read,
      schema: { description: 'Ledger entries (the last 50 by default)', querystring: jsonSchema(rangeQuery) },
    },
    async (req) => {
      const q = rangeQuery.parse(req.query);
      return withLedger(async (ledger) => {
        const limit = q.limit ?? 50;
        const from = q.from ?? Math.max(0, ledger.size - limit);
        const entries = [];
        for await (const e of ledger.entries(from, Math.min(ledger.size, from + limit)))
          entries.push({ index: e.index, leafHash: e.leafHash.toString('hex'), entry: e.value });
        return { size: ledger.size, entries };
      });
    },
  );
  app.get(
    '/v1/drift/history',
    {
      ...read,
      schema: {
        description:
          'Drift over time from the ledger: resources found drifted, corrected, held and failed, per hour',
        querystring: jsonSchema(historyQuery),
      },
    },
    async (req) => {
      const hours = historyQuery.parse(req.query).hours ?? 24;
      if (!existsSync(join(ledgerPaths(daemon.options.runtime.stateDir).ledgerDir, 'log')))
        return driftHistory({ size: 0, entries: async function* () {} }, hours);
      return withLedger((ledger) => driftHistory(ledger, hours));
    },
  );
  app.get(
    '/v1/ledger/entries/:index',
    { ...read, schema: { description: 'One ledger entry', params: jsonSchema(indexParams) } },
    async (req) => {
      const { index } = indexParams.parse(req.params);
      return withLedger(async (ledger) => {
        const e = await ledger.get(index);
        return { index: e.index, leafHash: e.leafHash.toString('hex'), entry: e.value };
      });
    },
  );
  app.get(
    '/v1/ledger/proofs/:index',
    {
      ...read,
      schema: {
        description: 'RFC 9162 inclusion proof of an entry',
        params: jsonSchema(indexParams),
        querystring: jsonSchema(proofQuery),
      },
    },
    async (req) => {
      const { index } = indexParams.parse(req.params);
      const q = proofQuery.parse(req.query);
      return withLedger((ledger) => {
        const size = q.size ?? ledger.size;
        if (size > ledger.size || index >= size)
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_NOT_FOUND',
            `Entry ${index} is not in a tree of size ${size} (the ledger has ${ledger.size} entries).`,
            { data: { index, size } },
          );
        const leaf = ledger.leafHash(index);
        const path = ledger.inclusionProof(index, size);
        const root = ledger.root(size);
        if (!verifyInclusion(leaf, index, size, path, root))
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_TAMPERED',
            `The proof of entry ${index} does not verify; run \`opdbus ledger verify\`.`,
          );
        return {
          index,
          size,
          leafHash: leaf.toString('hex'),
          proof: path.map((h) => h.toString('hex')),
          root: root.toString('hex'),
        };
      });
    },
  );
  app.get(
    '/v1/ledger/consistency',
    {
      ...read,
      schema: {
        description: 'RFC 9162 consistency proof between two tree sizes (to check two checkpoints)',
        querystring: jsonSchema(consistencyQuery),
      },
    },
    async (req) => {
      const q = consistencyQuery.parse(req.query);
      return withLedger((ledger) => {
        const to = q.to ?? ledger.size;
        if (to > ledger.size || q.from > to)
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_NOT_FOUND',
            `No consistency proof from size ${q.from} to ${to}: the ledger has ${ledger.size} entries and from must not exceed to.`,
            { data: { from: q.from, to, size: ledger.size } },
          );
        return {
          from: q.from,
          to,
          proof: ledger.consistencyProof(q.from, to).map((h) => h.toString('hex')),
          rootFrom: ledger.root(q.from).toString('hex'),
          rootTo: ledger.root(to).toString('hex'),
        };
      });
    },
  );
  app.get(
    '/v1/ledger/checkpoint',
    { ...read, schema: { description: 'The latest signed checkpoint (C2SP tlog-checkpoint)' } },
    async () =>
      withLedger(async (ledger) => {
        const note = await ledger.checkpoint();
        const { checkpoint } = openCheckpoint(note, [ledger.verifier]);
        return {
          origin: checkpoint.origin,
          size: checkpoint.size,
          root: checkpoint.root.toString('hex'),
          note,
          verifierKey: ledger.verifier.toString(),
        };
      }),
  );

  const withSnapshots = <T>(fn: (snaps: SnapshotManager) => Promise<T>): Promise<T> =>
    withLedger(async (ledger) => {
      const paths = ledgerPaths(daemon.options.runtime.stateDir);
      const snaps = await SnapshotManager.open({
        dir: paths.snapshotsDir,
        keyFile: paths.snapshotKey,
        ledger,
      });
      return fn(snaps);
    });
  app.get(
    '/v1/snapshots',
    {
      ...read,
      schema: {
        description:
          'The encrypted state snapshots (one per committed apply), each checked against its ledger entry',
      },
    },
    async () => {
      const dir = ledgerPaths(daemon.options.runtime.stateDir).ledgerDir;
      if (!existsSync(join(dir, 'log'))) return { backend: 'none', snapshots: [] };
      return withSnapshots(async (snaps) => ({ backend: snaps.backend.kind, snapshots: await snaps.list() }));
    },
  );
  app.get(
    '/v1/snapshots/:id/document',
    {
      ...write,
      schema: {
        description:
          'The state a snapshot holds as a state document, to restore it as a plan (POST /v1/plan, then /v1/apply); write scope, since it discloses the whole recorded state',
        params: jsonSchema(snapshotParams),
      },
    },
    async (req) => {
      const { id } = snapshotParams.parse(req.params);
      const { meta, state } = await withSnapshots((snaps) => snaps.load(id));
      return { id, createdAt: meta.createdAt, document: { version: 1, plugins: state } };
    },
  );
  app.get(
    '/v1/numa',
    {
      ...read,
      schema: {
        description:
          "The machine's topology from sysfs (packages, NUMA nodes, caches, cores, CPUs and PCI devices) and where the desired document places services: each unit's CPUs and nodes asked for, and what systemd has",
      },
    },
    async () => {
      const topology = await readTopology({ root: options.numaRoot ?? '/', wholeSystem: true });
      return {
        topology: JSON.parse(JSON.stringify(topology)) as unknown,
        ...(await numaPlacements(daemon.engine, daemon.desired, topology)),
      };
    },
  );

  app.get(
    '/v1/compliance/frameworks',
    { ...read, schema: { description: 'The compliance frameworks a report can be made for' } },
    () => Promise.resolve({ frameworks: [...frameworkIds] }),
  );
  app.get(
    '/v1/compliance/reports/:framework',
    {
      ...read,
      schema: {
        description:
          "A compliance report (@opdbus/compliance): each control of the framework with its evidence from the ledger and the host's observed state, proven against the current checkpoint",
        params: jsonSchema(frameworkParams),
      },
    },
    async (req) => {
      const { framework: id } = frameworkParams.parse(req.params);
      const framework = await loadFramework(id);
      const paths = ledgerPaths(daemon.options.runtime.stateDir);
      // The report; the ledger bundle (every cited entry with its proof) is what `opdbus compliance
      // report --out` writes for auditors, not sent here.
      return withLedger(async (ledger) => {
        const { report } = await buildReport({
          framework,
          ledger,
          host: engineObserver(daemon.engine),
          keyFiles: [
            { name: 'ledger signing key', file: paths.ledgerKey },
            { name: 'snapshot encryption key', file: paths.snapshotKey },
          ],
          snapshots: { dir: paths.snapshotsDir, keyFile: paths.snapshotKey },
          ...(daemon.options.runtime.netns === undefined
            ? {}
            : { target: { netns: daemon.options.runtime.netns } }),
        });
        return report;
      });
    },
  );

  // Anomaly scores of the recorded changes, with the model the daemon scores plans and drift with.
  app.get(
    '/v1/anomalies',
    {
      ...read,
      schema: {
        description:
          'The latest recorded changes (apply and rollback entries of the ledger) scored by the anomaly model given with --anomaly-model',
        querystring: jsonSchema(rangeQuery),
      },
    },
    async (req) => {
      const q = rangeQuery.parse(req.query);
      const anomaly = daemon.options.anomaly;
      if (anomaly === undefined)
        return {
          available: false,
          reason:
            'opdbusd was started without --anomaly-model: train a model with `opdbus anomaly train --model DIR` (or `--from-ledger`) and start the daemon with --anomaly-model DIR.',
          changes: [],
        };
      const scorer = anomaly.scorer;
      const limit = q.limit ?? 100;
      return withLedger(async (ledger) => {
        const events = [];
        const host = hostname();
        // Read back from the end until `limit` changes are found (at most 10,000 entries).
        for (let to = ledger.size; to > 0 && events.length < limit && ledger.size - to < 10_000; to -= 500) {
          const batch = [];
          for await (const e of ledger.entries(Math.max(0, to - 500), to))
            batch.push(...changeEventsOf(e, host));
          events.unshift(...batch);
        }
        const latest = events.slice(-limit);
        const scores = scorer.model.score(latest, { threshold: scorer.threshold });
        return {
          available: true,
          model: anomaly.modelDir ?? '(in process)',
          threshold: scorer.threshold,
          changes: latest.map((event, i) => ({
            event,
            score: scores[i]!.score,
            anomalous: scores[i]!.anomalous,
            reasons: scores[i]!.reasons,
          })),
        };
      });
    },
  );

  // The Chat page: the model acts only through the MCP tools, under the MCP policy and ledger audit.
  const chatHelp =
    'The Chat page needs a model: start opdbusd with --chat-endpoint URL (an OpenAI-compatible chat-completions endpoint), --chat-model NAME and --chat-key-file FILE (the API key, mode 0600); --chat-policy FILE sets what the model may change (default: read-only).';
  const chat = (): ChatService => {
    if (options.chat === undefined) throw new OpdbusError('OPDBUS_ERR_CHAT_NOT_CONFIGURED', chatHelp);
    return options.chat;
  };
  app.get(
    '/v1/chat',
    { ...read, schema: { description: 'Whether the Chat page has a model, and which' } },
    () => Promise.resolve(options.chat?.describe() ?? { configured: false, help: chatHelp }),
  );
  app.post(
    '/v1/chat',
    {
      ...read,
      schema: {
        description:
          "Send the conversation to the operator's model; its tool calls run through the MCP server (policy, ledger). Answers the new entries, and a pending approval when the policy asks",
        body: jsonSchema(chatBody),
      },
    },
    async (req) => {
      const body = chatBody.parse(req.body);
      const service = chat();
      daemon.logger.info({ actor: req.identity!.name, messages: body.messages.length }, 'API: chat');
      return service.chat(req.identity!, body.messages, body.conversation);
    },
  );
  app.post(
    '/v1/chat/approve',
    {
      ...write,
      schema: {
        description: 'Approve or deny the tool call a chat waits on, and go on with the conversation',
        body: jsonSchema(chatApproveBody),
      },
    },
    async (req) => {
      const body = chatApproveBody.parse(req.body);
      return chat().approve(req.identity!, body.id, body.approve);
    },
  );

  app.get(
    '/v1/events',
    {
      ...read,
      schema: { description: 'Server-Sent Events: drift, corrections, holds, transactions, reloads' },
    },
    (req, reply) => {
      const sub = daemon.events.subscribe();
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-content-type-options': 'nosniff',
      });
      res.write(`event: status\ndata: ${JSON.stringify(daemon.describe())}\n\n`);
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      const close = (): void => {
        clearInterval(heartbeat);
        sub.close();
      };
      req.raw.on('close', close);
      void (async () => {
        for await (const event of sub) {
          if (res.writableEnded || res.destroyed) break;
          res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        }
        close();
      })();
    },
  );

  return app;
}

/** Start listening: a unix socket gets mode 0660 (and the group, when given); a stale socket file is replaced. */
export async function listen(app: FastifyInstance, listener: Listener, group?: number): Promise<void> {
  if (listener.kind === 'unix') {
    if (existsSync(listener.path)) await rm(listener.path);
    await app.listen({ path: listener.path });
    await chmod(listener.path, 0o660);
    if (group !== undefined) await chown(listener.path, process.getuid?.() ?? 0, group);
    return;
  }
  await app.listen({ host: listener.host, port: listener.port });
}
