/** Options of {@link FlapDamper}. */
export interface DampingOptions {
  /** Drifts of one resource within `windowMs` that put it on hold (default 5). */
  threshold: number;
  /** The window (default 60 s). */
  windowMs: number;
  /** How long a hold lasts (default 5 min); then the resource is enforced again. */
  holdMs: number;
}

/** Default flap damping: 5 drifts in a minute → 5 minutes on hold. */
export const defaultDamping: DampingOptions = { threshold: 5, windowMs: 60_000, holdMs: 300_000 };

/** A resource on hold. */
export interface Hold {
  key: string;
  since: string;
  until: string;
  drifts: number;
}

/**
 * Flap damping: a resource that drifts `threshold` times within `windowMs` is put on hold for
 * `holdMs`: reported, not fought. Memory is bounded by the number of managed resources.
 */
export class FlapDamper {
  readonly #seen = new Map<string, number[]>();
  readonly #holds = new Map<string, Hold>();

  constructor(readonly options: DampingOptions = defaultDamping) {}

  /** Count one drift of `key`; returns the new hold when this drift puts it on hold. */
  drifted(key: string, now = Date.now()): Hold | undefined {
    const times = (this.#seen.get(key) ?? []).filter((t) => now - t < this.options.windowMs);
    times.push(now);
    if (times.length > this.options.threshold) times.splice(0, times.length - this.options.threshold);
    this.#seen.set(key, times);
    if (this.held(key, now) !== undefined || times.length < this.options.threshold) return undefined;
    const hold: Hold = {
      key,
      since: new Date(now).toISOString(),
      until: new Date(now + this.options.holdMs).toISOString(),
      drifts: times.length,
    };
    this.#holds.set(key, hold);
    this.#seen.delete(key);
    return hold;
  }

  /** The hold of `key`, if it is on hold now (expired holds are dropped). */
  held(key: string, now = Date.now()): Hold | undefined {
    const hold = this.#holds.get(key);
    if (hold === undefined) return undefined;
    if (Date.parse(hold.until) <= now) {
      this.#holds.delete(key);
      return undefined;
    }
    return hold;
  }

  /** Holds in force now. */
  holds(now = Date.now()): Hold[] {
    return [...this.#holds.keys()].map((k) => this.held(k, now)).filter((h): h is Hold => h !== undefined);
  }

  /** Release a hold (e.g. the document changed). */
  release(key?: string): void {
    if (key === undefined) {
      this.#holds.clear();
      this.#seen.clear();
    } else {
      this.#holds.delete(key);
      this.#seen.delete(key);
    }
  }

  /** Forget resources that are no longer managed. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#seen.keys()) if (!keys.has(key)) this.#seen.delete(key);
  }
}
