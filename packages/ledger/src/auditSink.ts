import {
  boundedValue,
  canonicalJson,
  silentLogger,
  type AuditRecord,
  type AuditSink,
  type JsonValue,
  type Logger,
} from '@opdbus/core';
import { MAX_PAYLOAD } from './frame.js';
import { Ledger, type LedgerOptions } from './ledger.js';
import { LEDGER_RECORD_VERSION } from './records.js';
import { SnapshotManager, type SnapshotManagerOptions } from './snapshots/manager.js';

/** Options of {@link LedgerAuditSink}. */
export interface LedgerAuditSinkOptions {
  /** How to open the ledger for each record (it is opened, appended to and closed per record, so other processes can write between). */
  ledger: Omit<LedgerOptions, 'readOnly'>;
  /** Take an encrypted snapshot at every committed apply and confirm. */
  snapshots?: Omit<SnapshotManagerOptions, 'ledger'> & {
    /** The observed state to snapshot (e.g. `engine.query(undefined, { showSecrets: true })`). */
    capture: () => Promise<Record<string, unknown>>;
    /** Apply timeline retention after each snapshot (default true). */
    prune?: boolean;
  };
  logger?: Logger;
}

/**
 * The ledger entry of an engine record: the record with its format version (see
 * docs/ledger-format.md). The engine bounds every record; should one still exceed the ledger's
 * entry limit, its change records are kept by hash, so the step itself is always recorded.
 */
export function auditEntry(record: AuditRecord): JsonValue {
  const entry = { v: LEDGER_RECORD_VERSION, ...record } as unknown as Record<string, JsonValue>;
  if (Buffer.byteLength(canonicalJson(entry), 'utf8') <= MAX_PAYLOAD - 4096) return entry;
  const { changeRecords, ...rest } = entry;
  return { ...rest, changeRecords: boundedValue(changeRecords ?? null, 0) };
}

/**
 * The @opdbus/core {@link AuditSink} backed by the ledger: every engine record (plan, apply
 * result, rollback, confirm, drift) becomes a ledger entry, durable (fsync'd with a signed
 * checkpoint) before the engine goes on. Committed applies and confirms also take a snapshot.
 */
export class LedgerAuditSink implements AuditSink {
  readonly #options: LedgerAuditSinkOptions;
  readonly #logger: Logger;

  constructor(options: LedgerAuditSinkOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  async record(record: AuditRecord): Promise<void> {
    const ledger = await Ledger.open({
      ...this.#options.ledger,
      ...(this.#options.logger ? { logger: this.#options.logger } : {}),
    });
    try {
      await ledger.append(auditEntry(record));
      const snapshots = this.#options.snapshots;
      const committed =
        (record.kind === 'apply' && record.status === 'committed') || record.kind === 'confirm';
      if (snapshots !== undefined && committed) {
        try {
          const manager = await SnapshotManager.open({ ...snapshots, ledger });
          await manager.create(await snapshots.capture(), {
            kind: record.kind,
            ...(record.txId === undefined ? {} : { txId: record.txId }),
          });
          if (snapshots.prune !== false) await manager.prune();
        } catch (err) {
          // The step itself is recorded; a snapshot that failed is recorded too, and logged.
          this.#logger.error({ err, txId: record.txId }, 'could not take the snapshot of a committed apply');
          await ledger.append({
            v: 1,
            kind: 'snapshot.failed',
            at: new Date().toISOString(),
            ...(record.txId === undefined ? {} : { txId: record.txId }),
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }
    } finally {
      await ledger.close();
    }
  }
}
