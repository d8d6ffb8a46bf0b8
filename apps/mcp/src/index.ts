/**
 * opdbus-mcp: an MCP server (the official TypeScript SDK, protocol 2025-11-25) through which AI
 * agents query, plan and apply the declared state of a Linux host under a human-approved policy,
 * over stdio or Streamable HTTP; every tool call is recorded in the host's ledger.
 *
 * @packageDocumentation
 */
export {
  CallLedger,
  MCP_AUTH_FAILED_KIND,
  MCP_CALL_KIND,
  redactArguments,
  type McpAuthFailure,
  type McpCallRecord,
} from './audit.js';
export { mcpErrors, type McpErrorCode } from './errors.js';
export { BoundedEventStore } from './eventStore.js';
export {
  isLoopback,
  parseListen,
  registerMcpRoutes,
  startHttp,
  type HttpEndpoint,
  type HttpOptions,
  type McpRoutesOptions,
} from './http.js';
export { buildProgram, main, type McpCommandOptions } from './main.js';
export { OAuthRefusal, OAuthResourceServer, type OAuthIdentity, type OAuthOptions } from './oauth.js';
export {
  Policy,
  isWriteTool,
  readTools,
  writeTools,
  type PolicyAction,
  type PolicyDecision,
  type PolicyRule,
  type PolicySubject,
  type PolicyTool,
} from './policy.js';
export { TokenBucket } from './rateLimit.js';
export { MCP_SERVER_VERSION, OpdbusMcp } from './service.js';
export {
  type CallContext,
  type Governed,
  type McpHost,
  type McpServiceOptions,
  type SessionInfo,
  type SessionState,
  type ToolExtra,
  type ToolOutput,
} from './serviceTypes.js';
export { formatPlanPreview } from './tools.js';
