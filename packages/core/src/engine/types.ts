// The engine's options and results (see engine.ts).
import type { AuditRecord, AuditSink } from '../audit.js';
import type { EventBus, OpdbusEvent } from '../events.js';
import type { Actor, TransactionRecord } from '../journal.js';
import type { Logger } from '../logger.js';
import type { Plan } from '../planner.js';
import type { NetnsRunner, PlanNote, TargetSpec } from '../plugin.js';
import type { ProcessIdentity } from '../process.js';
import type { PluginRegistry } from '../registry.js';

/** How verification retries while the kernel and daemons settle. */
export interface VerifyOptions {
  /** Attempts in all (default 6). */
  attempts: number;
  /** Delay before the second attempt; doubles each time (default 50 ms: 50+100+200+400+800 ≈ 1.5 s). */
  initialDelayMs: number;
}

/** Options of {@link Engine}. */
export interface EngineOptions {
  registry: PluginRegistry;
  /** The state directory (journals, lock). */
  stateDir: string;
  /** Where to act. */
  target?: TargetSpec;
  /** Opens `target.netns` (the apps pass `openNetns` from @opdbus/netlink). Required when a netns is targeted. */
  openNetns?: (spec: string) => NetnsRunner;
  logger?: Logger;
  events?: EventBus<OpdbusEvent>;
  /** Who acts (default: the current user). */
  actor?: Actor;
  verify?: Partial<VerifyOptions>;
  /**
   * Start the commit-confirmed watchdog for a transaction: an independent, detached process that
   * runs {@link Engine.runWatchdog}. Required for `confirmTimeoutS`.
   */
  spawnWatchdog?: (txId: string) => Promise<ProcessIdentity>;
  /**
   * Record every plan, apply result, rollback and confirm (e.g. in the @opdbus/ledger
   * transparency log). Awaited at each step; see {@link AuditSink} for what a failure does.
   */
  audit?: AuditSink;
  /**
   * How many transaction journals to keep: after each transaction the journals of the oldest
   * finished ones beyond this many are removed ({@link StateDir.prune}), so the state directory
   * that every apply reads stays bounded (default {@link DEFAULT_JOURNAL_RETENTION}). The ledger
   * keeps every transaction's record regardless.
   */
  journalRetention?: number;
}

/** Journals kept by default (see {@link EngineOptions.journalRetention}). */
export const DEFAULT_JOURNAL_RETENTION = 1000;

/** Options of {@link Engine.apply}. */
export interface ApplyOptions {
  /** Commit-confirmed: leave the transaction pending; the watchdog restores it after this many seconds unless confirmed. */
  confirmTimeoutS?: number;
  /** Apply changes flagged risky without commit-confirmed. */
  force?: boolean;
  /** Abort between changes (then restore). */
  signal?: AbortSignal;
  /**
   * Carry out only the changes of these resources (keys `plugin:resource`, see
   * {@link resourceKey}); the rest of the document's plan is left alone (not applied, not
   * checkpointed, not verified). The daemon uses it to correct only the resources in enforce mode.
   */
  only?: ReadonlySet<string>;
}

/** What {@link Engine.queryReport} returns. */
export interface QueryReport {
  /** Section by plugin: the observed state, in the document's shape. */
  plugins: Record<string, unknown>;
  /** Plugins an unscoped query could not reach, with the reason (e.g. "no OVSDB at unix:…"). */
  unavailable: Record<string, string>;
}

/** Outcome of a plan computed from a document. */
export interface PlanResult {
  plan: Plan;
  /** Observed sections, scoped to the document's. */
  observed: Record<string, unknown>;
  /** The desired sections planned for: the document's, with what plugins' `expand` contributed. */
  desired: Record<string, unknown>;
  /** Explanations from `expand`, for people (e.g. why these CPUs). */
  notes: PlanNote[];
}

/** Outcome of an apply that did not throw. */
export interface ApplyResult {
  status: 'no-changes' | 'committed' | 'pending-confirm';
  plan: Plan;
  txId?: string;
  /** Deadline of a pending transaction (ISO time). */
  deadline?: string;
  record?: TransactionRecord;
}

/** Options of {@link Engine.runWatchdog}. */
export interface WatchdogOptions {
  /** How often to check the owner's liveness while it applies (default 200 ms). */
  pollMs?: number;
  /** Resolves when the link to the owner breaks (e.g. its IPC channel closed): checked at once. */
  ownerGone?: Promise<void>;
  /** Registers a function that makes the watchdog re-read the journal now (e.g. on SIGTERM from `confirm`). */
  onWake?: (wake: () => void) => void;
}

/** What a recovery found and did. */
export interface RecoveryReport {
  txId: string;
  found: string;
  action: 'restored' | 'restore-failed' | 'watchdog-respawned' | 'left-alone';
  detail: string;
}

/** What a step hands to the audit log; the engine adds time, host, actor and process. */
export type AuditRecordFields = Omit<AuditRecord, 'at' | 'actor' | 'process' | 'target' | 'host'> & {
  target?: TargetSpec;
};
