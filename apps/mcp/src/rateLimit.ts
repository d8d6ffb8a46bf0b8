/**
 * A token bucket: `perMinute` calls a minute on average, up to `burst` at once. One per MCP
 * session for its write tools (apply, confirm, rollback).
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket({ perMinute: 6, burst: 2 });
 * bucket.take(); // { ok: true }
 * bucket.take(); // { ok: true }
 * bucket.take(); // { ok: false, retryAfterS: 10 }
 * ```
 */
export class TokenBucket {
  readonly perMinute: number;
  readonly burst: number;
  #tokens: number;
  #at: number;
  readonly #now: () => number;

  constructor(options: { perMinute: number; burst?: number; now?: () => number }) {
    this.perMinute = options.perMinute;
    this.burst = Math.max(1, options.burst ?? Math.ceil(options.perMinute / 2));
    this.#now = options.now ?? Date.now;
    this.#tokens = this.burst;
    this.#at = this.#now();
  }

  /** Take one token: ok, or how many seconds until one is there. */
  take(): { ok: true } | { ok: false; retryAfterS: number } {
    const now = this.#now();
    const perMs = this.perMinute / 60_000;
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#at) * perMs);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.ceil((1 - this.#tokens) / perMs / 1000) };
  }
}
