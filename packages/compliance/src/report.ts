import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { canonicalJson } from '@opdbus/core';
import { hostname } from 'node:os';
import {
  BUNDLE_FORMAT,
  SnapshotManager,
  openCheckpoint,
  type EvidenceBundle,
  type Ledger,
  type SnapshotInfo,
} from '@opdbus/ledger';
import {
  combineStatus,
  runEvidenceQuery,
  type ControlStatus,
  type EntryRef,
  type EvidenceResult,
  type EvidenceSources,
  type HostObserver,
} from './evidence.js';
import type { Framework } from './framework.js';

/** The format tag of a compliance report. */
export const REPORT_FORMAT = 'opdbus-compliance-report/v1';

/** One evidence query of a control: its result is `report.evidence[key]`. */
export interface ControlEvidence {
  /** The key of the result in {@link ComplianceReport.evidence}: the query, and a hash of its params if any. */
  key: string;
  query: EvidenceResult['query'];
  status: ControlStatus;
  /** Why this evidence supports the control. */
  why: string;
}

/** One control, evaluated. */
export interface ControlResult {
  id: string;
  title: string;
  status: ControlStatus;
  /** What op-dbus cannot evidence for the control: the auditor checks it by other means. */
  manual?: string;
  /** The evidence queries of the control, with why each one supports it. */
  evidence: ControlEvidence[];
}

/** A compliance report: every control of a framework with its evidence, proven against one signed checkpoint. */
export interface ComplianceReport {
  format: typeof REPORT_FORMAT;
  framework: { id: string; title: string; standard: string; version: string };
  generatedAt: string;
  /** The host the report is about (the ledger's host). */
  host: string;
  /** What the host checks observed (network namespace, bus, root), when not the host itself. */
  target?: Record<string, unknown>;
  period: { from: string | null; to: string | null };
  ledger: {
    origin: string;
    /** Tree size and root (hex) of the checkpoint every proof leads to. */
    size: number;
    root: string;
    /** The signed checkpoint (C2SP tlog-checkpoint note), also in checkpoint.txt. */
    checkpoint: string;
    /** The verifier key of the log (also in verifier.pub); pin it rather than trust it from here. */
    verifierKey: string;
    /** The file holding every entry the evidence rests on, with its inclusion proof. */
    bundle: string;
  };
  summary: Record<ControlStatus, number>;
  controls: ControlResult[];
  /** Each evidence query's result, once, however many controls cite it. */
  evidence: Record<string, EvidenceResult>;
}

/** Options of {@link buildReport}. */
export interface BuildReportOptions {
  framework: Framework;
  /** The ledger (open read-only is enough). */
  ledger: Ledger;
  /**
   * The period: entries whose `at` is in [from, to). Default: all. Entries from `from` on are
   * read (those after `to` too: a rollback after the period ends a transaction of the period), so
   * host checks cite the last change to a value recorded since `from`.
   */
  period?: { from?: Date; to?: Date };
  /** The host, for the `host.*` checks (see `engineObserver`); without it they are `manual`. */
  host?: HostObserver;
  /** Key files `keys.protected` checks. */
  keyFiles?: readonly { name: string; file: string }[];
  /**
   * The snapshot store, to check each snapshot on disk against the ledger. Opened only when its
   * key file exists (it is never created here).
   */
  snapshots?: { dir: string; keyFile: string; backend?: 'auto' | 'directory' | 'btrfs' };
  /** The target of the host checks, recorded in the report. */
  target?: Record<string, unknown>;
  /** Verify the whole ledger for `ledger.integrity` (default: true). */
  verifyLedgerFiles?: boolean;
  now?: Date;
}

/** The ledger bundle file name in an evidence bundle. */
export const LEDGER_BUNDLE_FILE = 'ledger-bundle.json';

/**
 * Evaluate every control of a framework: run its evidence queries over the ledger (up to its
 * current signed checkpoint), the state directory and the host, and attach to each evidence item
 * the inclusion proofs of the ledger entries it rests on. Returns the report and the ledger
 * evidence bundle (`opdbus-ledger-bundle/v1`) holding those entries and the entries of the period.
 */
