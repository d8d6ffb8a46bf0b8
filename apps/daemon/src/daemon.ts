import { statSync, watch as watchFs, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import {
  EventBus,
  OpdbusError,
  auditChanges,
  canonicalJson,
  hashJson,
  isOpdbusError,
  resourceKey,
  terminalStatuses,
  type Actor,
  type AnyPlugin,
  type ApplyResult,
  type Change,
  type Engine,
  type JsonValue,
  type Logger,
  type OpdbusEvent,
  type StateDocument,
  type TransactionRecord,
  type Unsubscribe,
} from '@opdbus/core';
import {
  createEngine,
  ensureStateDir,
  recoverFirst,
  type RuntimeOptions,
  desiredSections,
  loadDesired,
} from '@opdbus/runtime';
import { FlapDamper, defaultDamping, type DampingOptions, type Hold } from './damper.js';
import { AuthFailureAudit } from './authAudit.js';
import { checkPlanPolicy, scoreChanges, type AnomalyOptions, type ScoreSummary } from './anomaly.js';
import { createMetrics, type DaemonMetrics } from './metrics.js';
import { ModePolicy, type Mode, type ModeRule } from './modes.js';

/** Options of {@link Daemon}. */
export interface DaemonOptions {
  /** State directory, target and log level, as every op-dbus app takes them. */
  runtime: RuntimeOptions;
  /** The desired state: a document file or a directory of them. */
  desired: string;
  /** The daemon-wide mode. */
  mode: Mode;
  /** Modes per plugin and resource (see {@link ModePolicy}). */
  modeRules?: readonly ModeRule[];
  /** Plugins that are polled instead of watched (default `['sysctl']`: /proc/sys has no events). */
  poll?: readonly string[];
  /** The poll period in milliseconds (default 1000). */
  pollMs?: number;
  /** Flap damping. */
  damping?: Partial<DampingOptions>;
  /** The plugins to start with (see `resolveAppPlugins`): those the desired state names suffice with `loadPlugins`. */
  plugins: AnyPlugin[];
  /**
   * Loads plugins the daemon has not got when a desired state, an API document or an unfinished
   * transaction names them: called with every plugin name wanted (undefined: all there are), it
   * returns the whole set, in planning order. Without it, the daemon has `plugins` only.
   */
  loadPlugins?: (names: readonly string[] | undefined) => Promise<AnyPlugin[]>;
  logger: Logger;
  /** How long events are coalesced before a comparison, in milliseconds (default 5). */
  coalesceMs?: number;
  /** How often the target namespace's file is looked at, in milliseconds (default 2000). */
  targetCheckMs?: number;
  /** Watch the desired-state path and reload on change (default true). */
  watchDesired?: boolean;
  /** Anomaly scoring of API plans and drift (`--anomaly-model`); none by default. */
  anomaly?: AnomalyOptions;
}

/** Where the daemon is. */
export type DaemonStatus = 'starting' | 'watching' | 'target-gone' | 'degraded' | 'stopped';

/** One resource that is not at its desired state. */
export interface DriftItem {
  /** `plugin:resource`. */
  key: string;
  plugin: string;
  resource: string;
  op: Change['op'];
  summary: string;
  before: JsonValue;
  after: JsonValue;
  mode: Mode;
  /** Who declares the desired value: `document` or the transaction that became its baseline. */
  authority: string;
  /** `open` (observe mode, or waiting), `correcting`, `held` (flap damping), `failed` (a correction failed). */
  state: 'open' | 'correcting' | 'held' | 'failed';
  since: string;
  lastSeen: string;
  /** The change id: a different drift of the same resource has another. */
  changeId: string;
  error?: string;
  /** How unusual this drift is (with `--anomaly-model`). */
  anomaly?: { score: number; anomalous: boolean; reasons: string[] };
}

/** What the daemon publishes (the API's Server-Sent Events). */
export type DaemonEvent =
  | { type: 'drift'; at: string; items: DriftItem[] }
  | { type: 'drift.resolved'; at: string; keys: string[]; by: 'correction' | 'host' }
  /** A drift step (detected, held, corrected, correction-failed) is in the ledger. */
  | { type: 'drift.recorded'; at: string; status: string; changes: number }
  | { type: 'correction'; at: string; txId?: string; keys: string[]; ok: boolean; error?: string }
  | { type: 'hold'; at: string; hold: Hold }
  | { type: 'transaction'; at: string; event: OpdbusEvent }
  | { type: 'baseline'; at: string; txId: string; actor: string; keys: string[] }
  | { type: 'reload'; at: string; ok: boolean; source: string; error?: string }
  | { type: 'status'; at: string; status: DaemonStatus; detail?: string }
  | { type: 'anomaly'; at: string; source: 'plan' | 'drift'; actor: string; scores: ScoreSummary[] };

/** A transaction (a manual `opdbus apply`, an API apply) whose result is the baseline of some resources. */
interface Baseline {
  txId: string;
  actor: string;
  sections: Record<string, unknown>;
  keys: Set<string>;
}
/** A transaction journal file: `TXID.json`. */
const txFile = /^(\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6})\.json$/;

const transactionEvents = new Set<OpdbusEvent['type']>([
  'tx.begin',
  'tx.committed',
  'tx.pending',
  'tx.confirmed',
  'tx.rolled-back',
  'recovery.done',
]);

