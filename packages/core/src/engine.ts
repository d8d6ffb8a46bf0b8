import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { auditChanges, type AuditRecord } from './audit.js';
import { makeChange, resourceKey, type Change } from './change.js';
import { formatPath, type StateDocument } from './document.js';
import {
  asJsonChanges,
  auditProcess,
  changeEvent,
  clipMessage,
  currentUserActor,
  firstOf,
  mergeFragment,
  requireMethod,
  scoped,
} from './engineSupport.js';
import type {
  ApplyOptions,
  ApplyResult,
  AuditRecordFields,
  EngineOptions,
  PlanResult,
  QueryReport,
  RecoveryReport,
  VerifyOptions,
  WatchdogOptions,
} from './engineTypes.js';
import { OpdbusError, toOpdbusError } from './errors.js';
import { EventBus, type OpdbusEvent } from './events.js';
import { StateDir, newTxId, terminalStatuses, type Actor, type TransactionRecord } from './journal.js';
import { hashJson, type JsonValue } from './json.js';
import { limits } from './limits.js';
import { silentLogger, type Logger } from './logger.js';
import { createPlan, type Plan } from './planner.js';
import type {
  AnyPlugin,
  Expansion,
  PlanNote,
  NetnsRunner,
  PluginContext,
  ProbeResult,
  TargetSpec,
  Unsubscribe,
  WatchEvent,
} from './plugin.js';
import { isAlive, selfIdentity } from './process.js';
import type { PluginRegistry } from './registry.js';

