import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type Session } from '../api.js';
import { ErrorBox, Page, html, useApi } from '../ui.js';

type Entry =
  | { kind: 'user'; content: string }
  | { kind: 'assistant'; content: string }
  | { kind: 'tool'; tool: string; arguments: unknown; ok: boolean; result: string }
  | { kind: 'notice'; content: string };

interface Pending {
  id: string;
  tool: string;
  arguments: unknown;
  message: string;
}

interface Turn {
  conversation: string;
  entries: Entry[];
  pending?: Pending;
  toolCalls: number;
  maxToolCalls: number;
}

type ChatInfo =
  | { configured: true; model: string; endpoint: string; maxToolCalls: number; policy: string }
  | { configured: false; help: string };

const asError = (e: unknown): ApiError =>
  e instanceof ApiError ? e : new ApiError(0, 'OPDBUS_ERR_INTERNAL', String(e));

function EntryView({ entry }: { entry: Entry }): ComponentChildren {
  switch (entry.kind) {
    case 'user':
      return html`<li class="chat-user"><span class="sr-only">You: </span>${entry.content}</li>`;
    case 'assistant':
      return html`<li class="chat-assistant"><span class="sr-only">Model: </span>${entry.content}</li>`;
    case 'notice':
      return html`<li class="chat-notice">${entry.content}</li>`;
    case 'tool':
      return html`<li class=${entry.ok ? 'chat-tool' : 'chat-tool failed'}>
        <details>
          <summary>
            Tool <code>${entry.tool}</code>: ${entry.ok ? 'done' : 'refused or failed'}
          </summary>
          <pre class="json">${JSON.stringify(entry.arguments, null, 2)}</pre>
          <pre class="json">${entry.result}</pre>
        </details>
      </li>`;
  }
}

/**
 * Chat: the operator talks to a model of their own choosing, which acts only through the MCP
 * server's tools (the daemon runs the loop; the key never reaches the browser). Tool calls the
 * policy marks `ask` wait here for Approve or Deny.
 */
export function ChatPage({ session }: { session: Session }): ComponentChildren {
  const info = useApi<ChatInfo>('/v1/chat');
  const [entries, setEntries] = useState<Entry[]>([]);
  const [text, setText] = useState('');
  const [pending, setPending] = useState<Pending | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  // The daemon keeps the conversation (tool results included) between messages: its id.
  const [conversation, setConversation] = useState<string | undefined>(undefined);
  const end = useRef<HTMLLIElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const approveButton = useRef<HTMLButtonElement>(null);
  useEffect(() => end.current?.scrollIntoView({ block: 'nearest' }), [entries, pending]);
  // Keyboard users land where the next step is: the approval's button, else the message field.
  useEffect(() => {
    if (busy || entries.length === 0) return;
    if (pending !== undefined) approveButton.current?.focus();
    else input.current?.focus();
  }, [busy, pending]);

  const take = (turn: Turn): void => {
    setEntries((all) => [...all, ...turn.entries]);
    setPending(turn.pending);
    setConversation(turn.conversation);
  };
  const run = (fn: () => Promise<void>): void => {
    setBusy(true);
    setError(undefined);
    fn()
      .catch((e: unknown) => setError(asError(e)))
      .finally(() => setBusy(false));
  };
  const send = (e: Event): void => {
    e.preventDefault();
    const content = text.trim();
    if (content === '' || busy || pending !== undefined) return;
    const next: Entry[] = [...entries, { kind: 'user', content }];
    setEntries(next);
    setText('');
    // What was said. The daemon goes on with the conversation it keeps (with the tool calls and
    // their results); when that has expired, it starts again from these messages.
    const messages = next
      .filter(
        (m): m is Extract<Entry, { kind: 'user' | 'assistant' }> =>
          m.kind === 'user' || m.kind === 'assistant',
      )
      .slice(-50)
      .map((m) => ({ role: m.kind, content: m.content }));
    run(async () =>
      take(
        await api<Turn>('/v1/chat', {
          method: 'POST',
          body: conversation === undefined ? { messages } : { messages, conversation },
        }),
      ),
    );
  };
  const answer = (approve: boolean): void => {
    if (pending === undefined) return;
    const id = pending.id;
    run(async () => {
      try {
        take(await api<Turn>('/v1/chat/approve', { method: 'POST', body: { id, approve } }));
      } catch (e) {
        setPending(undefined);
        throw e;
      }
    });
  };

  if (info.data !== undefined && !info.data.configured)
    return html`<${Page} title="Chat">
      <p class="note" data-testid="chat-unconfigured">${info.data.help}</p>
    </${Page}>`;
  const about = info.data?.configured === true ? info.data : undefined;
  return html`<${Page} title="Chat">
    <${ErrorBox} error=${info.error} />
    <p>
      ${
        about === undefined
          ? '…'
          : html`Model <code>${about.model}</code> at ${about.endpoint}. It acts only through the MCP tools, under
            the policy ${about.policy}, at most ${about.maxToolCalls} tool calls a message; every call is in the
            ledger.`
      }
      ${session.scope === 'read' ? ' Your token is read-only: the model can read, not change.' : ''}
    </p>
    <ol class="chat" aria-label="Conversation" aria-live="polite">
      ${entries.map((entry) => html`<${EntryView} entry=${entry} />`)}
      ${
        pending === undefined
          ? null
          : html`<li class="chat-approval" role="group" aria-labelledby="approval-title">
            <h2 id="approval-title">Approve <code>${pending.tool}</code>?</h2>
            <pre class="json">${pending.message}</pre>
            ${
              session.scope === 'write'
                ? html`<div class="toolbar">
                  <button
                    type="button"
                    class="primary"
                    ref=${approveButton}
                    disabled=${busy}
                    onClick=${() => answer(true)}
                  >
                    Approve
                  </button>
                  <button type="button" disabled=${busy} onClick=${() => answer(false)}>Deny</button>
                </div>`
                : html`<p>A write token must approve this.</p>`
            }
          </li>`
      }
      <li ref=${end} class="sr-only" aria-hidden="true"></li>
    </ol>
    ${busy ? html`<p role="status">Waiting for the model…</p>` : null}
    <${ErrorBox} error=${error} />
    <form onSubmit=${send} class="chat-input">
      <label for="chat-message">Message</label>
      <textarea
        id="chat-message"
        ref=${input}
        rows="3"
        value=${text}
        disabled=${busy || pending !== undefined}
        onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown=${(e: KeyboardEvent) => {
          if (e.key === 'Enter' && !e.shiftKey) send(e);
        }}
        aria-describedby="chat-help"
      ></textarea>
      <p id="chat-help" class="help">Enter sends; Shift+Enter starts a new line.</p>
      <div class="toolbar">
        <button type="submit" disabled=${busy || pending !== undefined || text.trim() === ''}>Send</button>
        <button
          type="button"
          disabled=${busy || pending !== undefined || entries.length === 0}
          onClick=${() => {
            setEntries([]);
            setConversation(undefined);
            input.current?.focus();
          }}
        >
          New conversation
        </button>
      </div>
    </form>
  </${Page}>`;
}
