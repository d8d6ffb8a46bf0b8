// The dashboard's Chat page, server side: a tool loop between an OpenAI-compatible chat-completions
// endpoint (the operator's model) and the opdbus MCP server, run in the daemon so the endpoint's
// key never reaches the browser. The model acts ONLY through MCP tools: an in-process MCP client
// talks to an in-process opdbus-mcp server over the SDK's InMemoryTransport, so every call goes
// through the same scope check, rate limit, policy and ledger audit as any MCP client. A call the
// policy marks `ask` reaches this client as an elicitation; it is not answered until an operator
// approves or denies it on the page (POST /v1/chat/approve).
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import {
  ElicitRequestSchema,
  type CallToolResult,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import type { OpdbusMcp } from '@opdbus/mcp';
// The rate limiter alone: importing @opdbus/mcp loads the MCP server (the chat loads it when it is on).
import { TokenBucket } from '@opdbus/mcp/rate-limit';
import type { TokenIdentity } from '@opdbus/runtime';

/** How the daemon reaches the operator's model. */
export interface ChatOptions {
  /** The chat-completions URL (e.g. `https://api.example.com/v1/chat/completions`). */
  endpoint: string;
  /** The model name sent with each request. */
  model: string;
  /** The API key sent as `Authorization: Bearer` (absent: none is sent, e.g. a local server). */
  apiKey?: string;
  /** The MCP service whose tools the model may call (its policy and ledger apply). */
  mcp: OpdbusMcp;
  /** Tool calls one conversation may make until the loop stops (default 8). */
  maxToolCalls?: number;
  /** Chat requests a minute per token (default 20). */
  requestsPerMinute?: number;
  /** How long the endpoint may take for one answer, in ms (default 120 000). */
  endpointTimeoutMs?: number;
  logger?: Logger;
}

/** A message of the conversation as the page sends it. */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** What the loop did, in order, for the page to show. */
export type ChatEntry =
  | { kind: 'assistant'; content: string }
  | { kind: 'tool'; tool: string; arguments: unknown; ok: boolean; result: string }
  | { kind: 'notice'; content: string };

/** A tool call the policy wants a human to approve before it runs. */
export interface PendingApproval {
  /** The id to send to POST /v1/chat/approve. */
  id: string;
  tool: string;
  arguments: unknown;
  /** What the MCP server asks (the plan, and the policy's reason). */
  message: string;
}

/** The answer to POST /v1/chat and /v1/chat/approve. */
export interface ChatTurn {
  entries: ChatEntry[];
  /** Present when the loop waits for an approval. */
  pending?: PendingApproval;
  /** The tool calls this conversation made so far, and its bound. */
  toolCalls: number;
  maxToolCalls: number;
}

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}
type WireMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };
interface WireTool {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

const SYSTEM_PROMPT =
  'You are the operator assistant of op-dbus, which manages the declared state of this Linux host. ' +
  'You act only through the tools you are given: read with query, change with a state document ' +
  '(plan first, then apply). Changes may need the operator to approve them; every call is recorded ' +
  "in the host's ledger. Say briefly what you did and what you found.";

const RESULT_CHARS = 24_000;
const PENDING_TTL_MS = 10 * 60_000;
const MAX_PENDING = 16;

interface Conversation {
  id: string;
  owner: string;
  client: Client;
  close: () => Promise<void>;
  tools: WireTool[];
  messages: WireMessage[];
  queue: ToolCall[];
  toolCalls: number;
  /** The tool call in flight, while it waits for an approval. */
  inFlight?: Promise<CallToolResult>;
  /** Set when the server elicits an approval; resolves the elicitation. */
  approval?: { pending: PendingApproval; answer: (result: ElicitResult) => void };
  /** Wakes the loop when an elicitation arrives. */
  elicited?: () => void;
  timer?: NodeJS.Timeout;
}

/** Read the endpoint's API key from a file only its owner can read (mode 0600). */
export function readChatKeyFile(path: string): string {
  const fail = (what: string): never => {
    throw new OpdbusError('OPDBUS_ERR_CHAT_CONFIG', `The chat key file ${path} ${what}`, { data: { path } });
  };
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return fail('cannot be read; give --chat-key-file a file holding the API key (mode 0600).');
  }
  if ((mode & 0o077) !== 0)
    fail(`is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it.`);
  const key = readFileSync(path, 'utf8').trim();
  if (key === '' || /\s/.test(key)) fail('must hold the API key alone, on one line.');
  return key;
}

/** Check the endpoint URL of `--chat-endpoint`. */
export function parseChatEndpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OpdbusError(
      'OPDBUS_ERR_CHAT_CONFIG',
      `--chat-endpoint "${text.slice(0, 200)}" is not a URL; give the chat-completions URL, e.g. https://HOST/v1/chat/completions.`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new OpdbusError(
      'OPDBUS_ERR_CHAT_CONFIG',
      `--chat-endpoint must be an http(s) URL, got ${url.protocol}.`,
    );
  if (url.username !== '' || url.password !== '')
    throw new OpdbusError(
      'OPDBUS_ERR_CHAT_CONFIG',
      '--chat-endpoint must not carry credentials; put the API key in --chat-key-file.',
    );
  return url.toString();
}

