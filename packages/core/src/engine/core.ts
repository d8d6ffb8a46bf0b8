// What the engine's parts share. The `Engine` class (engine.ts) builds one and hands it to the
// functions of plan.ts, transaction.ts, restore.ts, lifecycle.ts, ...: each of them reads only this.
import type { AuditSink } from '../audit.js';
import type { EventBus, OpdbusEvent } from '../events.js';
import type { Actor, StateDir } from '../journal.js';
import type { Logger } from '../logger.js';
import type { PluginContext, TargetSpec } from '../plugin.js';
import type { ProcessIdentity } from '../process.js';
import type { PluginRegistry } from '../registry.js';
import type { VerifyOptions } from './types.js';

/**
 * An engine's collaborators and settings, and how a plugin call gets its context: the explicit
 * context every part of the engine takes instead of reaching into the `Engine` class.
 */
export interface EngineCore {
  readonly registry: PluginRegistry;
  readonly state: StateDir;
  /** Where the engine acts (a journal's own target is used for its restore). */
  readonly target: TargetSpec;
  readonly events: EventBus<OpdbusEvent>;
  readonly logger: Logger;
  /** Who acts: recorded in journals and audit records. */
  readonly actor: Actor;
  readonly verify: VerifyOptions;
  /** Where every step is recorded (none: nothing is). */
  readonly audit: AuditSink | undefined;
  /** How many transaction journals to keep (see `EngineOptions.journalRetention`). */
  readonly journalRetention: number;
  /** Starts the commit-confirmed watchdog (none: commit-confirmed is refused). */
  readonly spawnWatchdog: ((txId: string) => Promise<ProcessIdentity>) | undefined;
  /** The context a plugin operation receives, for the engine's target or another (a journal's). */
  context(
    plugin: string,
    bindings?: Record<string, unknown>,
    signal?: AbortSignal,
    target?: TargetSpec,
  ): PluginContext;
}
