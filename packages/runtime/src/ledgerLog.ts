import { existsSync } from 'node:fs';
import { silentLogger, type AuditRecord, type AuditSink, type JsonValue, type Logger } from '@opdbus/core';
import type { Engine } from '@opdbus/core';
import { ensureStateDir, ledgerPaths } from './paths.js';

/** The fields of an entry {@link LedgerLog.append} writes, beside its `v`, `kind` and `at`. */
export type LedgerEntryFields = Record<string, JsonValue>;

/** Options of {@link LedgerLog.auditSink}. */
export interface LedgerAuditSinkExtra {
  /** Take an encrypted snapshot of the observed state at every committed apply and confirm (default true). */
  snapshots?: boolean;
}

/** Appends of this process, serialised per ledger directory (two logs on one state directory share it). */
const chains = new Map<string, Promise<unknown>>();

/**
 * The one way op-dbus apps append to the ledger in STATE_DIR/ledger: engine records (through
 * {@link LedgerLog.auditSink}, the engine's audit sink) and entries of the apps' own (an MCP tool
 * call, a refused request) through {@link LedgerLog.append}. The ledger is opened, appended to
 * and closed per entry, so the CLI, the daemon and the MCP server can write between; the appends
 * of one process go one after the other. @opdbus/ledger is loaded on first use.
 *
 * @example
 * ```ts
 * const log = new LedgerLog('/tmp/opdbus-state');
 * const index = await log.append('example.note', { text: 'hello' });
 * ```
 */
export class LedgerLog {
  readonly #dir: string;

  constructor(
    readonly stateDir: string,
    readonly logger: Logger = silentLogger,
  ) {
    this.#dir = ledgerPaths(stateDir).ledgerDir;
  }

  /**
   * Append an entry `{ v: 1, kind, at, ...fields }`; resolves to its index once it is durable
   * (fsync'd with a signed checkpoint).
   */
  append(kind: string, fields: LedgerEntryFields): Promise<number> {
    return this.#serialised(async () => {
      const paths = ledgerPaths(this.stateDir);
      if (!existsSync(this.stateDir)) ensureStateDir(this.stateDir);
      const { Ledger } = await import('@opdbus/ledger');
      const ledger = await Ledger.open({
        dir: paths.ledgerDir,
        keyFile: paths.ledgerKey,
        origin: paths.origin,
      });
      try {
        const entry = { v: 1, kind, at: new Date().toISOString(), ...fields };
        return (await ledger.append(entry)).index;
      } finally {
        await ledger.close();
      }
    });
  }

  /**
   * The engine's audit sink: every engine record (plan, apply, rollback, confirm, drift) becomes a
   * ledger entry, with an encrypted snapshot of the observed state at every committed apply.
   *
   * @param engine - the engine whose state a snapshot captures (called at record time)
   */
  auditSink(engine: () => Engine, extra: LedgerAuditSinkExtra = {}): AuditSink {
    let sink: Promise<AuditSink> | undefined;
    const paths = ledgerPaths(this.stateDir);
    return {
      record: (record: AuditRecord) =>
        this.#serialised(async () => {
          sink ??= import('@opdbus/ledger').then(
            ({ LedgerAuditSink }) =>
              new LedgerAuditSink({
                ledger: { dir: paths.ledgerDir, keyFile: paths.ledgerKey, origin: paths.origin },
                ...(extra.snapshots === false
                  ? {}
                  : {
                      snapshots: {
                        dir: paths.snapshotsDir,
                        keyFile: paths.snapshotKey,
                        actor: { ...record.actor },
                        capture: () => engine().query(undefined, { showSecrets: true }),
                      },
                    }),
                logger: this.logger,
              }),
          );
          await (await sink).record(record);
        }),
    };
  }

  #serialised<T>(fn: () => Promise<T>): Promise<T> {
    const next = (chains.get(this.#dir) ?? Promise.resolve()).then(fn);
    const settled = next.catch(() => undefined);
    chains.set(this.#dir, settled);
    void settled.then(() => {
      if (chains.get(this.#dir) === settled) chains.delete(this.#dir);
    });
    return next;
  }
}