const textOf = (result: CallToolResult): string => {
  const text = result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
  return text.length > RESULT_CHARS ? `${text.slice(0, RESULT_CHARS)}\n… (truncated)` : text;
};

/**
 * The Chat page's tool loop. One {@link Conversation} per chat request; it lives on (in memory,
 * at most 10 minutes) only while a tool call waits for an approval.
 */
export class ChatService {
  readonly model: string;
  readonly endpoint: string;
  readonly maxToolCalls: number;
  readonly #options: ChatOptions;
  readonly #logger: Logger;
  readonly #pending = new Map<string, Conversation>();
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(options: ChatOptions) {
    this.#options = options;
    this.model = options.model;
    this.endpoint = options.endpoint;
    this.maxToolCalls = options.maxToolCalls ?? 8;
    this.#logger = options.logger ?? silentLogger;
  }

  /** What the page shows about the configuration (never the key). */
  describe(): { configured: true; model: string; endpoint: string; maxToolCalls: number; policy: string } {
    const url = new URL(this.endpoint);
    return {
      configured: true,
      model: this.model,
      endpoint: `${url.protocol}//${url.host}`,
      maxToolCalls: this.maxToolCalls,
      policy: this.#options.mcp.policy.source,
    };
  }

  /** Start a conversation from the page's transcript and run the loop until an answer or an approval. */
  async chat(identity: TokenIdentity, transcript: ChatMessage[]): Promise<ChatTurn> {
    this.#rateLimit(identity);
    if (this.#pending.size >= MAX_PENDING)
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_BUSY',
        `${MAX_PENDING} chat conversations already wait for approvals; approve or deny them first.`,
      );
    const conv = await this.#open(identity);
    conv.messages.push(...transcript.map((m) => ({ role: m.role, content: m.content })));
    return this.#run(conv, []);
  }

