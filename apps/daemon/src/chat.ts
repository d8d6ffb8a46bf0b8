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
import { OpdbusError, packageVersion, silentLogger, type Logger } from '@opdbus/core';
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
  /**
   * The conversation's id: send it with the next message to go on with it, tool results
   * included (kept {@link CONVERSATION_IDLE_MS} ms after the last turn).
   */
  conversation: string;
  entries: ChatEntry[];
  /** Present when the loop waits for an approval. */
  pending?: PendingApproval;
  /** The tool calls made for the last message, and the bound per message. */
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
/** How long a conversation is kept after its last turn, tool results included. */
export const CONVERSATION_IDLE_MS = 30 * 60_000;
/** Conversations kept at once (the least recently used idle one goes first). */
const MAX_CONVERSATIONS = 64;
/** Characters of earlier tool results sent back to the model; older ones are shortened first. */
const CONTEXT_CHARS = 120_000;

interface Conversation {
  id: string;
  owner: string;
  client: Client;
  close: () => Promise<void>;
  tools: WireTool[];
  messages: WireMessage[];
  queue: ToolCall[];
  /** Tool calls made for the current message. */
  toolCalls: number;
  /** When its last turn ended (for the least-recently-used eviction). */
  lastUsed: number;
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
 * Keep what is sent to the model bounded: when the tool results of a long conversation add up to
 * more than {@link CONTEXT_CHARS}, the oldest are shortened to a line saying so (the message
 * stays, so each tool call still has its answer).
 */
function bound(messages: WireMessage[]): void {
  let total = 0;
  for (const m of messages) if (m.role === 'tool') total += m.content.length;
  for (const m of messages) {
    if (total <= CONTEXT_CHARS) return;
    if (m.role !== 'tool' || m.content.startsWith('(earlier result left out')) continue;
    const note = `(earlier result left out to keep the conversation short; call the tool again if it is needed)`;
    total -= m.content.length - note.length;
    m.content = note;
  }
}

/**
 * The Chat page's tool loop. A {@link Conversation} (its in-process MCP session and every message,
 * tool calls and results included) is kept in memory between the operator's messages, so the
 * model sees what its tools returned earlier without calling them again: for
 * {@link CONVERSATION_IDLE_MS} after its last turn, 10 minutes while a tool call waits for an
 * approval, at most {@link MAX_CONVERSATIONS} at once. Only the token that started one can go on
 * with it.
 */
export class ChatService {
  readonly model: string;
  readonly endpoint: string;
  readonly maxToolCalls: number;
  readonly #options: ChatOptions;
  readonly #logger: Logger;
  /** Every open conversation; those waiting for an approval have `approval` set. */
  readonly #conversations = new Map<string, Conversation>();
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

  /**
   * Send the operator's message and run the loop until an answer or an approval. With the id of a
   * kept `conversation` of this token, only the transcript's last message (the new one, from the
   * user) is added to it; otherwise a conversation starts from the page's transcript (and, when
   * the id was given but is gone, the first entry says so).
   */
  async chat(identity: TokenIdentity, transcript: ChatMessage[], conversation?: string): Promise<ChatTurn> {
    this.#rateLimit(identity);
    const last = transcript.at(-1);
    if (last?.role !== 'user')
      throw new OpdbusError(
        'OPDBUS_ERR_API_BAD_REQUEST',
        "The last message of `messages` must be the operator's new one (role user).",
      );
    const kept = conversation === undefined ? undefined : this.#conversations.get(conversation);
    if (kept?.approval !== undefined && kept.owner === identity.name)
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_BUSY',
        `This conversation waits for an approval of ${kept.approval.pending.tool}; approve or deny it first.`,
      );
    if (kept !== undefined && kept.owner === identity.name) {
      clearTimeout(kept.timer);
      kept.toolCalls = 0;
      kept.messages.push({ role: 'user', content: last.content });
      return this.#run(kept, []);
    }
    if (this.#waiting() >= MAX_PENDING)
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_BUSY',
        `${MAX_PENDING} chat conversations already wait for approvals; approve or deny them first.`,
      );
    const conv = await this.#open(identity);
    conv.messages.push(...transcript.map((m) => ({ role: m.role, content: m.content })));
    const entries: ChatEntry[] =
      conversation === undefined
        ? []
        : [
            {
              kind: 'notice',
              content: `The earlier conversation is no longer kept (conversations are kept ${CONVERSATION_IDLE_MS / 60_000} minutes after their last message); the model starts again from the messages, without their tool results.`,
            },
          ];
    return this.#run(conv, entries);
  }

