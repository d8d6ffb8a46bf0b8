import { runWatchdogProcess } from '@opdbus/runtime';
import type { GlobalOptions } from '../runtime.js';

/**
 * `opdbus __watchdog TXID` (internal): the commit-confirmed watchdog, as `opdbus-watchdog` of
 * @opdbus/runtime runs it (kept for watchdogs an older op-dbus started).
 */
export async function watchdog(global: GlobalOptions, txId: string): Promise<number> {
  return runWatchdogProcess(global, txId);
}