const now = (): string => new Date().toISOString();

/**
 * opdbusd's reconcile loop: holds the desired state, watches the plugins' native event streams,
 * compares what they report with the desired state, reports drift (observe) or corrects it through
 * the transaction engine (enforce), damps flapping resources, and records drift, corrections and
 * holds in the ledger.
 */
export class Daemon {
  /** Drift, corrections, holds, transactions, reloads (bounded; slow readers lose the oldest). */
  readonly events = new EventBus<DaemonEvent>({ capacity: 256 });
  /** The engines' own events. */
  readonly engineEvents = new EventBus<OpdbusEvent>({ capacity: 1024 });
  readonly metrics: DaemonMetrics;
  readonly logger: Logger;
  readonly options: DaemonOptions;
  readonly policy: ModePolicy;
  readonly startedAt = now();
  /** Failed authentication on the API, recorded in the ledger (coalesced per peer). */
  readonly authFailures: AuthFailureAudit;
  #status: DaemonStatus = 'starting';
  #statusDetail: string | undefined;
  #engine: Engine;
  #engines = new Map<string, Engine>();
  #targetId: string | undefined;
  #doc: StateDocument | undefined;
  #baselines: Baseline[] = [];
  #drift = new Map<string, DriftItem>();
  #damper: FlapDamper;
  #pending = new Set<string>();
  #firstEventAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #unwatch: Unsubscribe[] = [];
  #pollTimer: NodeJS.Timeout | undefined;
  #targetTimer: NodeJS.Timeout | undefined;
  #fileWatcher: FSWatcher | undefined;
  #reloadTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs = 0;
  #corrections = new Set<string>();
  #lastTxId = '';
  /** Transactions not finished at the last look (in progress or pending confirmation): read again. */
  #unsettled = new Set<string>();
  #txDirMtime = -1;
  #pendingConfirm = false;
  #synced = false;
  #stopped = false;
  #onSynced: (() => void)[] = [];
  #plugins: AnyPlugin[];
  #allPlugins = false;
  #loading: Promise<void> = Promise.resolve();

  constructor(options: DaemonOptions) {
    this.options = options;
    this.#plugins = [...options.plugins];
    this.#allPlugins = options.loadPlugins === undefined;
    this.logger = options.logger;
    this.policy = new ModePolicy(options.mode, options.modeRules ?? []);
    this.metrics = createMetrics(options.runtime.stateDir);
    this.authFailures = new AuthFailureAudit(options.runtime.stateDir, { logger: options.logger });
    this.#damper = new FlapDamper({ ...defaultDamping, ...options.damping });
    this.#engine = this.#newEngine();
    this.engineEvents.on((event) => {
      if (transactionEvents.has(event.type)) this.#publish({ type: 'transaction', at: now(), event });
    });
  }

  /** Where the daemon is now. */
  get status(): DaemonStatus {
    return this.#status;
  }

  /** The engine (for the API's reads). */
  get engine(): Engine {
    return this.#engine;
  }

  /** The plugins loaded now (those the desired state and the API's documents named so far). */
  get plugins(): readonly AnyPlugin[] {
    return this.#plugins;
  }

  /**
   * Load the plugins named (all of them when undefined) that are not loaded yet, through
   * `loadPlugins`; the engines are made again with the larger set. A name that no plugin has makes
   * it load all of them, so that the document's error lists every plugin there is.
   */
  async ensurePlugins(names: readonly string[] | undefined): Promise<void> {
    const run = this.#loading.then(async () => {
      const load = this.options.loadPlugins;
      if (load === undefined || this.#allPlugins) return;
      const have = new Set(this.#plugins.map((p) => p.name));
      if (names !== undefined && names.every((n) => have.has(n))) return;
      let next = await load(names === undefined ? undefined : [...new Set([...have, ...names])]);
      let all = names === undefined;
      const got = new Set(next.map((p) => p.name));
      // Unknown names, or a plugin that expands into other plugins' sections: every plugin.
      if (!all && (names!.some((n) => !got.has(n)) || next.some((p) => p.expand !== undefined))) {
        next = await load(undefined);
        all = true;
      }
      this.#allPlugins = all;
      if (next.length === this.#plugins.length) return;
      this.logger.info(
        { plugins: next.map((p) => p.name).filter((n) => !have.has(n)) },
        'plugins loaded for the desired state',
      );
      this.#plugins = next;
      this.#engine = this.#newEngine();
      this.#engines.clear();
    });
    this.#loading = run.catch(() => undefined);
    return run;
  }

  /** The desired state in force. */
  get desired(): StateDocument | undefined {
    return this.#doc;
  }

  /** Whether the first comparison after start (and after the target came back) is done. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves after the first full comparison (and correction, in enforce mode). */
  firstSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#onSynced.push(resolve));
  }