export async function buildReport(
  options: BuildReportOptions,
): Promise<{ report: ComplianceReport; ledgerBundle: EvidenceBundle }> {
  const { ledger, framework } = options;
  const period = options.period ?? {};
  const checkpoint = await ledger.checkpoint();
  const cp = openCheckpoint(checkpoint, [ledger.verifier]).checkpoint;
  // Entries are appended in time order: a period's first entry is found by bisection, so a
  // report for a recent period does not read the whole history.
  const start =
    period.from === undefined
      ? 0
      : await firstEntryAtOrAfter(ledger, cp.size, period.from.getTime() - CLOCK_SLACK_MS);
  const entries: { index: number; value: unknown; bytes: string }[] = [];
  const bytesOf = new Map<number, string>();
  for await (const e of ledger.entries(start, cp.size)) {
    const bytes = e.bytes.toString('utf8');
    entries.push({ index: e.index, value: e.value, bytes });
    bytesOf.set(e.index, bytes);
  }

  const referenced = new Set<number>();
  const refs = new Map<number, EntryRef>();
  const sources: EvidenceSources = {
    entries,
    period,
    ...(options.verifyLedgerFiles === false ? {} : { ledgerDir: ledger.dir }),
    verifier: ledger.verifier,
    ...(options.keyFiles === undefined ? {} : { keyFiles: options.keyFiles }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.snapshots !== undefined && existsSync(options.snapshots.keyFile)
      ? { snapshots: listSnapshots(options.snapshots, ledger) }
      : {}),
    ref(index) {
      referenced.add(index);
      let ref = refs.get(index);
      if (ref === undefined) {
        ref = { index, leafHash: ledger.leafHash(index).toString('hex') };
        refs.set(index, ref);
      }
      return ref;
    },
  };

  const evidenceResults: Record<string, EvidenceResult> = {};
  const controls: ControlResult[] = [];
  for (const control of framework.controls) {
    const evidence: ControlEvidence[] = [];
    for (const ref of control.evidence) {
      const key =
        ref.params === undefined
          ? ref.query
          : `${ref.query}#${createHash('sha256')
              .update(canonicalJson(ref.params))
              .digest('hex')
              .slice(0, 12)}`;
      evidenceResults[key] ??= await runEvidenceQuery(ref.query, sources, ref.params);
      evidence.push({ key, query: ref.query, status: evidenceResults[key].status, why: ref.why });
    }
    const status =
      evidence.length === 0
        ? 'manual'
        : combineStatus(
            evidence.map((e) => e.status),
            'not-applicable',
          );
    controls.push({
      id: control.id,
      title: control.title,
      status,
      ...(control.manual === undefined ? {} : { manual: control.manual }),
      evidence,
    });
  }

  // The bundle: every entry of the period and every entry the evidence rests on.
  const inBundle = new Set(referenced);
  for (const e of entries) {
    const at = (e.value as { at?: unknown } | null)?.at;
    const t = typeof at === 'string' ? Date.parse(at) : NaN;
    if (
      !Number.isNaN(t) &&
      (period.from === undefined || t >= period.from.getTime()) &&
      (period.to === undefined || t < period.to.getTime())
    )
      inBundle.add(e.index);
  }
  const ledgerBundle: EvidenceBundle = {
    format: BUNDLE_FORMAT,
    origin: ledger.origin,
    verifierKey: ledger.verifier.toString(),
    checkpoint,
    entries: [...inBundle]
      .sort((a, b) => a - b)
      .map((index) => ({
        index,
        entry: bytesOf.get(index)!,
        proof: ledger.inclusionProof(index, cp.size).map((h) => h.toString('base64')),
      })),
    exportedAt: (options.now ?? new Date()).toISOString(),
  };

  const summary: Record<ControlStatus, number> = { pass: 0, fail: 0, manual: 0, 'not-applicable': 0 };
  for (const c of controls) summary[c.status]++;
  const report: ComplianceReport = {
    format: REPORT_FORMAT,
    framework: {
      id: framework.framework,
      title: framework.title,
      standard: framework.standard,
      version: framework.version,
    },
    generatedAt: (options.now ?? new Date()).toISOString(),
    host: hostOf(entries) ?? hostname(),
    ...(options.target === undefined || Object.keys(options.target).length === 0
      ? {}
      : { target: options.target }),
    period: {
      from: period.from?.toISOString() ?? null,
      to: period.to?.toISOString() ?? null,
    },
    ledger: {
      origin: cp.origin,
      size: cp.size,
      root: cp.root.toString('hex'),
      checkpoint,
      verifierKey: ledger.verifier.toString(),
      bundle: LEDGER_BUNDLE_FILE,
    },
    summary,
    controls,
    evidence: evidenceResults,
  };
  return { report, ledgerBundle };
}

function hostOf(entries: readonly { value: unknown }[]): string | undefined {
  for (let i = entries.length - 1; i >= 0; i--) {
    const host = (entries[i]!.value as { host?: unknown } | null)?.host;
    if (typeof host === 'string') return host;
  }
  return undefined;
}

function listSnapshots(
  store: NonNullable<BuildReportOptions['snapshots']>,
  ledger: Ledger,
): () => Promise<readonly SnapshotInfo[]> {
  return async () => {
    const manager = await SnapshotManager.open({
      dir: store.dir,
      keyFile: store.keyFile,
      ledger,
      ...(store.backend === undefined ? {} : { backend: store.backend }),
    });
    return manager.list();
  };
}

/** How far back of `--from` entries are read, for clocks that stepped back a little between entries. */
const CLOCK_SLACK_MS = 10 * 60_000;

const timeOf = (value: unknown): number => {
  const at = (value as { at?: unknown } | null)?.at;
  const t = typeof at === 'string' ? Date.parse(at) : NaN;
  return Number.isNaN(t) ? -Infinity : t;
};

/** The index of the first entry whose `at` is at or after `t` (entries are in time order). */
async function firstEntryAtOrAfter(ledger: Ledger, size: number, t: number): Promise<number> {
  let lo = 0;
  let hi = size;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (timeOf((await ledger.get(mid)).value) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
