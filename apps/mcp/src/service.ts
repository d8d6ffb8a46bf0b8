import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  EventBus,
  OpdbusError,
  packageVersion,
  parseStateDocument,
  silentLogger,
  toOpdbusError,
  type Actor,
  type AnyPlugin,
  type Engine,
  type Logger,
  type OpdbusEvent,
  type StateDocument,
} from '@opdbus/core';
import type { ChangeScorer } from '@opdbus/ml';
import { createEngine, ledgerPaths } from '@opdbus/runtime';
import { CallLedger, redactArguments, type McpCallRecord } from './audit.js';
import { Policy, isWriteTool, type PolicyDecision } from './policy.js';
import { registerPrompts } from './prompts.js';
import { TokenBucket } from './rateLimit.js';
import { registerResources } from './resources.js';
import { registerTools } from './tools.js';
import type {
  CallContext,
  Governed,
  McpHost,
  McpServiceOptions,
  SessionInfo,
  SessionState,
  ToolExtra,
  ToolOutput,
} from './serviceTypes.js';

/** The version opdbus-mcp reports in its initialize result. */
export const MCP_SERVER_VERSION = packageVersion(import.meta.url);

/**
 * The opdbus MCP service: one per process, shared by its sessions. It builds an MCP server per
 * session (stdio has one; Streamable HTTP one per `Mcp-Session-Id`) whose tools act through the
 * op-dbus engine (same state directory, lock, journal and ledger as the CLI), under the policy,
 * with every call recorded in the ledger.
 */
export class OpdbusMcp implements McpHost {
  readonly options: McpServiceOptions;
  readonly policy: Policy;
  readonly plugins: AnyPlugin[];
  readonly logger: Logger;
  readonly calls: CallLedger;
  /** The events of every engine of this process (all sessions): resource notifications come from them. */
  readonly events = new EventBus<OpdbusEvent>({ capacity: 1024 });
  #inFlight = 0;
  #idle: (() => void)[] = [];

  #scorer: Promise<ChangeScorer> | undefined;