  /** Drift now, holds in force and the transactions that are the baseline of resources. */
  driftReport(): {
    drift: DriftItem[];
    holds: Hold[];
    baselines: { txId: string; actor: string; keys: string[] }[];
  } {
    return {
      drift: [...this.#drift.values()],
      holds: this.#damper.holds(),
      baselines: this.#baselines.map((b) => ({ txId: b.txId, actor: b.actor, keys: [...b.keys] })),
    };
  }

  /** Status line for health checks, the status page and systemd. */
  describe(): { status: DaemonStatus; detail?: string; drift: number; holds: number; desired?: string } {
    return {
      status: this.#status,
      ...(this.#statusDetail === undefined ? {} : { detail: this.#statusDetail }),
      drift: this.#drift.size,
      holds: this.#damper.holds().length,
      ...(this.#doc === undefined ? {} : { desired: this.#doc.source }),
    };
  }

  /** Recover unfinished transactions, load the desired state, subscribe, and run the first comparison. */
  async start(): Promise<void> {
    ensureStateDir(this.options.runtime.stateDir);
    // Recovering a transaction may need any plugin.
    if ((await this.#engine.state.unfinished()).length > 0) await this.ensurePlugins(undefined);
    await recoverFirst(this.#engine, (line) => this.logger.warn(line));
    this.#lastTxId = (await this.#engine.state.ids()).at(-1) ?? '';
    this.#unsettled = new Set((await this.#engine.state.unfinished()).map((r) => r.txId));
    await this.ensurePlugins(await desiredSections(this.options.desired));
    this.#doc = await loadDesired(this.options.desired, this.#engine.registry);
    this.logger.info({ desired: this.#doc.source, mode: this.options.mode }, 'desired state loaded');
    if (this.options.watchDesired !== false) this.#watchDesired();
    await this.#connect();
  }

  /** Stop watching and close everything; resolves when the comparison in progress has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#setStatus('stopped');
    clearTimeout(this.#timer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#reloadTimer);
    clearInterval(this.#targetTimer);
    this.#fileWatcher?.close();
    await this.#disconnect();
    await this.#running?.catch(() => undefined);
    await this.authFailures.flush();
  }

  /**
   * Read the desired state again (on SIGHUP, or when its files change). An invalid document is
   * refused with a logged error and the one in force stays. A new document ends the baselines of
   * manual transactions and the holds: the document is the authority again.
   */
  async reload(reason: string): Promise<boolean> {
    let doc: StateDocument;
    try {
      await this.ensurePlugins(await desiredSections(this.options.desired));
      doc = await loadDesired(this.options.desired, this.#engine.registry);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.logger.error({ err, reason }, `the new desired state is refused; the previous one stays in force`);
      this.metrics.reloads.inc({ result: 'refused' });
      this.#publish({ type: 'reload', at: now(), ok: false, source: this.options.desired, error: message });
      return false;
    }
    if (this.#doc !== undefined && canonicalJson(this.#doc.plugins) === canonicalJson(doc.plugins))
      return true;
    this.#doc = doc;
    this.#baselines = [];
    this.#damper.release();
    this.#drift.clear();
    this.metrics.reloads.inc({ result: 'ok' });
    this.logger.info({ reason, desired: doc.source }, 'desired state reloaded');
    this.#publish({ type: 'reload', at: now(), ok: true, source: doc.source });
    if (this.#status === 'watching' || this.#status === 'degraded') {
      await this.#disconnect();
      await this.#connect();
    }
    return true;
  }

  /** The engine that records its transactions as `actor` (API writes: the token's name). */
  engineFor(actor: string): Engine {
    let engine = this.#engines.get(actor);
    if (engine === undefined) {
      engine = this.#newEngine({ kind: 'user', name: actor, uid: -1, pid: process.pid });
      this.#engines.set(actor, engine);
    }
    return engine;
  }

  /** Apply a document for an API client; its result becomes the baseline of what it changes. */
  async apply(
    doc: StateDocument,
    actor: string,
    options: { confirmTimeoutS?: number; force?: boolean; acknowledgeAnomalies?: boolean },
  ): Promise<ApplyResult> {
    const t0 = performance.now();
    try {
      const engine = this.engineFor(actor);
      const anomaly = this.options.anomaly;
      if (anomaly !== undefined) {
        // Scored at plan time: an alert for what is unusual, and the plan policy before anything changes.
        const { plan } = await engine.plan(doc);
        const scores = await this.scorePlan(plan.changes, actor);
        checkPlanPolicy(
          anomaly.plan,
          scores,
          anomaly.scorer.threshold,
          options.acknowledgeAnomalies === true,
        );
      }
      const { acknowledgeAnomalies: _ack, ...applyOptions } = options;
      const result = await engine.apply(doc, applyOptions);
      this.metrics.transactionSeconds.observe(
        { kind: 'api', result: result.status },
        (performance.now() - t0) / 1000,
      );
      return result;
    } catch (err) {
      this.metrics.transactionSeconds.observe(
        { kind: 'api', result: 'failed' },
        (performance.now() - t0) / 1000,
      );
      throw err;
    } finally {
      this.#scheduleAll();
    }
  }

  /** Confirm a pending transaction for an API client. */
  async confirm(txId: string | undefined, actor: string): Promise<TransactionRecord> {
    try {
      return await this.engineFor(actor).confirm(txId);
    } finally {
      this.#scheduleAll();
    }
  }

  /** Roll a transaction back for an API client. */
  async rollback(txId: string | undefined, actor: string, force: boolean): Promise<TransactionRecord> {
    try {
      return await this.engineFor(actor).rollback(txId, {
        force,
        reason: `rollback requested by ${actor} through the API`,
      });
    } finally {
      this.#scheduleAll();
    }
  }

  #newEngine(actor?: Actor): Engine {
    return createEngine(this.options.runtime, {
      plugins: this.#plugins,
      logger: this.logger,
      events: this.engineEvents,
      actor: actor ?? { kind: 'daemon', name: 'opdbusd', uid: process.getuid?.() ?? -1, pid: process.pid },
      // Corrections put back what the document says: no state snapshot each time (API applies keep theirs).
      snapshots: actor !== undefined,
    });
  }

  #publish(event: DaemonEvent): void {
    this.events.publish(event);
  }

  #setStatus(status: DaemonStatus, detail?: string): void {
    if (this.#status === status && this.#statusDetail === detail) return;
    this.#status = status;
    this.#statusDetail = detail;
    this.metrics.up.set(status === 'watching' ? 1 : 0);
    this.#publish({ type: 'status', at: now(), status, ...(detail === undefined ? {} : { detail }) });
  }

  /** The netns file of the target, when it is a named namespace or a path. */
  #targetPath(): string | undefined {
    const ns = this.options.runtime.netns;
    if (ns === undefined || ns.startsWith('pid:')) return undefined;
    return ns.includes('/') ? ns : `/run/netns/${ns}`;
  }

  /** The identity of the target namespace now (device and inode), or undefined when it is gone. */
  #targetIdentity(): string | undefined {
    const path = this.#targetPath();
    if (path === undefined) return 'host';
    try {
      const st = statSync(path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  }

  /** The plugins the daemon compares: those the document and the baselines name, less the ignored. */
  #managedPlugins(): string[] {
    const names = new Set(Object.keys(this.#doc?.plugins ?? {}));
    for (const b of this.#baselines) for (const n of Object.keys(b.sections)) names.add(n);
    return this.#engine.registry.names().filter((n) => names.has(n) && !this.policy.ignoresPlugin(n));
  }

  async #connect(): Promise<void> {
    const id = this.#targetIdentity();
    if (id === undefined) {
      this.#targetGone();
      return;
    }
    if (this.#targetId !== undefined && this.#targetId !== id) {
      // The namespace was deleted and made again: open the new one.
      this.#engine = this.#newEngine();
      this.#engines.clear();
    }
    this.#targetId = id;
    // A namespace deleted underneath sends no event (the watch's socket keeps the old one alive):
    // look at its file every few seconds (a stat; nothing else).
    clearInterval(this.#targetTimer);
    if (this.#targetPath() !== undefined) {
      this.#targetTimer = setInterval(() => {
        const now = this.#targetIdentity();
        if (now === undefined) this.#targetGone();
        else if (now !== this.#targetId) {
          this.logger.warn('the target namespace was replaced; reconnecting');
          void this.#disconnect().then(() => this.#connect());
        }
      }, this.options.targetCheckMs ?? 2000);
      this.#targetTimer.unref();
    }
    const poll = new Set(this.options.poll ?? ['sysctl']);
    let polled = false;
    for (const name of this.#managedPlugins()) {
      const plugin = this.#engine.registry.require(name);
      if (plugin.watch === undefined || poll.has(name)) {
        polled = true;
        continue;
      }
      try {
        const unsubscribe = await plugin.watch(this.#engine.context(name), () => {
          this.metrics.watchEvents.inc({ plugin: name });
          this.#schedule(name);
        });
        this.#unwatch.push(unsubscribe);
      } catch (err) {
        this.logger.warn({ err, plugin: name }, 'cannot watch this plugin; polling it instead');
        poll.add(name);
        polled = true;
      }
    }
    if (polled) {
      const pollMs = this.options.pollMs ?? 1000;
      const names = this.#managedPlugins().filter(
        (n) => poll.has(n) || this.#engine.registry.require(n).watch === undefined,
      );
      this.#pollTimer = setInterval(() => {
        for (const n of names) this.#schedule(n, false);
      }, pollMs);
    }
    if (this.#managedPlugins().length === 0) this.#markSynced();
    this.#scheduleAll();
  }

  #markSynced(): void {
    this.#synced = true;
    for (const resolve of this.#onSynced.splice(0)) resolve();
  }

  async #disconnect(): Promise<void> {
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    const subs = this.#unwatch;
    this.#unwatch = [];
    for (const unsubscribe of subs) {
      try {
        await unsubscribe();
      } catch (err) {
        this.logger.warn({ err }, 'could not end a watch');
      }
    }
  }

  #targetGone(): void {
    const path = this.#targetPath() ?? 'the target';
    if (this.#status !== 'target-gone') {
      this.logger.error({ target: path }, `the target ${path} is gone; retrying with backoff`);
      this.#synced = false;
      clearInterval(this.#targetTimer);
      void this.#disconnect();
    }
    this.#setStatus('target-gone', `${path} does not exist`);
    this.#retryLater(async () => {
      if (this.#targetIdentity() === undefined) {
        this.#targetGone();
        return;
      }
      this.logger.info({ target: path }, 'the target is back');
      this.#engine = this.#newEngine();
      this.#engines.clear();
      this.#targetId = undefined;
      this.#retryMs = 0;
      this.#setStatus('starting', 'the target is back');
      await this.#connect();
    });
  }

  #retryLater(fn: () => Promise<void>): void {
    if (this.#stopped) return;
    clearTimeout(this.#retryTimer);
    this.#retryMs = Math.min(Math.max(this.#retryMs * 2, 500), 30_000);
    this.#retryTimer = setTimeout(() => {
      fn().catch((err: unknown) => this.logger.error({ err }, 'retry failed'));
    }, this.#retryMs);
    this.#retryTimer.unref();
  }

  #watchDesired(): void {
    const path = resolve(this.options.desired);
    let dir = path;
    let file: string | undefined;
    try {
      if (!statSync(path).isDirectory()) {
        dir = dirname(path);
        file = basename(path);
      }
      this.#fileWatcher = watchFs(dir, (_event, name) => {
        if (file !== undefined && name !== file) return;
        clearTimeout(this.#reloadTimer);
        this.#reloadTimer = setTimeout(() => void this.reload('the desired state changed on disk'), 200);
      });
      this.#fileWatcher.on('error', (err) =>
        this.logger.warn({ err }, 'stopped watching the desired state; reload with SIGHUP'),
      );
    } catch (err) {
      this.logger.warn({ err }, 'cannot watch the desired state for changes; reload with SIGHUP');
    }
  }

  #scheduleAll(): void {
    for (const name of this.#managedPlugins()) this.#schedule(name, false);
  }

  /** Ask for a comparison of a plugin's resources; events close together share one. */
  #schedule(plugin: string, fromEvent = true): void {
    if (this.#stopped || this.#status === 'target-gone') return;
    this.#pending.add(plugin);
    if (fromEvent) this.#firstEventAt ??= performance.now();
    if (this.#running !== undefined || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#drain().finally(() => {
        this.#running = undefined;
        if (this.#pending.size > 0) this.#schedule([...this.#pending][0]!, false);
      });
    }, this.options.coalesceMs ?? 5);
  }

  async #drain(): Promise<void> {
    while (this.#pending.size > 0 && !this.#stopped) {
      const plugins = new Set(this.#pending);
      this.#pending.clear();
      const eventAt = this.#firstEventAt;
      this.#firstEventAt = undefined;
      try {
        await this.#check(plugins, eventAt);
        this.#retryMs = 0;
        if (this.#status !== 'watching' && this.#status !== 'target-gone') this.#setStatus('watching');
        if (!this.#synced && plugins.size >= this.#managedPlugins().length) this.#markSynced();
      } catch (err) {
        this.metrics.checkErrors.inc();
        if (
          this.#targetIdentity() === undefined ||
          (this.#targetPath() !== undefined && this.#targetIdentity() !== this.#targetId)
        ) {
          if (this.#targetIdentity() === undefined) this.#targetGone();
          else {
            this.logger.warn('the target namespace was replaced; reconnecting');
            await this.#disconnect();
            await this.#connect();
          }
          return;
        }
        const message = err instanceof Error ? err.message : String(err);
        this.logger.error({ err }, 'comparing with the desired state failed; retrying with backoff');
        this.#setStatus('degraded', message.split('\n')[0]);
        this.#retryLater(() => {
          this.#scheduleAll();
          return Promise.resolve();
        });
        return;
      }
    }
  }

  /** Compare the named plugins' resources with the desired state; report, correct, damp. */
  async #check(plugins: ReadonlySet<string>, eventAt: number | undefined): Promise<void> {
    const doc = this.#doc;
    if (doc === undefined) return;
    const id = this.#targetIdentity();
    if (id === undefined || id !== this.#targetId)
      throw new OpdbusError('OPDBUS_ERR_NETNS', 'the target namespace changed');
    const engine = this.#engine;
    // The lock is the CLI's and the MCP server's too: a transaction in progress elsewhere is waited
    // for, and its result is taken in (see #absorb) before anything is compared.
    const lock = await engine.state.lock(Number.POSITIVE_INFINITY, {
      command: 'opdbusd: compare with the desired state',
    });
    let found: { change: Change; authority: string; mode: Mode }[];
    try {
      await this.#absorb(engine, doc);
      found = await this.#compare(engine, doc, plugins);
    } finally {
      await lock.release();
    }
    for (const name of plugins) this.metrics.checks.inc({ plugin: name });

    const at = now();
    const seen = new Set(found.map((f) => resourceKey(f.change)));
    const resolved = [...this.#drift.values()].filter((d) => plugins.has(d.plugin) && !seen.has(d.key));
    for (const d of resolved) this.#drift.delete(d.key);
    if (resolved.length > 0)
      this.#publish({ type: 'drift.resolved', at, keys: resolved.map((d) => d.key), by: 'host' });

    let detected: Promise<void> = Promise.resolve();
    try {
      await this.#report(engine, doc, plugins, eventAt, found, (recorded) => {
        detected = recorded;
      });
    } finally {
      await detected;
    }
  }

  /** Report, record, damp and correct what {@link #check} found. */
  async #report(
    engine: Engine,
    doc: StateDocument,
    plugins: ReadonlySet<string>,
    eventAt: number | undefined,
    found: { change: Change; authority: string; mode: Mode }[],
    onDetected: (recorded: Promise<void>) => void,
  ): Promise<void> {
    const at = now();
    let detected: Promise<void> | undefined;
    const fresh: DriftItem[] = [];
    const newHolds: Hold[] = [];
    for (const { change, authority, mode } of found) {
      const key = resourceKey(change);
      const known = this.#drift.get(key);
      if (known !== undefined && known.changeId === change.id) {
        known.lastSeen = at;
        continue;
      }
      const item: DriftItem = {
        key,
        plugin: change.plugin,
        resource: change.resource,
        op: change.op,
        summary: change.summary,
        before: change.before,
        after: change.after,
        mode,
        authority,
        state: 'open',
        since: known?.since ?? at,
        lastSeen: at,
        changeId: change.id,
      };
      const hold = this.#damper.drifted(key);
      if (hold !== undefined) newHolds.push(hold);
      if (this.#damper.held(key) !== undefined) item.state = 'held';
      this.#drift.set(key, item);
      fresh.push(item);
      this.metrics.driftEvents.inc({ plugin: change.plugin, mode });
    }
    this.metrics.driftActive.set(this.#drift.size);
    this.metrics.holdsActive.set(this.#damper.holds().length);
    // Drift scored as what the host underwent; above the threshold, rolled back under `--anomaly-drift rollback`.
    const unusual = new Set<string>();
    if (fresh.length > 0 && this.options.anomaly !== undefined) {
      const freshKeys = new Set(fresh.map((i) => i.key));
      const drifted = found.filter((f) => freshKeys.has(resourceKey(f.change))).map((f) => f.change);
      for (const s of await this.#score(engine, drifted, 'drift', 'drift')) {
        const item = this.#drift.get(s.key);
        if (item !== undefined) item.anomaly = { score: s.score, anomalous: s.anomalous, reasons: s.reasons };
        if (s.anomalous) unusual.add(s.key);
      }
    }
    if (fresh.length > 0) {
      if (eventAt !== undefined)
        this.metrics.driftDetectSeconds.observe((performance.now() - eventAt) / 1000);
      this.#publish({ type: 'drift', at, items: fresh });
      for (const item of fresh)
        this.logger.warn(
          { drift: item.key, mode: item.mode, state: item.state, authority: item.authority },
          `drift: ${item.summary}`,
        );
      // A resource already on hold is reported (log, API, events) but not written to the ledger
      // again at every flap: its hold entry says it flaps.
      const newlyHeld = new Set(newHolds.map((h) => h.key));
      const recorded = fresh.filter((i) => i.state !== 'held' || newlyHeld.has(i.key));
      const changes = found
        .filter((f) => recorded.some((i) => i.key === resourceKey(f.change)))
        .map((f) => f.change);
      // Not awaited here: a correction that follows starts while the entry is being made durable.
      // Appends are serialised (the runtime's LedgerLog), so it still precedes the correction's
      // own entries in the ledger; #check returns only once it is written.
      if (changes.length > 0)
        detected = this.#record(
          engine,
          'detected',
          changes,
          `${changes.length} resource(s) drifted from the desired state`,
        );
      if (detected !== undefined) onDetected(detected);
    }
    for (const hold of newHolds) {
      this.metrics.holds.inc();
      this.logger.warn(
        { hold: hold.key, until: hold.until },
        `hold: ${hold.key} drifted ${hold.drifts} times; not corrected until ${hold.until}`,
      );
      const change = found.find((f) => resourceKey(f.change) === hold.key)?.change;
      await this.#record(
        engine,
        'held',
        change === undefined ? [] : [change],
        `${hold.key} drifted ${hold.drifts} times within ${this.#damper.options.windowMs / 1000} s; on hold until ${hold.until}`,
      );
      this.#publish({ type: 'hold', at, hold });
    }

    // Enforce: correct what is in enforce mode and not on hold, one transaction per authority.
    const rollBack = this.options.anomaly?.drift === 'rollback';
    const toCorrect = found.filter(
      ({ change, mode }) =>
        (mode === 'enforce' ||
          (mode === 'observe' &&
            rollBack &&
            (unusual.has(resourceKey(change)) ||
              this.#drift.get(resourceKey(change))?.anomaly?.anomalous === true))) &&
        this.#damper.held(resourceKey(change)) === undefined,
    );
    if (toCorrect.length === 0) return;
    if (this.#pendingConfirm) {
      for (const f of toCorrect) {
        const item = this.#drift.get(resourceKey(f.change));
        if (item !== undefined)
          item.error =
            'a transaction is pending confirmation; corrected after it is confirmed or rolled back';
      }
      return;
    }
    const byAuthority = new Map<string, Change[]>();
    for (const f of toCorrect)
      byAuthority.set(f.authority, [...(byAuthority.get(f.authority) ?? []), f.change]);
    for (const [authority, changes] of byAuthority) await this.#correct(engine, doc, authority, changes);
  }

  async #correct(engine: Engine, doc: StateDocument, authority: string, changes: Change[]): Promise<void> {
    const keys = new Set(changes.map(resourceKey));
    const baseline = this.#baselines.find((b) => b.txId === authority);
    const target: StateDocument =
      baseline === undefined
        ? { ...doc, plugins: pick(doc.plugins, changes) }
        : { version: 1, plugins: pick(baseline.sections, changes), source: `transaction ${baseline.txId}` };
    for (const key of keys) {
      const item = this.#drift.get(key);
      if (item !== undefined) item.state = 'correcting';
    }
    const t0 = performance.now();
    try {
      const result = await engine.apply(target, { only: keys });
      if (result.txId !== undefined) this.#corrections.add(result.txId);
      this.metrics.transactionSeconds.observe(
        { kind: 'correction', result: result.status },
        (performance.now() - t0) / 1000,
      );
      this.metrics.corrections.inc({ result: 'committed' });
      if (result.txId !== undefined)
        this.#lastTxId = result.txId > this.#lastTxId ? result.txId : this.#lastTxId;
      for (const key of keys) this.#drift.delete(key);
      this.metrics.driftActive.set(this.#drift.size);
      this.logger.info({ txId: result.txId, keys: [...keys] }, `corrected ${keys.size} resource(s)`);
      // Recorded before it is announced: whoever hears of a correction finds it in the ledger.
      await this.#record(
        engine,
        'corrected',
        changes,
        `corrected through transaction ${result.txId ?? '(no changes left)'}`,
        result.txId,
      );
      this.#publish({
        type: 'correction',
        at: now(),
        ...(result.txId === undefined ? {} : { txId: result.txId }),
        keys: [...keys],
        ok: true,
      });
      this.#publish({ type: 'drift.resolved', at: now(), keys: [...keys], by: 'correction' });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.metrics.transactionSeconds.observe(
        { kind: 'correction', result: 'failed' },
        (performance.now() - t0) / 1000,
      );
      this.metrics.corrections.inc({ result: 'failed' });
      for (const key of keys) {
        const item = this.#drift.get(key);
        if (item !== undefined) {
          item.state = 'failed';
          item.error = message.split('\n')[0] ?? message;
        }
      }
      this.logger.error({ err, keys: [...keys] }, 'correcting the drift failed');
      this.#publish({ type: 'correction', at: now(), keys: [...keys], ok: false, error: message });
      await this.#record(engine, 'correction-failed', changes, message);
      // Try again later (flap damping puts a resource that keeps failing on hold).
      this.#retryLater(() => {
        for (const c of changes) this.#schedule(c.plugin, false);
        return Promise.resolve();
      });
    } finally {
      if (this.#corrections.size > 1000) this.#corrections.delete(this.#corrections.values().next().value!);
    }
  }

  /**
   * Score a plan's changes (with `--anomaly-model`; none without): what is at or above the
   * threshold is an alert (ledger, metrics, event, log).
   */
  async scorePlan(changes: readonly Change[], actor: string): Promise<ScoreSummary[]> {
    return this.#score(this.#engine, changes, 'plan', actor);
  }

  async #score(
    engine: Engine,
    changes: readonly Change[],
    source: 'plan' | 'drift',
    actor: string,
  ): Promise<ScoreSummary[]> {
    const anomaly = this.options.anomaly;
    if (anomaly === undefined || changes.length === 0) return [];
    let scores: ScoreSummary[];
    try {
      scores = scoreChanges(anomaly.scorer, changes, (name) => engine.registry.get(name), {
        actor,
        drift: source === 'drift',
      });
    } catch (err) {
      // Scoring is advice: a failure is logged, never a reason to stop watching or applying.
      this.logger.error({ err, source }, 'anomaly scoring failed');
      return [];
    }
    for (const s of scores) this.metrics.anomalyScores.observe({ source }, s.score);
    const flagged = scores.filter((s) => s.anomalous);
    if (flagged.length === 0) return scores;
    this.metrics.anomalyAlerts.inc({ source }, flagged.length);
    for (const s of flagged)
      this.logger.warn(
        { anomaly: s.key, score: s.score, source, actor },
        `anomaly: ${s.key} scores ${s.score.toFixed(3)} (threshold ${anomaly.scorer.threshold}): ${s.reasons.join('; ') || 'unusual'}`,
      );
    const ids = new Set(flagged.map((s) => s.changeId));
    const flaggedChanges = changes.filter((c) => ids.has(c.id));
    try {
      await engine.record({
        kind: 'alert',
        status: source,
        reason: `${flagged.length} ${source === 'plan' ? 'planned change(s)' : 'drift(s)'} at or above the anomaly threshold ${anomaly.scorer.threshold} (actor ${actor})`,
        changes: flaggedChanges.length,
        plugins: [...new Set(flaggedChanges.map((c) => c.plugin))],
        changeRecords: auditChanges(flaggedChanges, (name) => engine.registry.get(name), {
          inverse: source === 'drift',
        }),
        anomalies: flagged.map(({ changeId, score, reasons }) => ({ changeId, score, reasons })),
      });
    } catch (err) {
      this.logger.error({ err, source }, 'could not record the anomaly alert in the ledger');
    }
    this.#publish({ type: 'anomaly', at: now(), source, actor, scores: flagged });
    return scores;
  }

  /** A drift step in the ledger (and a failure to record it in the log, never a crash). */
  async #record(
    engine: Engine,
    status: string,
    changes: Change[],
    reason: string,
    txId?: string,
  ): Promise<void> {
    try {
      await engine.record({
        kind: 'drift',
        status,
        reason: reason.length > 4096 ? `${reason.slice(0, 4096)}…` : reason,
        changes: changes.length,
        plugins: [...new Set(changes.map((c) => c.plugin))],
        stateHashBefore: hashJson(changes.map((c) => ({ key: resourceKey(c), observed: c.before }))),
        changeRecords: auditChanges(changes, (name) => engine.registry.get(name)),
        ...(txId === undefined ? {} : { txId }),
      });
      this.#publish({
        type: 'drift.recorded',
        at: new Date().toISOString(),
        status,
        changes: changes.length,
      });
    } catch (err) {
      this.logger.error({ err, status }, 'could not record the drift in the ledger');
    }
  }

  /**
   * Take in transactions other processes (or API clients) ran since the last look: where one
   * changed a managed resource to something other than the document says, its result becomes that
   * resource's baseline (until the document changes or the transaction is rolled back).
   */
  async #absorb(engine: Engine, doc: StateDocument): Promise<void> {
    let mtime: number;
    try {
      mtime = (await stat(engine.state.transactionsDir)).mtimeMs;
    } catch {
      return;
    }
    if (mtime === this.#txDirMtime) return;
    this.#txDirMtime = mtime;
    // Only what can matter is read: transactions newer than the last look, those unfinished then,
    // and those that are baselines (a rollback ends them); not the whole journal at every event.
    const baselineIds = new Set(this.#baselines.map((b) => b.txId));
    const ids = (await readdir(engine.state.transactionsDir))
      .map((name) => txFile.exec(name)?.[1])
      .filter(
        (id): id is string =>
          id !== undefined && (id > this.#lastTxId || this.#unsettled.has(id) || baselineIds.has(id)),
      )
      .sort();
    const records: TransactionRecord[] = [];
    for (const id of ids) {
      try {
        records.push(await engine.state.read(id));
      } catch (err) {
        // Removed since the listing (pruned): nothing to take in.
        if (!isOpdbusError(err, 'OPDBUS_ERR_TX_NOT_FOUND')) throw err;
      }
    }
    this.#unsettled = new Set(records.filter((r) => !terminalStatuses.has(r.status)).map((r) => r.txId));
    const byId = new Map(records.map((r) => [r.txId, r]));
    this.#pendingConfirm = records.some((r) => r.status === 'pending-confirm');
    // A baseline whose transaction was rolled back ends: the document rules those resources again.
    this.#baselines = this.#baselines.filter((b) => {
      const status = byId.get(b.txId)?.status;
      return status === 'committed' || status === 'pending-confirm';
    });
    for (const record of records) {
      if (record.txId <= this.#lastTxId) continue;
      if (!terminalStatuses.has(record.status) && record.status !== 'pending-confirm') continue;
      this.#lastTxId = record.txId;
      if (this.#corrections.has(record.txId)) continue;
      if (record.status !== 'committed' && record.status !== 'pending-confirm') continue;
      const txKeys = new Set(record.plan.changes.map(resourceKey));
      const names = Object.keys(record.desired).filter((n) => doc.plugins[n] !== undefined);
      if (names.length === 0) continue;
      const { plan } = await engine.plan({ ...doc, plugins: pickNames(doc.plugins, names) });
      const keys = new Set(plan.changes.map(resourceKey).filter((k) => txKeys.has(k)));
      if (keys.size === 0) continue;
      for (const older of this.#baselines) for (const k of keys) older.keys.delete(k);
      this.#baselines = this.#baselines.filter((b) => b.keys.size > 0);
      const baseline: Baseline = {
        txId: record.txId,
        actor: record.actor.name,
        sections: record.desired,
        keys,
      };
      this.#baselines.push(baseline);
      for (const k of keys) this.#drift.delete(k);
      this.logger.info(
        { txId: record.txId, actor: record.actor.name, keys: [...keys] },
        `transaction ${record.txId} by ${record.actor.name} changed managed resources; its result is their baseline until the desired state changes`,
      );
      this.#publish({
        type: 'baseline',
        at: now(),
        txId: record.txId,
        actor: record.actor.name,
        keys: [...keys],
      });
    }
  }

  /** What differs from the desired state among the named plugins' resources, with its authority and mode. */
  async #compare(
    engine: Engine,
    doc: StateDocument,
    plugins: ReadonlySet<string>,
  ): Promise<{ change: Change; authority: string; mode: Mode }[]> {
    const out: { change: Change; authority: string; mode: Mode }[] = [];
    const owned = new Map<string, string>();
    for (const b of this.#baselines) for (const k of b.keys) owned.set(k, b.txId);
    const take = (changes: readonly Change[], authority: string): void => {
      for (const change of changes) {
        const key = resourceKey(change);
        if ((owned.get(key) ?? 'document') !== authority) continue;
        const mode = this.policy.of(change.plugin, change.resource);
        if (mode === 'ignore') continue;
        out.push({ change, authority, mode });
      }
    };
    const names = Object.keys(doc.plugins).filter((n) => plugins.has(n));
    if (names.length > 0) {
      const { plan } = await engine.plan({ ...doc, plugins: pickNames(doc.plugins, names) });
      take(plan.changes, 'document');
    }
    for (const b of this.#baselines) {
      const own = Object.keys(b.sections).filter(
        (n) => plugins.has(n) && [...b.keys].some((k) => k.startsWith(`${n}:`)),
      );
      if (own.length === 0) continue;
      const { plan } = await engine.plan({
        version: 1,
        plugins: pickNames(b.sections, own),
        source: `transaction ${b.txId}`,
      });
      take(plan.changes, b.txId);
    }
    return out;
  }
}

function pickNames(sections: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names) if (sections[n] !== undefined) out[n] = sections[n];
  return out;
}

function pick(sections: Record<string, unknown>, changes: readonly Change[]): Record<string, unknown> {
  return pickNames(sections, [...new Set(changes.map((c) => c.plugin))]);
}