  /** Approve or deny the tool call a conversation waits on, then go on with the loop. */
  async approve(identity: TokenIdentity, id: string, approve: boolean): Promise<ChatTurn> {
    const conv = this.#pending.get(id);
    if (conv === undefined || conv.owner !== identity.name || conv.approval === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_NO_APPROVAL',
        `No chat approval ${id.slice(0, 64)} is waiting for "${identity.name}" (it was answered, or expired after ${PENDING_TTL_MS / 60_000} minutes); send the message again.`,
      );
    this.#pending.delete(id);
    clearTimeout(conv.timer);
    const { pending, answer } = conv.approval;
    delete conv.approval;
    this.#logger.info(
      { actor: identity.name, tool: pending.tool, approve },
      approve ? 'chat: tool call approved' : 'chat: tool call denied',
    );
    answer(approve ? { action: 'accept', content: { approve: true } } : { action: 'decline' });
    return this.#run(conv, [
      { kind: 'notice', content: `${approve ? 'Approved' : 'Denied'} by ${identity.name}: ${pending.tool}` },
    ]);
  }

  /** End every conversation (the daemon stops). */
  async close(): Promise<void> {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const conv of all) {
      clearTimeout(conv.timer);
      conv.approval?.answer({ action: 'cancel' });
      await conv.close();
    }
  }

  #rateLimit(identity: TokenIdentity): void {
    let bucket = this.#buckets.get(identity.name);
    if (bucket === undefined) {
      bucket = new TokenBucket({ perMinute: this.#options.requestsPerMinute ?? 20 });
      this.#buckets.set(identity.name, bucket);
    }
    const taken = bucket.take();
    if (!taken.ok)
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_RATE_LIMITED',
        `Too many chat requests from "${identity.name}"; retry in ${taken.retryAfterS} s.`,
        { data: { retryAfterS: taken.retryAfterS } },
      );
  }

  async #open(identity: TokenIdentity): Promise<Conversation> {
    const server = this.#options.mcp.createServer({
      transport: 'dashboard',
      token: identity,
      scope: identity.scope,
    });
    const client = new Client(
      { name: 'opdbus-dashboard-chat', version: '0.1.0' },
      { capabilities: { elicitation: { form: {} } } },
    );
    const conv: Conversation = {
      id: randomUUID(),
      owner: identity.name,
      client,
      close: async () => {
        await client.close().catch(() => undefined);
        await server.close().catch(() => undefined);
      },
      tools: [],
      messages: [{ role: 'system', content: SYSTEM_PROMPT }],
      queue: [],
      toolCalls: 0,
    };
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      const call = conv.queue[0];
      const message = 'message' in request.params ? request.params.message : '';
      return new Promise<ElicitResult>((answer) => {
        conv.approval = {
          pending: {
            id: conv.id,
            tool: call?.function.name ?? 'unknown',
            arguments: call === undefined ? null : (parseArguments(call.function.arguments) ?? null),
            message,
          },
          answer,
        };
        conv.elicited?.();
      });
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    const { tools } = await client.listTools();
    conv.tools = tools.map((t) => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description === undefined ? {} : { description: t.description }),
        parameters: t.inputSchema,
      },
    }));
    return conv;
  }

  /** Run the loop: tool calls the model asked for, then the model again, until it answers. */
  async #run(conv: Conversation, entries: ChatEntry[]): Promise<ChatTurn> {
    const turn = (pending?: PendingApproval): ChatTurn => ({
      entries,
      ...(pending === undefined ? {} : { pending }),
      toolCalls: conv.toolCalls,
      maxToolCalls: this.maxToolCalls,
    });
    try {
      for (;;) {
        const call = conv.queue[0];
        if (call !== undefined) {
          let result = conv.inFlight;
          if (result === undefined) {
            if (conv.toolCalls >= this.maxToolCalls) {
              entries.push({
                kind: 'notice',
                content: `Stopped: this conversation reached its bound of ${this.maxToolCalls} tool calls.`,
              });
              await conv.close();
              return turn();
            }
            conv.toolCalls += 1;
            const args = parseArguments(call.function.arguments);
            // Arguments that are not a JSON object, or a tool the server does not have: the model
            // hears why, as a tool error, and the loop goes on.
            result = (
              args === undefined
                ? Promise.resolve(toolError('the arguments are not a JSON object; send them as one.'))
                : (conv.client.callTool({ name: call.function.name, arguments: args }, undefined, {
                    timeout: PENDING_TTL_MS + 60_000,
                  }) as Promise<CallToolResult>)
            ).catch((err: unknown) => toolError(err instanceof Error ? err.message : String(err)));
            conv.inFlight = result;
          }
          const elicited = new Promise<'approval'>((resolve) => {
            conv.elicited = () => resolve('approval');
          });
          const outcome = await Promise.race([result, elicited]);
          delete conv.elicited;
          if (outcome === 'approval') {
            const pending = conv.approval!.pending;
            this.#pending.set(conv.id, conv);
            conv.timer = setTimeout(() => {
              if (this.#pending.get(conv.id) !== conv) return;
              this.#pending.delete(conv.id);
              conv.approval?.answer({ action: 'cancel' });
              void conv.close();
            }, PENDING_TTL_MS);
            conv.timer.unref();
            return turn(pending);
          }
          delete conv.inFlight;
          conv.queue.shift();
          const text = textOf(outcome);
          entries.push({
            kind: 'tool',
            tool: call.function.name,
            arguments: parseArguments(call.function.arguments) ?? call.function.arguments.slice(0, 2000),
            ok: outcome.isError !== true,
            result: text,
          });
          conv.messages.push({ role: 'tool', tool_call_id: call.id, content: text });
          continue;
        }
        const reply = await this.#complete(conv);
        conv.messages.push(reply);
        if (reply.content !== null && reply.content !== '')
          entries.push({ kind: 'assistant', content: reply.content });
        conv.queue = [...(reply.tool_calls ?? [])];
        if (conv.queue.length === 0) {
          await conv.close();
          return turn();
        }
      }
    } catch (err) {
      this.#pending.delete(conv.id);
      clearTimeout(conv.timer);
      await conv.close();
      throw err;
    }
  }

  /** One request to the chat-completions endpoint. */
  async #complete(conv: Conversation): Promise<Extract<WireMessage, { role: 'assistant' }>> {
    const fail = (what: string): never => {
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_ENDPOINT',
        `The chat endpoint ${this.describe().endpoint} ${what}`,
      );
    };
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.#options.apiKey === undefined ? {} : { authorization: `Bearer ${this.#options.apiKey}` }),
        },
        body: JSON.stringify({
          model: this.model,
          messages: conv.messages,
          tools: conv.tools,
          tool_choice: 'auto',
        }),
        signal: AbortSignal.timeout(this.#options.endpointTimeoutMs ?? 120_000),
      });
    } catch (err) {
      return fail(`could not be reached (${err instanceof Error ? err.message : String(err)}).`);
    }
    const body = await res.text();
    if (!res.ok) return fail(`answered HTTP ${res.status}: ${body.slice(0, 300)}`);
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      return fail('did not answer JSON.');
    }
    const message = (data as { choices?: { message?: unknown }[] }).choices?.[0]?.message as
      { content?: unknown; tool_calls?: unknown } | undefined;
    if (message === undefined) return fail('answered without choices[0].message.');
    const calls = Array.isArray(message.tool_calls) ? (message.tool_calls as ToolCall[]) : [];
    for (const c of calls)
      if (typeof c?.id !== 'string' || typeof c.function?.name !== 'string')
        return fail('answered a tool call without an id or function name.');
    return {
      role: 'assistant',
      content: typeof message.content === 'string' ? message.content : null,
      ...(calls.length === 0
        ? {}
        : {
            tool_calls: calls.map((c) => ({
              id: c.id,
              type: 'function' as const,
              function: { name: c.function.name, arguments: String(c.function.arguments ?? '{}') },
            })),
          }),
    };
  }
}

/** The arguments of a tool call: a JSON object, or undefined. */
function parseArguments(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text.trim() === '' ? '{}' : text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const toolError = (message: string): CallToolResult => ({
  isError: true,
  content: [{ type: 'text', text: `The tool call was not run: ${message}` }],
});
