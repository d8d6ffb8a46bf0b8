// The engine's public face: one class that holds an engine's collaborators and hands them, as an
// explicit EngineCore, to the modules that do the work:
//   plan.ts (expansion, plan), observe.ts (query, watch), apply.ts + transaction.ts +
//   transactionFailure.ts (the transaction run), restore.ts + settle.ts (rollback, verification),
//   lifecycle.ts (confirm, rollback, recovery), watchdogLoop.ts (commit-confirmed watchdog),
//   auditTrail.ts (audit records).
import type { StateDocument } from '../document.js';
import { OpdbusError } from '../errors.js';
import { EventBus, type OpdbusEvent } from '../events.js';
import { StateDir, type Actor, type TransactionRecord } from '../journal.js';
import { silentLogger, type Logger } from '../logger.js';
import type {
  NetnsRunner,
  PlanNote,
  PluginContext,
  ProbeResult,
  TargetSpec,
  Unsubscribe,
  WatchEvent,
} from '../plugin.js';
import type { PluginRegistry } from '../registry.js';
import { applyDocument } from './apply.js';
import { recordStep } from './auditTrail.js';
import type { EngineCore } from './core.js';
import { confirmTransaction, recover, rollbackTransaction } from './lifecycle.js';
import { queryReport, watchPlugins } from './observe.js';
import { expandDocument, planDocument } from './plan.js';
import { probePlugins } from './pluginCalls.js';
import { currentUserActor } from './support.js';
import {
  DEFAULT_JOURNAL_RETENTION,
  type ApplyOptions,
  type ApplyResult,
  type AuditRecordFields,
  type EngineOptions,
  type PlanResult,
  type QueryReport,
  type RecoveryReport,
  type WatchdogOptions,
} from './types.js';
import { runWatchdog } from './watchdogLoop.js';

/**
 * The op-dbus engine: queries plugins, plans, and applies plans as transactions with checkpoint,
 * verification, rollback, crash recovery and commit-confirmed.
 */
export class Engine {
  readonly registry: PluginRegistry;
  readonly state: StateDir;
  readonly target: TargetSpec;
  readonly events: EventBus<OpdbusEvent>;
  readonly logger: Logger;
  #actor: Actor | undefined;
  readonly #openNetns: EngineOptions['openNetns'];
  readonly #netns = new Map<string, NetnsRunner>();
  readonly #core: EngineCore;

