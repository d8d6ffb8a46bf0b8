import type { ChangeOp } from './change.js';

/**
 * The typed events op-dbus emits for every step of its work. The `type` field discriminates.
 */
export type OpdbusEvent =
  | { type: 'plan.created'; planHash: string; changes: number; plugins: string[] }
  | { type: 'tx.begin'; txId: string; planHash: string; changes: number; confirmTimeoutS?: number }
  | { type: 'tx.checkpoint'; txId: string; plugin: string; resources: number }
  | { type: 'tx.journal'; txId: string; status: string }
  | {
      type: 'change.applying';
      txId: string;
      index: number;
      changeId: string;
      plugin: string;
      resource: string;
      op: ChangeOp;
    }
  | {
      type: 'change.applied';
      txId: string;
      index: number;
      changeId: string;
      plugin: string;
      resource: string;
      op: ChangeOp;
      /** How long applying it took; for changes a plugin applied together (`applyBatch`), the whole batch. */
      ms: number;
    }
  | {
      type: 'change.failed';
      txId: string;
      index: number;
      changeId: string;
      plugin: string;
      resource: string;
      error: string;
    }
  | { type: 'verify.attempt'; txId: string; attempt: number; residual: number }
  | { type: 'verify.ok'; txId: string; attempts: number }
  | { type: 'verify.failed'; txId: string; residual: string[] }
  | { type: 'restore.begin'; txId: string; reason: string }
  | { type: 'restore.plugin'; txId: string; plugin: string; ok: boolean; error?: string }
  | { type: 'restore.done'; txId: string; ok: boolean; residual: string[] }
  | { type: 'tx.committed'; txId: string; stateHashBefore: string; stateHashAfter: string }
  | { type: 'tx.pending'; txId: string; deadline: string; watchdogPid?: number }
  | { type: 'tx.confirmed'; txId: string }
  | { type: 'tx.rolled-back'; txId: string; reason: string; ok: boolean }
  | { type: 'recovery.found'; txId: string; status: string; reason: string }
  | { type: 'recovery.done'; txId: string; ok: boolean }
  | { type: 'watch.event'; plugin: string; resource?: string; detail?: string }
  | { type: 'drift.detected'; plugin: string; resources: string[] }
  | { type: 'audit.failed'; kind: string; txId?: string; error: string }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

/** Counters of an {@link EventBus}. */
export interface EventBusStats {
  /** Fixed capacity of each subscriber's queue. */
  capacity: number;
  /** Events published since creation. */
  published: number;
  /** Events dropped across all subscribers because a queue was full. */
  dropped: number;
  /** Synchronous listeners that threw (the event still reached the others). */
  listenerErrors: number;
  /** Live subscribers. */
  subscribers: number;
}

/** Options of {@link EventBus}. */
export interface EventBusOptions {
  /** Capacity of each subscriber's queue (default 1024). When full, the oldest event is dropped and counted. */
  capacity?: number;
}

/** A subscription: an async iterator over events plus its own drop counter. */
export interface Subscription<E> extends AsyncIterableIterator<E> {
  /** Events this subscriber lost because it fell more than `capacity` behind. */
  readonly dropped: number;
  /** Stop receiving; pending `next()` calls resolve with `done`. */
  close(): void;
}

/**
 * A bounded publish/subscribe bus. Every subscriber has a fixed-capacity ring buffer; a slow
 * subscriber loses its oldest events (counted in `dropped`) instead of growing memory. Listeners
 * added with {@link EventBus.on} are called synchronously and never queue.
 */
export class EventBus<E = OpdbusEvent> {
  readonly capacity: number;
  #published = 0;
  #dropped = 0;
  #listenerErrors = 0;
  readonly #listeners = new Set<(event: E) => void>();
  readonly #queues = new Set<RingQueue<E>>();

  constructor(options: EventBusOptions = {}) {
    const capacity = options.capacity ?? 1024;
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`EventBus capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** Publish one event to every listener and subscriber. Never blocks, never throws. */
  publish(event: E): void {
    this.#published++;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure must not break the publisher or the other listeners; it is counted.
        this.#listenerErrors++;
      }
    }
    for (const queue of this.#queues) {
      if (!queue.push(event)) this.#dropped++;
    }
  }

  /** Call `listener` synchronously for each event; returns the function that removes it. */
  on(listener: (event: E) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribe with a bounded queue, consumed as an async iterator. */
  subscribe(): Subscription<E> {
    const queue = new RingQueue<E>(this.capacity, () => this.#queues.delete(queue));
    this.#queues.add(queue);
    return queue;
  }

  /** Counters: published, dropped, capacity, subscribers. */
  stats(): EventBusStats {
    return {
      capacity: this.capacity,
      published: this.#published,
      dropped: this.#dropped,
      listenerErrors: this.#listenerErrors,
      subscribers: this.#queues.size + this.#listeners.size,
    };
  }
}

class RingQueue<E> implements Subscription<E> {
  readonly #buffer: (E | undefined)[];
  #head = 0;
  #size = 0;
  #dropped = 0;
  #closed = false;
  #waiter: ((result: IteratorResult<E>) => void) | undefined;
  readonly #onClose: () => void;

  constructor(capacity: number, onClose: () => void) {
    this.#buffer = new Array<E | undefined>(capacity);
    this.#onClose = onClose;
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** Returns false when an old event had to be dropped to make room. */
  push(event: E): boolean {
    if (this.#closed) return true;
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter({ value: event, done: false });
      return true;
    }
    const capacity = this.#buffer.length;
    if (this.#size === capacity) {
      this.#buffer[this.#head] = event;
      this.#head = (this.#head + 1) % capacity;
      this.#dropped++;
      return false;
    }
    this.#buffer[(this.#head + this.#size) % capacity] = event;
    this.#size++;
    return true;
  }

  next(): Promise<IteratorResult<E>> {
    if (this.#size > 0) {
      const value = this.#buffer[this.#head] as E;
      this.#buffer[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#buffer.length;
      this.#size--;
      return Promise.resolve({ value, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<E>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#size = 0;
    this.#buffer.fill(undefined);
    this.#onClose();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<E> {
    return this;
  }
}
