import type { Logger } from '@opdbus/core';

/** A listener map: event name → argument list. */
export type EventMap = { [event: string]: unknown[] };

/**
 * A minimal typed event emitter. A listener that throws is logged and does not stop the others
 * (events come from the socket's data handler, which must not fail).
 */
export class Emitter<E extends EventMap> {
  readonly #listeners = new Map<keyof E, Set<(...args: unknown[]) => void>>();
  readonly #logger: () => Logger;

  constructor(logger: () => Logger) {
    this.#logger = logger;
  }

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as unknown as (...args: unknown[]) => void);
    return () => {
      set.delete(listener as unknown as (...args: unknown[]) => void);
    };
  }

  /** Add a listener that runs once. */
  once<K extends keyof E>(event: K, listener: (...args: E[K]) => void): () => void {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /** Call the listeners of `event`. */
  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(...(args as unknown[]));
      } catch (err) {
        this.#logger().error({ err, event: String(event) }, 'an ovsdb event listener threw');
      }
    }
  }

  /** How many listeners `event` has. */
  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.size ?? 0;
  }
}