  constructor(options: EngineOptions) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the core's actor getter reads it
    const engine = this;
    this.registry = options.registry;
    this.state = new StateDir(options.stateDir);
    this.target = { ...(options.target ?? {}) };
    this.events = options.events ?? new EventBus<OpdbusEvent>();
    this.logger = options.logger ?? silentLogger;
    this.#actor = options.actor;
    this.#openNetns = options.openNetns;
    this.#core = {
      registry: this.registry,
      state: this.state,
      target: this.target,
      events: this.events,
      logger: this.logger,
      get actor(): Actor {
        return engine.actor;
      },
      verify: { attempts: 6, initialDelayMs: 50, ...options.verify },
      audit: options.audit,
      spawnWatchdog: options.spawnWatchdog,
      journalRetention: options.journalRetention ?? DEFAULT_JOURNAL_RETENTION,
      context: (plugin, bindings, signal, target) => this.context(plugin, bindings, signal, target),
    };
  }

  /**
   * Who acts: `options.actor`, else the user this process runs as, looked up at the first use (a
   * user database lookup, which a query that records nothing never makes).
   */
  get actor(): Actor {
    return (this.#actor ??= currentUserActor());
  }

  /** The namespace runner for a target (default: the engine's), opened on first use and cached. */
  netns(target: TargetSpec = this.target): NetnsRunner | undefined {
    const spec = target.netns;
    if (spec === undefined) return undefined;
    let runner = this.#netns.get(spec);
    if (runner === undefined) {
      if (this.#openNetns === undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_NETNS',
          `A network namespace (${spec}) is targeted but no namespace opener was given to the engine.`,
          { data: { netns: spec } },
        );
      }
      runner = this.#openNetns(spec);
      this.#netns.set(spec, runner);
    }
    return runner;
  }

  /** The context a plugin operation receives, for the engine's target or another (a journal's). */
  context(
    plugin: string,
    bindings: Record<string, unknown> = {},
    signal?: AbortSignal,
    target: TargetSpec = this.target,
  ): PluginContext {
    return {
      target,
      netns: this.netns(target),
      logger: this.logger.child({ plugin, ...bindings }),
      stateDir: this.state.root,
      signal,
    };
  }

  /** Probe plugins (all registered ones by default). */
  async probe(names: readonly string[] = this.registry.names()): Promise<Record<string, ProbeResult>> {
    return probePlugins(this.#core, names);
  }

  /**
   * The observed state of the named plugins (default: every available one), normalised to the
   * document's shape, with secrets redacted unless `showSecrets`. Only what a document can
   * declare, unless `all` (see {@link QueryOptions.all}). See {@link Engine.queryReport} for
   * which plugins an unscoped query left out and why.
   */
  async query(
    names?: readonly string[],
    options: { showSecrets?: boolean; all?: boolean } = {},
  ): Promise<Record<string, unknown>> {
    return (await this.queryReport(names, options)).plugins;
  }

  /**
   * {@link Engine.query}, with the plugins it could not reach. Named plugins must be available
   * (`OPDBUS_ERR_PLUGIN_UNAVAILABLE` otherwise); without names, every registered plugin is probed
   * (all at once) and those that are not available are listed in `unavailable` with the reason
   * their probe gave, instead of being left out silently.
   */
  async queryReport(
    names?: readonly string[],
    options: { showSecrets?: boolean; all?: boolean } = {},
  ): Promise<QueryReport> {
    return queryReport(this.#core, names, options);
  }

  /** Query what the document names and compute the ordered plan that takes the host there. */
  async plan(doc: StateDocument): Promise<PlanResult> {
    return planDocument(this.#core, doc);
  }

  /**
   * The document's sections with what plugins' `expand` contribute merged in, in registration
   * order. A contributed value that contradicts the document is `OPDBUS_ERR_PLAN_CONFLICT`; a
   * merged section that its plugin's schema refuses is `OPDBUS_ERR_STATE_INVALID`.
   */
  async expand(doc: StateDocument): Promise<{ desired: Record<string, unknown>; notes: PlanNote[] }> {
    return expandDocument(this.#core, doc);
  }

  /**
   * Apply a document as one transaction: plan, checkpoint, journal, apply in order, verify; on any
   * failure restore in reverse order and verify the restore. Throws `OPDBUS_ERR_APPLY_FAILED`
   * (host restored) or `OPDBUS_ERR_RESTORE_FAILED` (host in between; the message lists what).
   */
  async apply(doc: StateDocument, options: ApplyOptions = {}): Promise<ApplyResult> {
    return applyDocument(this.#core, doc, options);
  }

  /** All transactions, oldest first. */
  async transactions(): Promise<TransactionRecord[]> {
    return this.state.list();
  }

  /** Confirm a pending (commit-confirmed) transaction: the default is the latest pending one. */
  async confirm(txId?: string): Promise<TransactionRecord> {
    return confirmTransaction(this.#core, txId);
  }

  /**
   * Restore a transaction's checkpoint on demand. The default is the latest pending or committed
   * transaction. Rolling back an older one while a later transaction changed the same resources
   * needs `force`.
   */
  async rollback(
    txId?: string,
    options: { force?: boolean; reason?: string } = {},
  ): Promise<TransactionRecord> {
    return rollbackTransaction(this.#core, txId, options);
  }

  /**
   * Find transactions left unfinished by a process that died (SIGKILL, power loss) and restore
   * them; respawn a lost commit-confirmed watchdog whose deadline has not passed. Every command
   * that touches the host calls this first.
   */
  async recover(): Promise<RecoveryReport[]> {
    return recover(this.#core);
  }

  /**
   * The commit-confirmed watchdog's loop, run in its own detached process. It waits while the
   * owner applies; if the owner dies mid-apply it restores at once; once the transaction is
   * pending it waits for the deadline and restores unless it was confirmed. It returns when the
   * transaction reaches a terminal state.
   */
  async runWatchdog(txId: string, options: WatchdogOptions = {}): Promise<TransactionRecord> {
    return runWatchdog(this.#core, txId, options);
  }

  /**
   * Record a step that is not part of a transaction (e.g. the daemon's drift reports, kind
   * `drift`) in the audit log; time, host, actor, process and (by default) target are filled in as
   * for the engine's own steps. Throws `OPDBUS_ERR_AUDIT_FAILED` when the sink cannot take it.
   */
  async record(fields: AuditRecordFields): Promise<void> {
    return recordStep(this.#core, fields);
  }

  /**
   * Subscribe to the native event streams of the named plugins (default: every available one
   * that can watch). Events are also published on the bus as `watch.event`.
   */
  async watch(onEvent: (event: WatchEvent) => void, names?: readonly string[]): Promise<Unsubscribe> {
    return watchPlugins(this.#core, onEvent, names);
  }
}