  /** Approve or deny the tool call a conversation waits on, then go on with the loop. */
  async approve(identity: TokenIdentity, id: string, approve: boolean): Promise<ChatTurn> {
    const conv = this.#conversations.get(id);
    if (conv === undefined || conv.owner !== identity.name || conv.approval === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_CHAT_NO_APPROVAL',
        `No chat approval ${id.slice(0, 64)} is waiting for "${identity.name}" (it was answered, or expired after ${PENDING_TTL_MS / 60_000} minutes); send the message again.`,
      );
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
    const all = [...this.#conversations.values()];
    this.#conversations.clear();
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
      { name: 'opdbus-dashboard-chat', version: packageVersion(import.meta.url) },
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
      lastUsed: Date.now(),
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
      conversation: conv.id,
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
                content: `Stopped: this message reached its bound of ${this.maxToolCalls} tool calls.`,
              });
              // The calls the model asked for and that did not run get an answer saying so,
              // so that the kept conversation stays well-formed for the next message.
              for (const skipped of conv.queue)
                conv.messages.push({
                  role: 'tool',
                  tool_call_id: skipped.id,
                  content: `Not run: the bound of ${this.maxToolCalls} tool calls per message was reached.`,
                });
              conv.queue = [];
              this.#keep(conv, CONVERSATION_IDLE_MS);
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
            this.#keep(conv, PENDING_TTL_MS);
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
        bound(conv.messages);
        const reply = await this.#complete(conv);
        conv.messages.push(reply);
        if (reply.content !== null && reply.content !== '')
          entries.push({ kind: 'assistant', content: reply.content });
        conv.queue = [...(reply.tool_calls ?? [])];
        if (conv.queue.length === 0) {
          this.#keep(conv, CONVERSATION_IDLE_MS);
          return turn();
        }
      }
    } catch (err) {
      await this.#drop(conv);
      throw err;
    }
  }

  /** Conversations waiting for an approval. */
  #waiting(): number {
    let n = 0;
    for (const conv of this.#conversations.values()) if (conv.approval !== undefined) n++;
    return n;
  }

  /**
   * Keep a conversation for `ms` (then it is closed; one waiting for an approval is cancelled),
   * making room by closing the least recently used idle one when too many are kept.
   */
  #keep(conv: Conversation, ms: number): void {
    clearTimeout(conv.timer);
    conv.lastUsed = Date.now();
    this.#conversations.set(conv.id, conv);
    conv.timer = setTimeout(() => void this.#drop(conv), ms);
    conv.timer.unref();
    while (this.#conversations.size > MAX_CONVERSATIONS) {
      let oldest: Conversation | undefined;
      for (const c of this.#conversations.values())
        if (c.approval === undefined && c !== conv && (oldest === undefined || c.lastUsed < oldest.lastUsed))
          oldest = c;
      if (oldest === undefined) break;
      void this.#drop(oldest);
    }
  }

  /** Forget a conversation and close its MCP session (an approval it waits on is cancelled). */
  async #drop(conv: Conversation): Promise<void> {
    if (this.#conversations.get(conv.id) === conv) this.#conversations.delete(conv.id);
    clearTimeout(conv.timer);
    conv.approval?.answer({ action: 'cancel' });
    delete conv.approval;
    await conv.close();
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
