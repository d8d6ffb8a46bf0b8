import {
  REDACTED,
  boundedValue,
  clipText,
  silentLogger,
  type Actor,
  type JsonValue,
  type Logger,
} from '@opdbus/core';
import { LedgerLog } from '@opdbus/runtime';
import type { PolicyAction } from './policy.js';

/** The `kind` of the ledger entries opdbus-mcp writes, one per tool call (docs/ledger-format.md). */
export const MCP_CALL_KIND = 'mcp.call';

/** The `kind` of the entries for requests the HTTP transport refused (401, 403). */
export const MCP_AUTH_FAILED_KIND = 'mcp.auth-failed';

/** A request the HTTP transport refused, as recorded in the ledger. */
export interface McpAuthFailure {
  /** HTTP status: 401 (no or unknown token) or 403 (insufficient scope). */
  status: 401 | 403;
  /** What was wrong, in words. */
  reason: string;
  /** The remote address. */
  remote: string | null;
  /** The token's name when it was known (403). */
  token: string | null;
  /** The tool asked for (403). */
  tool: string | null;
}

/** Argument names whose values are withheld from the ledger (secrets). */
const SECRET_KEY = /secret|passw|private.?key|preshared|psk|token|credential|authorization/i;
/** Arguments that carry a state document: recorded by hash and size (they may hold secrets). */
const DOCUMENT_KEYS = new Set(['document']);

/**
 * The arguments of a tool call as the ledger keeps them: secrets (by name) withheld, a state
 * document by hash and size only, long strings cut.
 */
export function redactArguments(args: unknown): JsonValue {
  const walk = (value: unknown, key: string | undefined, depth: number): JsonValue => {
    if (key !== undefined && SECRET_KEY.test(key)) return REDACTED;
    if (key !== undefined && DOCUMENT_KEYS.has(key) && typeof value === 'string')
      return boundedValue(value, 0);
    if (value === null || typeof value === 'boolean' || typeof value === 'number') return value;
    if (typeof value === 'string') return clipText(value, 1024);
    if (depth > 8) return boundedValue(JSON.stringify(value) ?? null, 0);
    if (Array.isArray(value)) return value.slice(0, 100).map((v) => walk(v, undefined, depth + 1));
    if (typeof value === 'object') {
      const out: Record<string, JsonValue> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, 100)) {
        if (v !== undefined) out[k] = walk(v, k, depth + 1);
      }
      return out;
    }
    return typeof value === 'bigint' ? value.toString() : null;
  };
  return walk(args, undefined, 0);
}

/** One tool call as recorded in the ledger. */
export interface McpCallRecord {
  /** Who called: `kind: "mcp"`, the client's name and the token's. */
  actor: Actor;
  /** The MCP client (from its initialize request). */
  client: { name: string; version: string } | null;
  /** The bearer token's name, or null (stdio, unauthenticated loopback). */
  token: string | null;
  /** `dashboard`: the daemon's Chat page (an in-process client). */
  transport: 'stdio' | 'http' | 'dashboard';
  /** The MCP session id (HTTP), or null. */
  session: string | null;
  tool: string;
  /** The arguments, redacted (see {@link redactArguments}). */
  arguments: JsonValue;
  /** What the policy said, and why; null when the call failed before the policy was asked (e.g. a bad document). */
  decision: { action: PolicyAction; reason: string } | null;
  /** For `ask`: what the human answered (`accept`, `decline`, `cancel`) or `unavailable`. */
  approval?: string;
  /** ok, or the error code and message the agent got. */
  result: { ok: true; summary?: JsonValue } | { ok: false; code: string; message: string };
}

/**
 * Appends one ledger entry per MCP tool call (allowed or refused) to STATE_DIR/ledger, the same
 * transparency log the engine records plans and applies in, through the runtime's
 * {@link LedgerLog} (the one append path of every op-dbus app).
 */
export class CallLedger {
  readonly #log: LedgerLog;

  constructor(
    readonly stateDir: string,
    readonly logger: Logger = silentLogger,
  ) {
    this.#log = new LedgerLog(stateDir, logger);
  }

  /** Append the entry of a tool call; resolves to its index in the ledger. */
  record(call: McpCallRecord): Promise<number> {
    return this.#log.append(MCP_CALL_KIND, call as unknown as Record<string, JsonValue>);
  }

  /**
   * Append an `mcp.auth-failed` entry: a request the HTTP transport refused (no or unknown
   * token: 401; a read token asking for a write tool: 403).
   */
  recordAuthFailure(failure: McpAuthFailure): Promise<number> {
    return this.#log.append(MCP_AUTH_FAILED_KIND, failure as unknown as Record<string, JsonValue>);
  }
}