export type {
  ApplyOptions,
  ApplyResult,
  AuditRecordFields,
  EngineOptions,
  PlanResult,
  QueryReport,
  RecoveryReport,
  VerifyOptions,
  WatchdogOptions,
} from './engineTypes.js';

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
  readonly actor: Actor;
  readonly #verify: VerifyOptions;
  readonly #options: EngineOptions;
  readonly #netns = new Map<string, NetnsRunner>();

  constructor(options: EngineOptions) {
    this.#options = options;
    this.registry = options.registry;
    this.state = new StateDir(options.stateDir);
    this.target = { ...(options.target ?? {}) };
    this.events = options.events ?? new EventBus<OpdbusEvent>();
    this.logger = options.logger ?? silentLogger;
    this.actor = options.actor ?? currentUserActor();
    this.#verify = { attempts: 6, initialDelayMs: 50, ...options.verify };
  }

  /** The namespace runner for a target (default: the engine's), opened on first use and cached. */
  netns(target: TargetSpec = this.target): NetnsRunner | undefined {
    const spec = target.netns;
    if (spec === undefined) return undefined;
    let runner = this.#netns.get(spec);
    if (runner === undefined) {
      if (this.#options.openNetns === undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_NETNS',
          `A network namespace (${spec}) is targeted but no namespace opener was given to the engine.`,
          { data: { netns: spec } },
        );
      }
      runner = this.#options.openNetns(spec);
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
    const out: Record<string, ProbeResult> = {};
    for (const name of names) {
      const plugin = this.registry.require(name);
      try {
        out[name] = plugin.probe === undefined ? { available: true } : await plugin.probe(this.context(name));
      } catch (err) {
        out[name] = { available: false, reason: `probe failed: ${(err as Error).message}` };
      }
    }
    return out;
  }

  async #requireAvailable(plugin: AnyPlugin): Promise<void> {
    let result: ProbeResult;
    try {
      result =
        plugin.probe === undefined ? { available: true } : await plugin.probe(this.context(plugin.name));
    } catch (err) {
      throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_UNAVAILABLE', `Plugin "${plugin.name}" failed its probe`, {
        plugin: plugin.name,
      });
    }
    if (!result.available) {
      throw new OpdbusError(
        'OPDBUS_ERR_PLUGIN_UNAVAILABLE',
        `Plugin "${plugin.name}" is not available here: ${result.reason.replace(/\.+$/, '')}.`,
        {
          data: { plugin: plugin.name, reason: result.reason },
        },
      );
    }
  }

  async #query(
    plugin: AnyPlugin,
    scope: unknown,
    bindings: Record<string, unknown> = {},
    target: TargetSpec = this.target,
    all = false,
  ): Promise<unknown> {
    // A plugin without host state of its own (expand only) observes what it was asked.
    if (plugin.query === undefined) return scope ?? plugin.empty;
    const ctx = this.context(plugin.name, bindings, undefined, target);
    try {
      return scope !== undefined
        ? await plugin.query(ctx, { scope })
        : all
          ? await plugin.query(ctx, { all: true })
          : await plugin.query(ctx);
    } catch (err) {
      throw toOpdbusError(
        err,
        'OPDBUS_ERR_PLUGIN_FAILED',
        `Plugin "${plugin.name}" failed to query the host`,
        { plugin: plugin.name, operation: 'query' },
      );
    }
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
    const plugins: Record<string, unknown> = {};
    const unavailable: Record<string, string> = {};
    const explicit = names !== undefined;
    const selected = (names ?? this.registry.names()).map((name) => this.registry.require(name));
    if (explicit) {
      for (const plugin of selected) await this.#requireAvailable(plugin);
    } else {
      // Probes wait on sockets and buses that may not answer: run them side by side.
      const probes = await Promise.all(
        selected.map(
          async (plugin) => [plugin.name, (await this.probe([plugin.name]))[plugin.name]] as const,
        ),
      );
      for (const [name, probe] of probes) {
        if (probe !== undefined && !probe.available) unavailable[name] = probe.reason;
      }
    }
    for (const plugin of selected) {
      if (plugin.name in unavailable) continue;
      const section = await this.#query(plugin, undefined, {}, this.target, options.all === true);
      if (section === undefined) continue;
      plugins[plugin.name] =
        options.showSecrets || plugin.redact === undefined ? section : plugin.redact(section);
    }
    return { plugins, unavailable };
  }

  /** What the plugin's `facts` says for `diff` (undefined when it has none). */
  async #facts(plugin: AnyPlugin, observed: unknown): Promise<unknown> {
    if (plugin.facts === undefined) return undefined;
    try {
      return await plugin.facts(this.context(plugin.name), observed);
    } catch (err) {
      throw toOpdbusError(
        err,
        'OPDBUS_ERR_PLUGIN_FAILED',
        `Plugin "${plugin.name}" failed to read its facts`,
        {
          plugin: plugin.name,
          operation: 'facts',
        },
      );
    }
  }

  #diff(plugin: AnyPlugin, desired: unknown, observed: unknown, facts?: unknown): Change[] {
    if (plugin.diff === undefined) return [];
    let specs;
    try {
      specs = plugin.diff(desired, observed, facts);
    } catch (err) {
      throw toOpdbusError(err, 'OPDBUS_ERR_PLUGIN_FAILED', `Plugin "${plugin.name}" failed to diff`, {
        plugin: plugin.name,
        operation: 'diff',
      });
    }
    return asJsonChanges(specs).map((spec) => makeChange(plugin.name, spec));
  }

  /** Query what the document names and compute the ordered plan that takes the host there. */
  async plan(doc: StateDocument): Promise<PlanResult> {
    const { desired: sections, notes } = await this.expand(doc);
    const observed: Record<string, unknown> = {};
    const changes: Change[] = [];
    for (const [name, desired] of Object.entries(sections)) {
      if (desired === undefined) continue;
      const plugin = this.registry.require(name);
      await this.#requireAvailable(plugin);
      observed[name] = await this.#query(plugin, desired);
      const facts = await this.#facts(plugin, observed[name]);
      changes.push(...this.#diff(plugin, desired, observed[name], facts));
    }
    if (changes.length > limits.planChanges) {
      throw new OpdbusError(
        'OPDBUS_ERR_LIMIT_EXCEEDED',
        `${doc.source}: the plan has ${changes.length} changes; one transaction holds at most ${limits.planChanges}. Apply the document in parts.`,
        { data: { file: doc.source, limit: 'planChanges', max: limits.planChanges, actual: changes.length } },
      );
    }
    const plan = createPlan(changes);
    this.events.publish({
      type: 'plan.created',
      planHash: plan.hash,
      changes: plan.changes.length,
      plugins: [...new Set(plan.changes.map((c) => c.plugin))],
    });
    return { plan, observed, desired: sections, notes };
  }

  /**
   * The document's sections with what plugins' `expand` contribute merged in, in registration
   * order. A contributed value that contradicts the document is `OPDBUS_ERR_PLAN_CONFLICT`; a
   * merged section that its plugin's schema refuses is `OPDBUS_ERR_STATE_INVALID`.
   */
  async expand(doc: StateDocument): Promise<{ desired: Record<string, unknown>; notes: PlanNote[] }> {
    const merged: Record<string, unknown> = { ...doc.plugins };
    const notes: PlanNote[] = [];
    const touched = new Set<string>();
    for (const [name, section] of Object.entries(doc.plugins)) {
      const plugin = this.registry.require(name);
      if (section === undefined || plugin.expand === undefined) continue;
      await this.#requireAvailable(plugin);
      let expansion: Expansion;
      try {
        expansion = await plugin.expand(section, this.context(name));
      } catch (err) {
        throw toOpdbusError(
          err,
          'OPDBUS_ERR_PLUGIN_FAILED',
          `Plugin "${name}" failed to expand its section`,
          {
            plugin: name,
            operation: 'expand',
          },
        );
      }
      for (const [target, fragment] of Object.entries(expansion.sections)) {
        this.registry.require(target);
        merged[target] = mergeFragment(merged[target], fragment, ['plugins', target], name, doc.source);
        touched.add(target);
      }
      notes.push(...(expansion.notes ?? []));
    }
    for (const target of touched) {
      const plugin = this.registry.require(target);
      const parsed = plugin.schema.safeParse(merged[target]);
      if (!parsed.success) {
        const issues = parsed.error.issues.map(
          (i) => `${formatPath(['plugins', target, ...i.path])}: ${i.message}`,
        );
        throw new OpdbusError(
          'OPDBUS_ERR_STATE_INVALID',
          `${doc.source}: the "${target}" section, with what other plugins contributed, is not valid:\n  ${issues.join('\n  ')}`,
          { data: { file: doc.source, plugin: target, issues } },
        );
      }
      merged[target] = parsed.data;
    }
    const ordered: Record<string, unknown> = {};
    for (const name of this.registry.names()) if (merged[name] !== undefined) ordered[name] = merged[name];
    return { desired: ordered, notes };
  }

  /**
   * Apply a document as one transaction: plan, checkpoint, journal, apply in order, verify; on any
   * failure restore in reverse order and verify the restore. Throws `OPDBUS_ERR_APPLY_FAILED`
   * (host restored) or `OPDBUS_ERR_RESTORE_FAILED` (host in between; the message lists what).
   */
  async apply(doc: StateDocument, options: ApplyOptions = {}): Promise<ApplyResult> {
    const lock = await this.state.lock();
    try {
      await this.#recoverLocked();
      const pending = (await this.state.list()).filter((r) => r.status === 'pending-confirm');
      if (pending.length > 0) {
        const ids = pending.map((r) => r.txId).join(', ');
        throw new OpdbusError(
          'OPDBUS_ERR_TX_STATE',
          `Transaction ${ids} is pending confirmation; run \`opdbus confirm\` or \`opdbus rollback\` before applying again.`,
          {
            data: { pending: pending.map((r) => r.txId) },
          },
        );
      }
      const full = await this.plan(doc);
      const { observed, desired } = full;
      const only = options.only;
      const plan =
        only === undefined
          ? full.plan
          : createPlan(full.plan.changes.filter((c) => only.has(resourceKey(c))));
      const planned = [...new Set(plan.changes.map((c) => c.plugin))];
      await this.#audit(
        {
          kind: 'plan',
          status: plan.changes.length === 0 ? 'no-changes' : 'planned',
          planHash: plan.hash,
          changes: plan.changes.length,
          plugins: planned,
          stateHashBefore: hashJson(scoped(observed, Object.keys(desired))),
          desiredHash: hashJson(desired),
          changeRecords: auditChanges(plan.changes, (name) => this.registry.get(name)),
        },
        'abort',
      );
      if (plan.changes.length === 0) return { status: 'no-changes', plan };
      const risky = plan.changes.filter((c) => c.risk !== undefined);
      if (risky.length > 0 && options.confirmTimeoutS === undefined && options.force !== true) {
        throw new OpdbusError(
          'OPDBUS_ERR_RISKY_CHANGE',
          `The plan has ${risky.length} risky change(s): ${firstOf(risky.map((c) => `${c.summary} (${c.risk?.reason})`))}. Apply with --confirm-timeout SECONDS so it reverts unless confirmed, or with --force.`,
          { data: { changes: risky.map((c) => c.id) } },
        );
      }
      // Changes left out by `only` stay as they are; every other resource the document names must
      // hold its desired value afterwards, including those that needed no change (a write can
      // reset another key: setting net.ipv4.ip_forward resets conf.all.accept_redirects).
      const left = new Set(
        only === undefined ? [] : full.plan.changes.map(resourceKey).filter((k) => !only.has(k)),
      );
      return await this.#transact(desired, plan, observed, options, left);
    } finally {
      await lock.release();
    }
  }

  async #transact(
    desiredAll: Record<string, unknown>,
    plan: Plan,
    observedAll: Record<string, unknown>,
    options: ApplyOptions,
    leftOut: ReadonlySet<string>,
  ): Promise<ApplyResult> {
    const txId = newTxId();
    const touched = [...new Set(plan.changes.map((c) => c.plugin))];
    const desired: Record<string, JsonValue> = {};
    const observedBefore: Record<string, JsonValue> = {};
    for (const name of touched) {
      desired[name] = desiredAll[name] as JsonValue;
      observedBefore[name] = observedAll[name] as JsonValue;
    }
    this.events.publish({
      type: 'tx.begin',
      txId,
      planHash: plan.hash,
      changes: plan.changes.length,
      ...(options.confirmTimeoutS === undefined ? {} : { confirmTimeoutS: options.confirmTimeoutS }),
    });
    // 1. Checkpoint what the plan touches. 2. Persist the journal before the first change.
    const checkpoints = await this.#checkpointAll(txId, plan, touched);
    const now = new Date().toISOString();
    const record: TransactionRecord = {
      version: 1,
      txId,
      status: 'applying',
      createdAt: now,
      updatedAt: now,
      actor: this.actor,
      owner: selfIdentity(),
      target: this.target,
      plan,
      desired,
      observedBefore,
      checkpoints,
      stateHashBefore: hashJson(observedBefore),
      applied: [],
    };
    if (options.confirmTimeoutS !== undefined) record.confirm = { timeoutS: options.confirmTimeoutS };
    await this.state.write(record);
    this.events.publish({ type: 'tx.journal', txId, status: record.status });
    // 3. The commit-confirmed watchdog watches from before the first change, so a crash at any
    //    point after this leaves a process that restores.
    if (options.confirmTimeoutS !== undefined) await this.#startWatchdog(record, options.confirmTimeoutS);
    // 4. Apply in order. 5. Verify. 6. Commit, or wait for confirmation.
    await this.#applyInOrder(record, options.signal);
    const stateHashAfter = await this.#verifyApplied(record, touched, desired, leftOut);
    return this.#finish(record, stateHashAfter, options.confirmTimeoutS);
  }

  /** Each touched plugin's checkpoint of the plan's changes (nothing is changed yet). */
  async #checkpointAll(
    txId: string,
    plan: Plan,
    touched: readonly string[],
  ): Promise<Record<string, JsonValue>> {
    const checkpoints: Record<string, JsonValue> = {};
    for (const name of touched) {
      const plugin = this.registry.require(name);
      const changes = plan.changes.filter((c) => c.plugin === name);
      try {
        checkpoints[name] = (await requireMethod(plugin, 'checkpoint')(
          this.context(name, { txId }),
          changes,
        )) as JsonValue;
      } catch (err) {
        throw toOpdbusError(
          err,
          'OPDBUS_ERR_PLUGIN_FAILED',
          `Plugin "${name}" failed to checkpoint; nothing was changed`,
          { plugin: name, operation: 'checkpoint' },
        );
      }
      this.events.publish({ type: 'tx.checkpoint', txId, plugin: name, resources: changes.length });
    }
    return checkpoints;
  }

  /** Start the commit-confirmed watchdog; without one, the transaction ends before any change. */
  async #startWatchdog(record: TransactionRecord, timeoutS: number): Promise<void> {
    const abandon = async (reason: string): Promise<void> => {
      record.status = 'rolled-back';
      record.restore = {
        reason,
        ok: true,
        residual: [],
        at: new Date().toISOString(),
        by: this.actor,
        errors: [],
      };
      await this.state.write(record);
    };
    if (this.#options.spawnWatchdog === undefined) {
      await abandon('no watchdog available');
      throw new OpdbusError(
        'OPDBUS_ERR_WATCHDOG',
        'Commit-confirmed needs a watchdog, and this engine has no way to start one; nothing was changed.',
      );
    }
    try {
      record.confirm = { timeoutS, watchdog: await this.#options.spawnWatchdog(record.txId) };
    } catch (err) {
      await abandon('watchdog failed to start');
      throw toOpdbusError(
        err,
        'OPDBUS_ERR_WATCHDOG',
        'The commit-confirmed watchdog could not be started; nothing was changed',
        { txId: record.txId },
      );
    }
    await this.state.write(record);
  }

  /**
   * Apply the plan in order: one change at a time, or, for a plugin with applyBatch, each run of
   * its consecutive changes at once. A failure or an abort restores (and throws).
   */
  async #applyInOrder(record: TransactionRecord, signal: AbortSignal | undefined): Promise<void> {
    const { txId, plan } = record;
    const progress = await this.state.openProgress(txId);
    try {
      for (let index = 0; index < plan.changes.length;) {
        const first = plan.changes[index]!;
        if (signal?.aborted) {
          record.failure = {
            phase: 'interrupted',
            error: { code: 'OPDBUS_ERR_APPLY_FAILED', message: 'interrupted by a signal' },
          };
          await this.#failAndRestore(
            record,
            'interrupted',
            new OpdbusError(
              'OPDBUS_ERR_APPLY_FAILED',
              `Transaction ${txId} was interrupted before change ${index + 1} of ${plan.changes.length}; the host was restored.`,
              { data: { txId } },
            ),
          );
        }
        const plugin = this.registry.require(first.plugin);
        let end = index + 1;
        if (plugin.applyBatch !== undefined)
          while (end < plan.changes.length && plan.changes[end]!.plugin === first.plugin) end++;
        const batch = plan.changes.slice(index, end);
        for (const [k, change] of batch.entries()) {
          this.events.publish({
            type: 'change.applying',
            ...changeEvent(txId, change, index + k),
            op: change.op,
          });
          await progress.started(change);
        }
        const t0 = performance.now();
        try {
          const ctx = this.context(first.plugin, { txId }, signal);
          if (plugin.applyBatch !== undefined) await plugin.applyBatch(batch, ctx);
          else await requireMethod(plugin, 'apply')(first, ctx);
        } catch (err) {
          await this.#applyFailed(record, batch, index, err);
        }
        const ms = performance.now() - t0;
        for (const [k, change] of batch.entries()) {
          await progress.done(change);
          record.applied.push(change.id);
          this.events.publish({
            type: 'change.applied',
            ...changeEvent(txId, change, index + k),
            op: change.op,
            ms,
          });
        }
        index = end;
      }
      await progress.sync();
    } finally {
      await progress.close();
    }
  }

  /** A change (or a batch starting at plan position `index`) failed: say which, restore, throw. */
  async #applyFailed(
    record: TransactionRecord,
    batch: readonly Change[],
    index: number,
    err: unknown,
  ): Promise<never> {
    const total = record.plan.changes.length;
    const cause = err instanceof OpdbusError ? err : undefined;
    const namedId = cause?.data?.changeId;
    const failedAt = Math.max(
      0,
      batch.findIndex((c) => c.id === namedId),
    );
    const change = batch[failedAt]!;
    const position =
      batch.length === 1 || namedId !== undefined
        ? `Change ${index + failedAt + 1} of ${total}`
        : `Changes ${index + 1}-${index + batch.length} of ${total} (applied together by plugin ${change.plugin})`;
    const error = new OpdbusError(
      'OPDBUS_ERR_APPLY_FAILED',
      `${position} failed: ${change.summary} (plugin ${change.plugin}, resource ${change.resource}): ${err instanceof Error ? err.message : String(err)}`,
      {
        data: {
          plugin: change.plugin,
          resource: change.resource,
          changeId: change.id,
          ...(batch.length > 1 ? { batch: batch.map((c) => c.id) } : {}),
          ...(cause ? { causeCode: cause.code, causeData: cause.data } : {}),
        },
        cause: err,
      },
    );
    this.events.publish({
      type: 'change.failed',
      ...changeEvent(record.txId, change, index + failedAt),
      error: error.message,
    });
    this.logger
      .child({ txId: record.txId })
      .info({ err: error, changeId: change.id }, 'change failed; restoring');
    record.failure = {
      phase: 'apply',
      changeId: change.id,
      error: { code: error.code, message: error.message },
    };
    return this.#failAndRestore(record, `change ${change.summary} failed`, error);
  }

  /** Verify what the transaction applied; a residual diff restores (and throws). Returns the state hash after. */
  async #verifyApplied(
    record: TransactionRecord,
    touched: readonly string[],
    desired: Record<string, JsonValue>,
    leftOut: ReadonlySet<string>,
  ): Promise<string> {
    const { txId } = record;
    record.status = 'verifying';
    await this.state.write(record);
    const verified = await this.#settle(txId, this.target, touched, desired, (key) => !leftOut.has(key));
    if (verified.residual.length > 0) {
      const residual = verified.residual.map((c) => `${resourceKey(c)}: ${c.summary}`);
      this.events.publish({ type: 'verify.failed', txId, residual });
      const error = new OpdbusError(
        'OPDBUS_ERR_VERIFY_FAILED',
        `After applying, ${residual.length} resource(s) did not reach the desired state: ${firstOf(residual)}.`,
        {
          data: { txId, residual },
        },
      );
      record.failure = { phase: 'verify', error: { code: error.code, message: error.message } };
      await this.#failAndRestore(record, 'verification failed', error);
    }
    this.events.publish({ type: 'verify.ok', txId, attempts: verified.attempts });
    record.stateHashAfter = hashJson(verified.observed);
    return record.stateHashAfter;
  }

  /**
   * Commit, or leave pending confirmation. The result is recorded before the journal says so: a
   * result the audit log cannot take is not kept on the host (restored, then reported).
   */
  async #finish(
    record: TransactionRecord,
    stateHashAfter: string,
    confirmTimeoutS: number | undefined,
  ): Promise<ApplyResult> {
    const { txId, plan } = record;
    const pending = confirmTimeoutS !== undefined && record.confirm !== undefined;
    const outcome = pending ? 'pending-confirm' : 'committed';
    const recorded = await this.#audit(
      this.#txAudit(
        'apply',
        { ...record, status: outcome },
        {
          stateHashAfter,
          changeRecords: this.#changeRecords(record.plan.changes, { applied: new Set(record.applied) }),
        },
      ),
      'return',
    );
    if (recorded !== undefined) await this.#unrecordedApply(record, recorded);
    if (pending && record.confirm !== undefined) {
      const deadline = new Date(Date.now() + confirmTimeoutS * 1000).toISOString();
      record.confirm.deadline = deadline;
      record.status = 'pending-confirm';
      await this.state.write(record);
      this.events.publish({
        type: 'tx.pending',
        txId,
        deadline,
        ...(record.confirm.watchdog ? { watchdogPid: record.confirm.watchdog.pid } : {}),
      });
      return { status: 'pending-confirm', plan, txId, deadline, record };
    }
    record.status = 'committed';
    record.committedAt = new Date().toISOString();
    await this.state.write(record);
    this.events.publish({
      type: 'tx.committed',
      txId,
      stateHashBefore: record.stateHashBefore,
      stateHashAfter,
    });
    return { status: 'committed', plan, txId, record };
  }

  /** The audit log could not take the apply result: roll back, then throw saying so. */
  async #unrecordedApply(record: TransactionRecord, recorded: Error): Promise<never> {
    const { txId } = record;
    record.failure = {
      phase: 'audit',
      error: { code: 'OPDBUS_ERR_AUDIT_FAILED', message: recorded.message },
    };
    const ok = await this.#restore(
      record,
      'the apply result could not be recorded in the audit log',
      'audit-failed',
    );
    throw new OpdbusError(
      'OPDBUS_ERR_AUDIT_FAILED',
      `Could not record the result of transaction ${txId} in the audit log (${recorded.message}); ${ok ? 'it was rolled back and the host is as it was before' : `rolling it back did NOT restore: ${[...(record.restore?.residual ?? []), ...(record.restore?.errors ?? [])].join('; ')}; fix the audit log, then run \`opdbus rollback ${txId}\``}.`,
      { data: { txId, kind: 'apply', status: record.status }, cause: recorded },
    );
  }

  /**
   * Query the touched plugins until the diff of the resources `counts` selects is empty or attempts
   * run out.
   */
  async #settle(
    txId: string,
    target: TargetSpec,
    plugins: readonly string[],
    desired: Record<string, JsonValue>,
    counts: (key: string) => boolean,
  ): Promise<{ residual: Change[]; attempts: number; observed: Record<string, JsonValue> }> {
    let wait = this.#verify.initialDelayMs;
    let residual: Change[] = [];
    let observed: Record<string, JsonValue> = {};
    for (let attempt = 1; attempt <= this.#verify.attempts; attempt++) {
      residual = [];
      observed = {};
      for (const name of plugins) {
        const plugin = this.registry.require(name);
        const now = await this.#query(plugin, desired[name], { txId }, target);
        observed[name] = now as JsonValue;
        residual.push(...this.#diff(plugin, desired[name], now).filter((c) => counts(resourceKey(c))));
      }
      this.events.publish({ type: 'verify.attempt', txId, attempt, residual: residual.length });
      if (residual.length === 0) return { residual, attempts: attempt, observed };
      if (attempt < this.#verify.attempts) {
        await delay(wait);
        wait *= 2;
      }
    }
    return { residual, attempts: this.#verify.attempts, observed };
  }

  async #failAndRestore(record: TransactionRecord, reason: string, error: OpdbusError): Promise<never> {
    // The apply result is recorded before the rollback it caused, so the log reads in order.
    const rollback: AuditRecordFields[] = [];
    const ok = await this.#restore(record, reason, 'apply-failed', rollback);
    const failures: string[] = [];
    const applyFailure = await this.#audit(
      this.#txAudit('apply', record, {
        stateHashAfter: record.restore?.stateHash ?? null,
        reason,
        error: { code: error.code, message: error.message },
        changeRecords: this.#changeRecords(record.plan.changes, { applied: this.#touchedIds(record) }),
        ...(record.failure?.changeId === undefined ? {} : { failedChange: record.failure.changeId }),
      }),
      'log',
    );
    if (applyFailure !== undefined) failures.push(`the apply result: ${applyFailure.message}`);
    for (const fields of rollback) {
      const failed = await this.#audit(fields, 'log');
      if (failed !== undefined) failures.push(`the rollback: ${failed.message}`);
    }
    const unrecorded =
      failures.length === 0
        ? ''
        : `\nWARNING: the audit log could not record ${failures.join('; ')}; run \`opdbus ledger verify\` and fix the ledger.`;
    if (!ok) {
      throw new OpdbusError(
        'OPDBUS_ERR_RESTORE_FAILED',
        `${error.message}\nRolling back transaction ${record.txId} did NOT restore: ${record.restore?.residual.join('; ') || record.restore?.errors.join('; ')}. Fix these resources, then run \`opdbus rollback ${record.txId}\`.${unrecorded}`,
        {
          data: {
            txId: record.txId,
            residual: record.restore?.residual,
            errors: record.restore?.errors,
            ...(failures.length > 0 ? { auditFailures: failures } : {}),
          },
          cause: error,
        },
      );
    }
    throw new OpdbusError(
      'OPDBUS_ERR_APPLY_FAILED',
      `${error.message}\nTransaction ${record.txId} was rolled back; the host is as it was before.${unrecorded}`,
      {
        data: {
          txId: record.txId,
          ...(error.data ?? {}),
          ...(failures.length > 0 ? { auditFailures: failures } : {}),
        },
        cause: error,
      },
    );
  }

  /** The change ids a transaction carried out or started (the failing one may be half done). */
  #touchedIds(record: TransactionRecord): Set<string> {
    const ids = new Set(record.applied);
    if (record.failure?.changeId !== undefined) ids.add(record.failure.changeId);
    return ids;
  }

  /** Bounded, redacted audit records of changes (see {@link auditChanges}). */
  #changeRecords(
    changes: readonly Change[],
    options: { applied?: ReadonlySet<string>; inverse?: boolean },
  ): ReturnType<typeof auditChanges> {
    return auditChanges(changes, (name) => this.registry.get(name), options);
  }

  /**
   * Restore a transaction's checkpoints in reverse plugin order and verify the restore against
   * the observed state before it. Updates and persists the record. Returns whether it verified.
   */
  async #restore(
    record: TransactionRecord,
    reason: string,
    trigger: string,
    deferAudit?: AuditRecordFields[],
  ): Promise<boolean> {
    const txId = record.txId;
    const stateHashBefore = this.#options.audit === undefined ? null : await this.#observedHash(record);
    record.status = 'rolling-back';
    await this.state.write(record);
    this.events.publish({ type: 'restore.begin', txId, reason });
    const order = [...new Set(record.plan.changes.map((c) => c.plugin))].reverse();
    const errors: string[] = [];
    for (const name of order) {
      const plugin = this.registry.get(name);
      if (plugin === undefined) {
        errors.push(`plugin "${name}" is not registered in this process`);
        continue;
      }
      try {
        await requireMethod(plugin, 'restore')(
          record.checkpoints[name] ?? null,
          this.context(name, { txId }, undefined, record.target),
        );
        this.events.publish({ type: 'restore.plugin', txId, plugin: name, ok: true });
      } catch (err) {
        const message = `plugin "${name}" failed to restore: ${(err as Error).message}`;
        errors.push(message);
        this.events.publish({ type: 'restore.plugin', txId, plugin: name, ok: false, error: message });
      }
    }
    const keys = new Set(record.plan.changes.map(resourceKey));
    const plugins = order.filter((name) => this.registry.get(name) !== undefined);
    let residual: string[] = [];
    let stateHash: string | undefined;
    try {
      const settled = await this.#settle(txId, record.target, plugins, record.observedBefore, (k) =>
        keys.has(k),
      );
      residual = settled.residual.map((c) => `${resourceKey(c)}: ${c.summary}`);
      stateHash = hashJson(settled.observed);
    } catch (err) {
      errors.push(`verifying the restore failed: ${(err as Error).message}`);
    }
    const ok = errors.length === 0 && residual.length === 0;
    record.status = ok ? 'rolled-back' : 'restore-failed';
    record.restore = {
      reason,
      ok,
      residual,
      at: new Date().toISOString(),
      by: this.actor,
      errors,
      ...(stateHash === undefined ? {} : { stateHash }),
    };
    await this.state.write(record);
    this.events.publish({ type: 'restore.done', txId, ok, residual });
    this.events.publish({ type: 'tx.rolled-back', txId, reason, ok });
    const undone = this.#touchedIds(record);
    const fields = this.#txAudit('rollback', record, {
      stateHashBefore,
      stateHashAfter: stateHash ?? null,
      trigger,
      reason: clipMessage(reason),
      ...(residual.length > 0 ? { residual: residual.slice(0, 100).map(clipMessage) } : {}),
      ...(errors.length > 0
        ? { error: { code: 'OPDBUS_ERR_RESTORE_FAILED', message: clipMessage(errors.join('; ')) } }
        : {}),
      changeRecords: this.#changeRecords(record.plan.changes.filter((c) => undone.has(c.id)).reverse(), {
        inverse: true,
        applied: ok ? undone : new Set(),
      }),
    });
    // A restore that cannot be recorded still restores: the failure is logged, published as
    // `audit.failed` and, for a failed apply, named in the error the caller gets.
    if (deferAudit !== undefined) deferAudit.push(fields);
    else await this.#audit(fields, 'log');
    return ok;
  }

  /** All transactions, oldest first. */
  async transactions(): Promise<TransactionRecord[]> {
    return this.state.list();
  }

  async #resolveTx(
    txId: string | undefined,
    accept: (r: TransactionRecord) => boolean,
    what: string,
  ): Promise<TransactionRecord> {
    if (txId !== undefined) return this.state.read(txId);
    const candidates = (await this.state.list()).filter(accept);
    const last = candidates.at(-1);
    if (last === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_TX_NOT_FOUND',
        `There is no ${what} transaction in ${this.state.transactionsDir}.`,
        { data: { stateDir: this.state.root } },
      );
    return last;
  }

  /** Confirm a pending (commit-confirmed) transaction: the default is the latest pending one. */
  async confirm(txId?: string): Promise<TransactionRecord> {
    const lock = await this.state.lock();
    let record: TransactionRecord;
    try {
      record = await this.#resolveTx(txId, (r) => r.status === 'pending-confirm', 'pending');
      if (record.status !== 'pending-confirm') {
        throw new OpdbusError(
          'OPDBUS_ERR_TX_STATE',
          `Transaction ${record.txId} is ${record.status}, not pending confirmation; nothing to confirm.`,
          {
            data: { txId: record.txId, status: record.status },
          },
        );
      }
      const now = new Date().toISOString();
      const confirmed: TransactionRecord = {
        ...record,
        status: 'committed',
        committedAt: now,
        confirm: { ...(record.confirm ?? { timeoutS: 0 }), confirmedAt: now, confirmedBy: this.actor },
      };
      // Recorded before the journal says so: a confirm the audit log cannot take leaves the
      // transaction pending (its watchdog rolls it back at the deadline unless a confirm succeeds).
      const failed = await this.#audit(
        this.#txAudit('confirm', confirmed, {
          stateHashBefore: record.stateHashAfter ?? null,
          stateHashAfter: record.stateHashAfter ?? null,
        }),
        'return',
      );
      if (failed !== undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_AUDIT_FAILED',
          `Could not record the confirm of transaction ${record.txId} in the audit log (${failed.message}); it stays pending and is rolled back at ${record.confirm?.deadline ?? 'its deadline'} unless a confirm is recorded before then. Fix the audit log and run \`opdbus confirm ${record.txId}\` again.`,
          { data: { txId: record.txId, kind: 'confirm', status: record.status }, cause: failed },
        );
      }
      record = confirmed;
      await this.state.write(record);
      this.events.publish({ type: 'tx.confirmed', txId: record.txId });
    } finally {
      await lock.release();
    }
    // Tell the watchdog it can stop now (it would also see the journal at its deadline).
    const watchdog = record.confirm?.watchdog;
    if (watchdog !== undefined && watchdog.pid !== process.pid && isAlive(watchdog)) {
      try {
        process.kill(watchdog.pid, 'SIGTERM');
      } catch (err) {
        this.logger.warn(
          { err, pid: watchdog.pid },
          'could not signal the watchdog; it exits at its deadline',
        );
      }
    }
    return record;
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
    const lock = await this.state.lock();
    try {
      await this.#recoverLocked();
      const record = await this.#resolveTx(
        txId,
        (r) => r.status === 'pending-confirm' || r.status === 'committed',
        'committed or pending',
      );
      if (record.status === 'rolled-back') {
        throw new OpdbusError('OPDBUS_ERR_TX_STATE', `Transaction ${record.txId} is already rolled back.`, {
          data: { txId: record.txId, status: record.status },
        });
      }
      if (!terminalStatuses.has(record.status) && record.status !== 'pending-confirm') {
        throw new OpdbusError(
          'OPDBUS_ERR_TX_STATE',
          `Transaction ${record.txId} is ${record.status} in another process; wait for it.`,
          { data: { txId: record.txId } },
        );
      }
      if (options.force !== true) {
        const keys = new Set(record.plan.changes.map(resourceKey));
        const later = (await this.state.list()).filter(
          (r) =>
            r.txId > record.txId &&
            (r.status === 'committed' || r.status === 'pending-confirm') &&
            r.plan.changes.some((c) => keys.has(resourceKey(c))),
        );
        if (later.length > 0) {
          throw new OpdbusError(
            'OPDBUS_ERR_TX_STATE',
            `Transaction ${later.map((r) => r.txId).join(', ')} changed the same resources after ${record.txId}; roll those back first or pass --force.`,
            {
              data: { txId: record.txId, later: later.map((r) => r.txId) },
            },
          );
        }
      }
      const ok = await this.#restore(
        record,
        options.reason ?? `rollback requested by ${this.actor.name}`,
        'requested',
      );
      if (!ok) {
        throw new OpdbusError(
          'OPDBUS_ERR_RESTORE_FAILED',
          `Rolling back ${record.txId} did not verify: ${[...(record.restore?.residual ?? []), ...(record.restore?.errors ?? [])].join('; ')}. Fix these resources and run \`opdbus rollback ${record.txId}\` again.`,
          {
            data: { txId: record.txId, residual: record.restore?.residual, errors: record.restore?.errors },
          },
        );
      }
      return record;
    } finally {
      await lock.release();
    }
  }

  /**
   * Find transactions left unfinished by a process that died (SIGKILL, power loss) and restore
   * them; respawn a lost commit-confirmed watchdog whose deadline has not passed. Every command
   * that touches the host calls this first.
   */
  async recover(): Promise<RecoveryReport[]> {
    const lock = await this.state.lock();
    try {
      return await this.#recoverLocked();
    } finally {
      await lock.release();
    }
  }

  async #recoverLocked(): Promise<RecoveryReport[]> {
    const reports: RecoveryReport[] = [];
    for (const record of await this.state.list()) {
      if (terminalStatuses.has(record.status)) continue;
      if (record.status === 'pending-confirm') {
        const watchdog = record.confirm?.watchdog;
        if (watchdog !== undefined && isAlive(watchdog)) continue;
        const deadline = record.confirm?.deadline === undefined ? 0 : Date.parse(record.confirm.deadline);
        if (Date.now() < deadline && this.#options.spawnWatchdog !== undefined) {
          record.confirm = {
            ...(record.confirm ?? { timeoutS: 0 }),
            watchdog: await this.#options.spawnWatchdog(record.txId),
          };
          await this.state.write(record);
          reports.push({
            txId: record.txId,
            found: 'pending-confirm, watchdog gone',
            action: 'watchdog-respawned',
            detail: `deadline ${record.confirm.deadline}`,
          });
          continue;
        }
        reports.push(
          await this.#recoverOne(record, 'commit-confirmed deadline passed and its watchdog is gone'),
        );
        continue;
      }
      if (isAlive(record.owner) && record.owner.pid !== process.pid) {
        reports.push({
          txId: record.txId,
          found: record.status,
          action: 'left-alone',
          detail: `process ${record.owner.pid} is still working on it`,
        });
        continue;
      }
      reports.push(
        await this.#recoverOne(
          record,
          `process ${record.owner.pid} died while the transaction was ${record.status}`,
        ),
      );
    }
    return reports;
  }

  async #recoverOne(record: TransactionRecord, reason: string): Promise<RecoveryReport> {
    const found = record.status;
    this.events.publish({ type: 'recovery.found', txId: record.txId, status: found, reason });
    this.logger.info({ txId: record.txId, status: found }, `recovering: ${reason}`);
    const ok = await this.#restore(record, `recovery: ${reason}`, 'recovery');
    this.events.publish({ type: 'recovery.done', txId: record.txId, ok });
    return {
      txId: record.txId,
      found,
      action: ok ? 'restored' : 'restore-failed',
      detail: ok
        ? reason
        : `${reason}; could not restore: ${[...(record.restore?.residual ?? []), ...(record.restore?.errors ?? [])].join('; ')}`,
    };
  }

  /**
   * The commit-confirmed watchdog's loop, run in its own detached process. It waits while the
   * owner applies; if the owner dies mid-apply it restores at once; once the transaction is
   * pending it waits for the deadline and restores unless it was confirmed. It returns when the
   * transaction reaches a terminal state.
   */
  async runWatchdog(txId: string, options: WatchdogOptions = {}): Promise<TransactionRecord> {
    const pollMs = options.pollMs ?? 200;
    let ownerGone = false;
    let wake: (() => void) | undefined;
    const sleep = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    options.onWake?.(() => wake?.());
    options.ownerGone?.then(
      () => {
        ownerGone = true;
        wake?.();
      },
      (err: unknown) => this.logger.warn({ err }, 'owner link failed; falling back to polling'),
    );
    for (;;) {
      const record = await this.state.read(txId);
      if (terminalStatuses.has(record.status)) return record;
      if (record.status === 'pending-confirm') {
        const remaining = Date.parse(record.confirm?.deadline ?? '') - Date.now();
        if (Number.isFinite(remaining) && remaining > 0) {
          await sleep(Math.min(remaining, 60_000));
          continue;
        }
        const lock = await this.state.lock(Number.POSITIVE_INFINITY);
        try {
          const fresh = await this.state.read(txId);
          if (fresh.status !== 'pending-confirm') return fresh;
          await this.#restore(
            fresh,
            `commit-confirmed: not confirmed within ${fresh.confirm?.timeoutS ?? '?'} s`,
            'watchdog',
          );
          return fresh;
        } finally {
          await lock.release();
        }
      }
      // applying / verifying / rolling-back: the owner is at work. Act only once it is gone.
      if (ownerGone || !isAlive(record.owner)) {
        const lock = await this.state.lock(Number.POSITIVE_INFINITY);
        try {
          const fresh = await this.state.read(txId);
          if (terminalStatuses.has(fresh.status)) return fresh;
          if (fresh.status !== 'pending-confirm' && !isAlive(fresh.owner)) {
            await this.#restore(
              fresh,
              `recovery: process ${fresh.owner.pid} died while the transaction was ${fresh.status}`,
              'watchdog',
            );
            return fresh;
          }
        } finally {
          await lock.release();
        }
        ownerGone = false;
      }
      await sleep(pollMs);
    }
  }

  /** The audit fields of a transaction step. */
  #txAudit(
    kind: AuditRecord['kind'],
    record: TransactionRecord,
    extra: Partial<AuditRecord>,
  ): AuditRecordFields {
    return {
      kind,
      txId: record.txId,
      status: record.status,
      planHash: record.plan.hash,
      changes: record.plan.changes.length,
      plugins: [...new Set(record.plan.changes.map((c) => c.plugin))],
      stateHashBefore: record.stateHashBefore,
      target: record.target,
      ...extra,
    };
  }

  /** Hash of what a transaction's plugins observe now, scoped to its desired sections (null if it cannot be observed). */
  async #observedHash(record: TransactionRecord): Promise<string | null> {
    try {
      const observed: Record<string, unknown> = {};
      for (const name of Object.keys(record.desired)) {
        const plugin = this.registry.get(name);
        if (plugin === undefined) return null;
        observed[name] = await this.#query(
          plugin,
          record.desired[name],
          { txId: record.txId },
          record.target,
        );
      }
      return hashJson(observed);
    } catch (err) {
      this.logger.warn({ err, txId: record.txId }, 'could not observe the state before restoring');
      return null;
    }
  }

  /**
   * Hand a record to the audit sink. A failure is published as `audit.failed`; then `abort`
   * throws `OPDBUS_ERR_AUDIT_FAILED` saying that nothing was changed; `log` logs it and `return`
   * returns it (the caller decides: restore, or report). Resolves to undefined when recorded.
   */
  async #audit(fields: AuditRecordFields, onFailure: 'abort' | 'log' | 'return'): Promise<Error | undefined> {
    const sink = this.#options.audit;
    if (sink === undefined) return undefined;
    const record: AuditRecord = {
      ...fields,
      ...(fields.error === undefined
        ? {}
        : { error: { code: fields.error.code, message: clipMessage(fields.error.message) } }),
      at: new Date().toISOString(),
      host: hostname(),
      actor: this.actor,
      process: auditProcess(),
      target: fields.target ?? this.target,
    };
    try {
      await sink.record(record);
      return undefined;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.events.publish({
        type: 'audit.failed',
        kind: record.kind,
        ...(record.txId === undefined ? {} : { txId: record.txId }),
        error: error.message,
      });
      this.logger.error(
        { err, kind: record.kind, txId: record.txId },
        'could not record this step in the audit log',
      );
      if (onFailure !== 'abort') return error;
      throw new OpdbusError(
        'OPDBUS_ERR_AUDIT_FAILED',
        `Could not record the ${record.kind} in the audit log (${error.message}); nothing was changed.`,
        {
          data: {
            kind: record.kind,
            ...(record.txId === undefined ? {} : { txId: record.txId }),
            status: record.status,
          },
          cause: err,
        },
      );
    }
  }

  /**
   * Record a step that is not part of a transaction (e.g. the daemon's drift reports, kind
   * `drift`) in the audit log; time, host, actor, process and (by default) target are filled in as
   * for the engine's own steps. Throws `OPDBUS_ERR_AUDIT_FAILED` when the sink cannot take it.
   */
  async record(fields: AuditRecordFields): Promise<void> {
    const failed = await this.#audit(fields, 'return');
    if (failed !== undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_AUDIT_FAILED',
        `Could not record the ${fields.kind} in the audit log (${failed.message}); check the ledger with \`opdbus ledger verify\`.`,
        { data: { kind: fields.kind }, cause: failed },
      );
    }
  }

  /**
   * Subscribe to the native event streams of the named plugins (default: every available one
   * that can watch). Events are also published on the bus as `watch.event`.
   */
  async watch(onEvent: (event: WatchEvent) => void, names?: readonly string[]): Promise<Unsubscribe> {
    const subscriptions: Unsubscribe[] = [];
    for (const name of names ?? this.registry.names()) {
      const plugin = this.registry.require(name);
      if (plugin.watch === undefined) continue;
      const unsubscribe = await plugin.watch(this.context(name), (event) => {
        this.events.publish({
          type: 'watch.event',
          plugin: name,
          ...(event.resource ? { resource: event.resource } : {}),
          ...(event.detail ? { detail: event.detail } : {}),
        });
        onEvent(event);
      });
      subscriptions.push(unsubscribe);
    }
    return async () => {
      for (const unsubscribe of subscriptions) await unsubscribe();
    };
  }
}
