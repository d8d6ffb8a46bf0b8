import { selfIdentity } from '@opdbus/core';
import { releaseSync } from './cleanup.js';
import {
  defaultRecordDir,
  newSandboxId,
  recordFile,
  removeRecordFile,
  writeRecord,
  type SandboxKind,
  type SandboxRecord,
} from './records.js';

interface Tracked {
  record: SandboxRecord;
  recordDir: string;
}

/** Every live resource of this process, in creation order. */
const live = new Map<string, Tracked>();
const exitSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let hooked = false;

/**
 * Best-effort synchronous cleanup of every live resource of this process, newest first. Runs on
 * `process.on('exit')` (a failing test file, an uncaught exception, `process.exit()`) and on
 * SIGINT/SIGTERM/SIGHUP when nothing else handles them. SIGKILL cannot be caught: that is what
 * {@link reapStaleSandboxes} is for.
 */
export function cleanupAllSync(): void {
  for (const [id, tracked] of [...live].reverse()) {
    let leftovers: string[];
    try {
      leftovers = releaseSync(tracked.record);
    } catch (err) {
      leftovers = [(err as Error).message];
    }
    // Keep the record when something is left, so a later reapStaleSandboxes() retries.
    if (leftovers.length === 0) {
      try {
        removeRecordFile(recordFile(tracked.recordDir, id));
      } catch {
        // The record stays; reapStaleSandboxes() will find everything gone and remove it.
      }
    }
    live.delete(id);
  }
  unhook();
}

function onExit(): void {
  cleanupAllSync();
}

function onSignal(sig: NodeJS.Signals): void {
  // Someone else handles this signal: leave the decision to exit to them ('exit' still cleans).
  if (process.listenerCount(sig) > 1) return;
  cleanupAllSync();
  // Die of the signal as if we had never listened (the default action), as signal-exit does.
  process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', onExit);
  for (const sig of exitSignals) process.on(sig, onSignal);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.removeListener('exit', onExit);
  for (const sig of exitSignals) process.removeListener(sig, onSignal);
}

/** A resource's handle on its record. */
export interface Registration {
  readonly record: SandboxRecord;
  /** Rewrite the record file after changing `record` (e.g. a daemon's pid became known). */
  save(): void;
  /** Forget the resource: remove its record file. Call once it is fully gone. */
  done(): void;
}

/**
 * Register a new resource before creating anything: writes its record file (owner pid and start
 * time) and adds it to the process-wide list that the exit hook cleans.
 */
export function register(
  kind: SandboxKind,
  fill: (id: string) => Partial<Pick<SandboxRecord, 'netns' | 'dir' | 'cgroups'>> = () => ({}),
): Registration {
  const id = newSandboxId();
  const record: SandboxRecord = {
    version: 1,
    id,
    kind,
    owner: selfIdentity(),
    createdAt: new Date().toISOString(),
    pids: [],
    ...fill(id),
  };
  const recordDir = defaultRecordDir();
  writeRecord(recordDir, record);
  live.set(id, { record, recordDir });
  hook();
  return {
    record,
    save: () => {
      if (live.has(id)) writeRecord(recordDir, record);
    },
    done: () => {
      removeRecordFile(recordFile(recordDir, id));
      live.delete(id);
      if (live.size === 0) unhook();
    },
  };
}

/** The ids of the resources this process has alive (for tests and diagnostics). */
export function liveSandboxIds(): string[] {
  return [...live.keys()];
}
