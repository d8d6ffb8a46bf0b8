import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenIdentity } from '@opdbus/runtime';

/** A browser session: made by logging in with a token, bound to that token's name and scope. */
export interface Session {
  /** The cookie value (32 random bytes, base64url). */
  id: string;
  /** The per-session CSRF token the page sends in `X-CSRF-Token` with each state-changing request. */
  csrf: string;
  identity: TokenIdentity;
  createdAt: number;
  /** Idle expiry (ms since the epoch); each use moves it on, never past `createdAt + maxAgeMs`. */
  expiresAt: number;
}

/** Options of {@link SessionStore}. */
export interface SessionOptions {
  /** A session unused this long ends (default 30 min). */
  idleMs?: number;
  /** A session ends this long after login whatever its use (default 12 h). */
  maxAgeMs?: number;
  /** Sessions kept at most; the oldest is dropped beyond (default 1000). */
  max?: number;
}

/** The name of the session cookie. */
export const SESSION_COOKIE = 'opdbus_session';

const sameString = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * Server-side sessions of the dashboard: random ids in an httpOnly cookie, a map with idle and
 * absolute expiry, bounded in size. Nothing about the token is kept but its name and scope.
 */
export class SessionStore {
  readonly idleMs: number;
  readonly maxAgeMs: number;
  readonly #max: number;
  readonly #sessions = new Map<string, Session>();

  constructor(options: SessionOptions = {}) {
    this.idleMs = options.idleMs ?? 30 * 60_000;
    this.maxAgeMs = options.maxAgeMs ?? 12 * 3_600_000;
    this.#max = options.max ?? 1000;
  }

  /** The number of live sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** A new session for a token that was just checked. */
  create(identity: TokenIdentity, now = Date.now()): Session {
    this.#sweep(now);
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      identity: { name: identity.name, scope: identity.scope },
      createdAt: now,
      expiresAt: Math.min(now + this.idleMs, now + this.maxAgeMs),
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session with this cookie value (its idle expiry moved on), or undefined. */
  get(id: string | undefined, now = Date.now()): Session | undefined {
    if (id === undefined || id.length > 100) return undefined;
    const session = this.#sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= now) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.expiresAt = Math.min(now + this.idleMs, session.createdAt + this.maxAgeMs);
    return session;
  }

  /** Whether `presented` is the session's CSRF token (constant time). */
  static csrfMatches(session: Session, presented: string | string[] | undefined): boolean {
    return typeof presented === 'string' && sameString(presented, session.csrf);
  }

  /** End a session (logout). */
  delete(id: string): boolean {
    return this.#sessions.delete(id);
  }

  /** End every session of a token name (e.g. when the token file no longer has it). */
  deleteFor(name: string): number {
    let n = 0;
    for (const [id, s] of this.#sessions)
      if (s.identity.name === name) {
        this.#sessions.delete(id);
        n++;
      }
    return n;
  }

  #sweep(now: number): void {
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id);
  }
}
