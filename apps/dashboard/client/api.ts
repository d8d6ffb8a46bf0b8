// The daemon's API from the page: same origin, the session cookie (httpOnly, set by POST
// /v1/session) plus the per-session CSRF token in X-CSRF-Token on every request that changes state.

/** Who is logged in (the token's name and scope), as GET /v1/session answers. */
export interface Session {
  name: string;
  scope: 'read' | 'write';
  csrf: string;
  expiresAt: string;
}

/** An error the API answered with (`OPDBUS_ERR_*` code and message). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf = '';
let onUnauthorized: () => void = () => undefined;

/** Remember the session's CSRF token and what to do when the session ends (401). */
export function useSession(session: Session | undefined, unauthorized: () => void): void {
  csrf = session?.csrf ?? '';
  onUnauthorized = unauthorized;
}

/** Call the API; throws {@link ApiError} with the daemon's code and message. */
export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown; token?: string } = {},
): Promise<T> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const error = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 401 && init.token === undefined) onUnauthorized();
    throw new ApiError(res.status, error?.code ?? `HTTP ${res.status}`, error?.message ?? res.statusText);
  }
  return data as T;
}

/** A daemon event from /v1/events (drift, drift.resolved, correction, hold, transaction, baseline, reload, status). */
export interface DaemonEvent {
  type: string;
  at?: string;
  [key: string]: unknown;
}

type Listener = (event: DaemonEvent) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;
let connected = false;
const statusListeners = new Set<(connected: boolean) => void>();

const eventTypes = [
  'drift',
  'drift.resolved',
  'drift.recorded',
  'correction',
  'hold',
  'transaction',
  'baseline',
  'reload',
  'status',
];

/** Open the one Server-Sent Events stream of the page (the cookie authenticates it). */
export function connectEvents(): void {
  if (source !== undefined) return;
  source = new EventSource('/v1/events');
  source.onopen = () => setConnected(true);
  source.onerror = () => setConnected(false);
  for (const type of eventTypes)
    source.addEventListener(type, (e: MessageEvent<string>) => {
      let data: DaemonEvent;
      try {
        data = { ...(JSON.parse(e.data) as Record<string, unknown>), type };
      } catch {
        return;
      }
      for (const l of listeners) l(data);
    });
}

/** Close the stream (at logout). */
export function disconnectEvents(): void {
  source?.close();
  source = undefined;
  setConnected(false);
}

function setConnected(value: boolean): void {
  connected = value;
  for (const l of statusListeners) l(value);
}

/** Listen to daemon events; returns the function that stops listening. */
export function onEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Listen to the stream's connection state; returns the function that stops listening. */
export function onConnection(listener: (connected: boolean) => void): () => void {
  statusListeners.add(listener);
  listener(connected);
  return () => statusListeners.delete(listener);
}
