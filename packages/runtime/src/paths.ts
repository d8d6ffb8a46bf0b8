import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { OpdbusError } from '@opdbus/core';

/** Where the ledger, the snapshots and their keys live in a state directory. */
export interface LedgerPaths {
  /** The transparency log's directory. */
  ledgerDir: string;
  /** The Ed25519 key that signs its checkpoints. */
  ledgerKey: string;
  /** Encrypted state snapshots. */
  snapshotsDir: string;
  /** The key that encrypts them. */
  snapshotKey: string;
  /** The checkpoints' origin line: `HOSTNAME/opdbus`. */
  origin: string;
}

/** Where the ledger, the snapshots and their keys live in `stateDir`. */
export function ledgerPaths(stateDir: string): LedgerPaths {
  return {
    ledgerDir: join(stateDir, 'ledger'),
    ledgerKey: join(stateDir, 'keys', 'ledger.key'),
    snapshotsDir: join(stateDir, 'snapshots'),
    snapshotKey: join(stateDir, 'keys', 'snapshot.key'),
    origin: `${hostname()}/opdbus`,
  };
}

/** Make sure the state directory exists (mode 0700), or say how to fix it. */
export function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_DIR',
      `Cannot create the state directory ${dir}: ${(err as Error).message}; run as root or pass --state-dir.`,
      { cause: err },
    );
  }
}
