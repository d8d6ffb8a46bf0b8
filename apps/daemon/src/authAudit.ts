import { silentLogger, type Logger } from '@opdbus/core';
import { LedgerLog } from '@opdbus/runtime';

/** The `kind` of the ledger entries of refused API requests (docs/ledger-format.md). */
export const DAEMON_AUTH_FAILED_KIND = 'daemon.auth-failed';

/** Why a request was refused. */
export type AuthFailureReason = 'no-token' | 'wrong-token' | 'rate-limited';

/** Options of {@link AuthFailureAudit}. */
export interface AuthFailureAuditOptions {
  /** How long the failures of one peer are gathered into one entry after its first (default 60 s). */
  windowMs?: number;
  /** Peers tracked at once; the failures of further peers are counted under `peer: "(other)"` (default 256). */
  maxPeers?: number;
  logger?: Logger;
}

interface PeerWindow {
  first: string;
  count: number;
  reasons: Partial<Record<AuthFailureReason, number>>;
  routes: Set<string>;
  timer: NodeJS.Timeout;
}

const MAX_ROUTES = 16;
const OTHER = '(other)';

/**
 * Records failed authentication on the daemon's API in the ledger, coalesced so that a burst
 * cannot flood it: the first failure of a peer is an entry at once (`count: 1`); the failures that
 * follow within the window are counted and written as one entry when it ends (with how many, why,
 * and up to 16 of the routes asked for). Memory is bounded by `maxPeers`.
 */
export class AuthFailureAudit {
  readonly #log: LedgerLog;
  readonly #windowMs: number;
  readonly #maxPeers: number;
  readonly #logger: Logger;
  readonly #peers = new Map<string, PeerWindow>();

  constructor(stateDir: string, options: AuthFailureAuditOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#log = new LedgerLog(stateDir, this.#logger);
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxPeers = options.maxPeers ?? 256;
  }

  /** Note one refused request from `peer` (an address, or the unix socket's label) for `route`. */
  note(peer: string, route: string, reason: AuthFailureReason): void {
    const key = this.#peers.has(peer) || this.#peers.size < this.#maxPeers ? peer : OTHER;
    const open = this.#peers.get(key);
    const path = route.split('?')[0]!.slice(0, 200);
    if (open !== undefined) {
      open.count += 1;
      open.reasons[reason] = (open.reasons[reason] ?? 0) + 1;
      if (open.routes.size < MAX_ROUTES) open.routes.add(path);
      return;
    }
    const timer = setTimeout(() => void this.#flush(key), this.#windowMs);
    timer.unref();
    this.#peers.set(key, {
      first: new Date().toISOString(),
      count: 0,
      reasons: {},
      routes: new Set(),
      timer,
    });
    void this.#write({ peer: key, route: path, reason, count: 1 });
  }

  /** Write what the open windows gathered (at stop). */
  async flush(): Promise<void> {
    await Promise.all([...this.#peers.keys()].map((peer) => this.#flush(peer)));
  }

  #flush(peer: string): Promise<void> {
    const open = this.#peers.get(peer);
    if (open === undefined) return Promise.resolve();
    clearTimeout(open.timer);
    this.#peers.delete(peer);
    if (open.count === 0) return Promise.resolve();
    return this.#write({
      peer,
      since: open.first,
      count: open.count,
      reasons: open.reasons,
      routes: [...open.routes],
    });
  }

  #write(
    fields: Record<string, string | number | string[] | Partial<Record<AuthFailureReason, number>>>,
  ): Promise<void> {
    return this.#log.append(DAEMON_AUTH_FAILED_KIND, fields).then(
      () => undefined,
      (err: unknown) => this.#logger.error({ err }, 'could not record a refused API request in the ledger'),
    );
  }
}
