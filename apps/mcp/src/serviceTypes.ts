// What the MCP service's parts share: its options, who is on the other end of a session, the types
// of a tool call, and the part of the service (McpHost) that the tools, resources and prompts of a
// session use. service.ts implements McpHost and registers them; they import only this module.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Actor, AnyPlugin, Engine, JsonValue, Logger, StateDocument } from '@opdbus/core';
import type { ChangeScorer } from '@opdbus/ml';
import type { RuntimeOptions, TokenIdentity } from '@opdbus/runtime';
import type { Policy, PolicySubject } from './policy.js';
import type { TokenBucket } from './rateLimit.js';

/** What opdbus-mcp is started with: the CLI's global options plus its own. */
export interface McpServiceOptions extends RuntimeOptions {
  /** Plugin packages to load (`--plugin SPEC`), handed to the shared plugin loader. */
  plugin?: string[];
  /** Config file (`--config FILE`), handed to the shared plugin loader. */
  config?: string;
  /** The policy (default {@link Policy.readOnly}). */
  policy?: Policy;
  /** Write tool calls a minute per session (default 10); bursts of half that. */
  writeRatePerMinute?: number;
  /** Seconds an apply stays pending until confirmed, unless the agent asks otherwise (default 120). */
  confirmTimeoutS?: number;
  /** Root of the sysfs tree the numa tool reads (default `/`). */
  numaRoot?: string;
  /** An anomaly model directory (`opdbus anomaly train`): adds the `anomalies` tool (needs @opdbus/ml). */
  anomalyModel?: string;
  /** opdbusd's API unix socket: the `drift` tool reads from it (absent: no `drift` tool). */
  daemonSocket?: string;
}

/** Who is on the other end of one MCP session, as the transport established it. */
export interface SessionInfo {
  /** `dashboard`: opdbusd's Chat page, an in-process MCP client acting for a dashboard session. */
  transport: 'stdio' | 'http' | 'dashboard';
  /** The bearer token the HTTP client presented (its name and scope), if any. */
  token?: TokenIdentity;
  /**
   * The most this session may do whatever the policy says: `read` for a read token and for an
   * unauthenticated loopback listener, `write` for a write token and for stdio.
   */
  scope: 'read' | 'write';
  /** The MCP session id (HTTP). */
  sessionId?: () => string | undefined;
}

/** The `extra` argument of a tool handler. */
export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** What a tool handler returns: the structured result and an optional line for people. */
export interface ToolOutput {
  structured: Record<string, unknown>;
  text?: string;
  /** What the ledger keeps of the result (default: nothing beyond ok). */
  summary?: JsonValue;
}

/** How a tool is governed: what its call is about, and what a human sees before approving it. */
export interface Governed {
  subjects: PolicySubject[];
  /** The plan (or transaction) shown in an approval request. */
  preview?: string;
}

/** One tool call being served: the session, the engine acting for it, the client. */
export interface CallContext {
  engine: Engine;
  session: SessionInfo;
  extra: ToolExtra;
  /** Send a log message to the client (filtered by its logging/setLevel). */
  log: (level: 'debug' | 'info' | 'notice' | 'warning' | 'error', data: unknown) => Promise<void>;
}

/** Session state the tools of one server share: its rate limit of write calls. */
export interface SessionState {
  writes: TokenBucket;
}

/**
 * What the tools, resources and prompts of a session use of the MCP service (`OpdbusMcp`
 * implements it): its options, policy and plugins, engines acting for an actor, and the governed
 * tool call.
 */
export interface McpHost {
  readonly options: McpServiceOptions;
  readonly policy: Policy;
  readonly plugins: AnyPlugin[];
  readonly logger: Logger;
  /** The engine acting for `actor` (the engine records it in the journal and the ledger). */
  engineFor(actor: Actor): Engine;
  /** Parse a state document an agent sent. */
  parseDocument(engine: Engine, text: string, source?: string): StateDocument;
  /** The anomaly scorer of `--anomaly-model`, or undefined without one. */
  changeScorer(): Promise<ChangeScorer | undefined>;
  /**
   * Serve one tool call: scope, rate limit, policy (with approval for `ask`), the handler, and the
   * ledger entry. Errors come back as tool errors carrying the OPDBUS_ERR_* code.
   */
  call(
    server: McpServer,
    session: SessionInfo,
    state: SessionState,
    tool: string,
    args: unknown,
    extra: ToolExtra,
    govern: (ctx: CallContext) => Promise<Governed>,
    run: (ctx: CallContext) => Promise<ToolOutput>,
  ): Promise<CallToolResult>;
}
