// What the daemon's tests share: waiting for one of the daemon's events, and reading its ledger.
import { join } from 'node:path';
import { Ledger } from '@opdbus/ledger';
import type { Daemon, DaemonEvent } from '../src/daemon.js';

/** Resolves with the first event `match` accepts. */
export function next(d: Daemon, match: (e: DaemonEvent) => boolean): Promise<DaemonEvent> {
  return new Promise((resolve) => {
    const stop = d.events.on((e) => {
      if (match(e)) {
        stop();
        resolve(e);
      }
    });
  });
}

/** Every entry of the ledger in `stateDir`, in order (read-only, without a lock). */
export async function ledgerEntries(stateDir: string): Promise<Record<string, unknown>[]> {
  const ledger = await Ledger.open({ dir: join(stateDir, 'ledger'), readOnly: true });
  try {
    const out: Record<string, unknown>[] = [];
    for await (const e of ledger.entries(0, ledger.size)) out.push(e.value as Record<string, unknown>);
    return out;
  } finally {
    await ledger.close();
  }
}