  /**
   * The anomaly scorer of `--anomaly-model` (loaded on first use, with @opdbus/ml, an optional
   * package), or undefined without one.
   */
  changeScorer(): Promise<ChangeScorer | undefined> {
    const dir = this.options.anomalyModel;
    if (dir === undefined) return Promise.resolve(undefined);
    this.#scorer ??= import('@opdbus/ml')
      .catch((err: unknown) => {
        throw new OpdbusError(
          'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
          `--anomaly-model needs @opdbus/ml, which is not installed (${(err as Error).message.split('\n')[0]}); install it beside opdbus-mcp (npm install @opdbus/ml).`,
          { cause: err },
        );
      })
      .then((ml) => ml.ChangeScorer.load(dir));
    return this.#scorer.catch((err: unknown) => {
      this.#scorer = undefined;
      throw err;
    });
  }

  constructor(options: McpServiceOptions, extra: { plugins: AnyPlugin[]; logger?: Logger }) {
    this.options = options;
    this.policy = options.policy ?? Policy.readOnly();
    this.plugins = extra.plugins;
    this.logger = extra.logger ?? silentLogger;
    this.calls = new CallLedger(options.stateDir, this.logger);
  }

  /** Resolves when no tool call is being served (e.g. before exiting when stdin ends). */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** The engine acting for `actor` (the engine records it in the journal and the ledger). */
  engineFor(actor: Actor): Engine {
    return createEngine(this.options, {
      plugins: this.plugins,
      logger: this.logger,
      actor,
      events: this.events,
    });
  }

  /** Parse a state document an agent sent. */
  parseDocument(engine: Engine, text: string, source = '<document>'): StateDocument {
    return parseStateDocument(text, { source, registry: engine.registry });
  }

  /** Build the MCP server of one session. */
  createServer(session: SessionInfo): McpServer {
    const server = new McpServer(
      { name: 'opdbus-mcp', title: 'op-dbus', version: MCP_SERVER_VERSION },
      {
        capabilities: { logging: {}, tools: {}, resources: {}, prompts: {} },
        instructions:
          'op-dbus manages the declared state of a Linux host (network, sysctl, systemd, OVS, firewall …). ' +
          'Read with query and the opdbus://state/{plugin} resources; change with a state document: plan it first, ' +
          'then apply (commit-confirmed: call confirm after checking the host, or rollback). Changes may need a ' +
          "human's approval; every call is recorded in the host's ledger.",
      },
    );
    const state = this.sessionState();
    registerTools(this, server, session, state);
    registerResources(this, server, session);
    registerPrompts(this, server);
    this.#notifyChanges(server);
    return server;
  }

  readonly #stateListeners = new Set<() => void>();
  #ledgerWatch: (() => void) | undefined;

  /**
   * Call `listener` when the host's state may have changed outside this server: the state
   * directory's ledger grew (an `opdbus apply` or rollback, opdbusd's drift and corrections).
   * The ledger file is looked at once a second while a session listens; returns the unsubscribe.
   */
  #onLedgerGrowth(listener: () => void): () => void {
    this.#stateListeners.add(listener);
    if (this.#ledgerWatch === undefined) {
      const log = join(ledgerPaths(this.options.stateDir).ledgerDir, 'log');
      const changed = (now: Stats, before: Stats): void => {
        if (now.size === before.size && now.mtimeMs === before.mtimeMs) return;
        for (const l of this.#stateListeners) l();
      };
      watchFile(log, { interval: 1000, persistent: false }, changed);
      this.#ledgerWatch = () => unwatchFile(log, changed);
    }
    return () => {
      this.#stateListeners.delete(listener);
      if (this.#stateListeners.size === 0) {
        this.#ledgerWatch?.();
        this.#ledgerWatch = undefined;
      }
    };
  }

  /**
   * Resource notifications of one session: when a transaction of this server ends (committed,
   * confirmed, rolled back, recovered), or the ledger grows because another process (the CLI,
   * opdbusd) changed the host, the observed state may have changed, so the client gets
   * `notifications/resources/list_changed`, and `notifications/resources/updated` for each
   * resource it subscribed to (`resources/subscribe`) among the state and transactions ones.
   */
  #notifyChanges(server: McpServer): void {
    const subscribed = new Set<string>();
    server.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
    server.server.setRequestHandler(SubscribeRequestSchema, (request) => {
      if (subscribed.size < 256) subscribed.add(request.params.uri);
      return {};
    });
    server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
      subscribed.delete(request.params.uri);
      return {};
    });
    const changes = new Set<OpdbusEvent['type']>([
      'tx.committed',
      'tx.confirmed',
      'tx.rolled-back',
      'recovery.done',
    ]);
    const notify = (): void => {
      if (!server.isConnected()) return;
      server.sendResourceListChanged();
      for (const uri of subscribed) {
        if (uri === 'opdbus://transactions' || uri.startsWith('opdbus://state/'))
          void server.server
            .sendResourceUpdated({ uri })
            .catch((err: unknown) => this.logger.debug({ err, uri }, 'could not notify a resource update'));
      }
    };
    const stop = this.events.on((event) => {
      if (changes.has(event.type)) notify();
    });
    const stopWatching = this.#onLedgerGrowth(notify);
    const onclose = server.server.onclose;
    server.server.onclose = () => {
      stop();
      stopWatching();
      onclose?.();
    };
  }

  /** Session state the tools of one server share (its rate limit). */
  sessionState(): SessionState {
    return { writes: new TokenBucket({ perMinute: this.options.writeRatePerMinute ?? 10 }) };
  }

  /**
   * Serve one tool call: scope, rate limit, policy (with approval through elicitation for `ask`),
   * the handler, and the ledger entry — allowed or refused. Errors come back as tool errors
   * carrying the OPDBUS_ERR_* code, never as protocol errors.
   */
  async call(
    server: McpServer,
    session: SessionInfo,
    state: SessionState,
    tool: string,
    args: unknown,
    extra: ToolExtra,
    govern: (ctx: CallContext) => Promise<Governed>,
    run: (ctx: CallContext) => Promise<ToolOutput>,
  ): Promise<CallToolResult> {
    this.#inFlight += 1;
    try {
      return await this.#call(server, session, state, tool, args, extra, govern, run);
    } finally {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #call(
    server: McpServer,
    session: SessionInfo,
    state: SessionState,
    tool: string,
    args: unknown,
    extra: ToolExtra,
    govern: (ctx: CallContext) => Promise<Governed>,
    run: (ctx: CallContext) => Promise<ToolOutput>,
  ): Promise<CallToolResult> {
    const client = server.server.getClientVersion();
    const actor: Actor = {
      kind: 'mcp',
      name: `mcp:${client?.name ?? 'unknown-client'}${session.token === undefined ? '' : `/${session.token.name}`}`,
      uid: process.getuid?.() ?? -1,
      pid: process.pid,
    };
    const record: Omit<McpCallRecord, 'decision' | 'result'> = {
      actor,
      client: client === undefined ? null : { name: client.name, version: client.version },
      token: session.token?.name ?? null,
      transport: session.transport,
      session: session.sessionId?.() ?? null,
      tool,
      arguments: redactArguments(args),
    };
    let decision: PolicyDecision | undefined;
    let approval: string | undefined;
    const log: CallContext['log'] = async (level, data) => {
      try {
        await server.sendLoggingMessage({ level, logger: 'opdbus-mcp', data }, extra.sessionId);
      } catch (err) {
        this.logger.debug({ err }, 'could not send a log message to the client');
      }
    };
    const engine = this.engineFor(actor);
    const ctx: CallContext = { engine, session, extra, log };
    try {
      const write = isWriteTool(tool);
      if (write && session.scope === 'read') {
        decision = {
          action: 'deny',
          by: [],
          reason:
            session.token === undefined
              ? 'this connection is read-only (no token file: opdbus-mcp runs unauthenticated and read-only)'
              : `the token "${session.token.name}" has the read scope`,
        };
        throw new OpdbusError(
          'OPDBUS_ERR_MCP_DENIED',
          `${tool} changes the host, and ${decision.reason}. Use a write token, or ask the operator.`,
          { data: { tool } },
        );
      }
      if (write) {
        const taken = state.writes.take();
        if (!taken.ok) {
          decision = { action: 'deny', by: [], reason: 'rate limit' };
          throw new OpdbusError(
            'OPDBUS_ERR_MCP_RATE_LIMITED',
            `Too many write calls in this session (at most ${state.writes.perMinute} a minute); retry in ${taken.retryAfterS} s.`,
            { data: { tool, retryAfterS: taken.retryAfterS } },
          );
        }
      }
      const governed = await govern(ctx);
      decision = this.policy.decide(tool, governed.subjects);
      if (decision.action === 'deny') {
        throw new OpdbusError(
          'OPDBUS_ERR_MCP_DENIED',
          `The policy does not allow this ${tool}: ${decision.reason}. Nothing was changed.`,
          { data: { tool, rules: decision.by } },
        );
      }
      if (decision.action === 'ask') {
        approval = await this.#ask(server, tool, decision, governed, extra);
        if (approval !== 'accept') {
          throw new OpdbusError(
            approval === 'unavailable' ? 'OPDBUS_ERR_MCP_CANNOT_ASK' : 'OPDBUS_ERR_MCP_NOT_APPROVED',
            approval === 'unavailable'
              ? `The policy needs a human to approve this ${tool} (${decision.reason}), but this MCP client cannot ask one (it did not declare the elicitation capability). Nothing was changed; use a client that supports elicitation, or ask the operator to change the policy.`
              : `The ${tool} was not approved (the human answered "${approval}"). Nothing was changed.`,
            { data: { tool, approval } },
          );
        }
      }
      const output = await run(ctx);
      await this.#record({
        ...record,
        decision: { action: decision.action, reason: decision.reason },
        ...(approval === undefined ? {} : { approval }),
        result: { ok: true, ...(output.summary === undefined ? {} : { summary: output.summary }) },
      });
      return {
        content: [{ type: 'text', text: output.text ?? JSON.stringify(output.structured, null, 2) }],
        structuredContent: output.structured,
      };
    } catch (err) {
      const error = toOpdbusError(err, 'OPDBUS_ERR_INTERNAL', `${tool} failed`);
      if (error.code === 'OPDBUS_ERR_INTERNAL') this.logger.error({ err, tool }, 'tool call failed');
      await this.#record({
        ...record,
        decision: decision === undefined ? null : { action: decision.action, reason: decision.reason },
        ...(approval === undefined ? {} : { approval }),
        result: { ok: false, code: error.code, message: error.message },
      });
      return {
        isError: true,
        content: [{ type: 'text', text: `${error.code}: ${error.message}` }],
        // No structuredContent: clients check it against the tool's output schema even on errors.
        _meta: {
          'opdbus/error': {
            code: error.code,
            message: error.message,
            ...(error.data === undefined ? {} : { data: error.data }),
          },
        },
      };
    }
  }

  async #record(call: McpCallRecord): Promise<void> {
    try {
      await this.calls.record(call);
    } catch (err) {
      this.logger.error({ err, tool: call.tool }, 'could not record the MCP tool call in the ledger');
    }
  }

  /** Ask the human through elicitation; `accept` only when they approved explicitly. */
  async #ask(
    server: McpServer,
    tool: string,
    decision: PolicyDecision,
    governed: Governed,
    extra: ToolExtra,
  ): Promise<string> {
    const elicitation = server.server.getClientCapabilities()?.elicitation as
      { form?: object; url?: object } | undefined;
    const canForm =
      elicitation !== undefined &&
      (elicitation.form !== undefined ||
        (elicitation.url === undefined && Object.keys(elicitation).length === 0));
    if (!canForm) return 'unavailable';
    const result = await server.server.elicitInput(
      {
        mode: 'form',
        message: [
          `An AI agent asks to run "${tool}" on this host.`,
          governed.preview ?? '',
          `Policy: ${decision.reason}.`,
          'Approve?',
        ]
          .filter((line) => line !== '')
          .join('\n\n'),
        requestedSchema: {
          type: 'object',
          properties: {
            approve: { type: 'boolean', title: 'Approve this change', description: 'Yes: run it now.' },
          },
          required: ['approve'],
        },
      },
      { signal: extra.signal, timeout: 10 * 60_000 },
    );
    if (result.action !== 'accept') return result.action;
    return result.content?.approve === true ? 'accept' : 'decline';
  }
}
