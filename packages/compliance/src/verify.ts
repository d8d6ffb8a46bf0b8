import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { OpdbusError, isOpdbusError } from '@opdbus/core';
import {
  NoteVerifier,
  leafHash,
  openCheckpoint,
  verifyBundle,
  verifyNote,
  type Checkpoint,
  type EvidenceBundle,
} from '@opdbus/ledger';
import { bundleFiles, parseManifestText, sha256Hex, type ManifestFile } from './bundle.js';
import {
  runEvidenceQuery,
  type ControlStatus,
  type EvidenceResult,
  type EvidenceSources,
} from './evidence.js';
import type { EvidenceQueryId } from './framework.js';
import { REPORT_FORMAT, type ComplianceReport } from './report.js';

/** Something in a bundle that does not verify: the file, and the item within it when there is one. */
export interface BundleFinding {
  file: string;
  /** `CONTROL / QUERY / ITEM / entry N` in report.json, `entry N` in ledger-bundle.json. */
  item?: string;
  message: string;
}

/** What {@link verifyEvidenceBundle} found. */
export interface EvidenceVerification {
  /** True when every file, signature and proof verifies. */
  ok: boolean;
  dir: string;
  /** Whether the key was given by the caller (pinned) rather than read from the bundle's verifier.pub. */
  pinnedKey: boolean;
  /** The verifier key used. */
  key?: string;
  framework?: string;
  origin?: string;
  checkpoint?: { size: number; root: string };
  /** The files the signed manifest lists (each verified unless a finding names it). */
  files: ManifestFile[];
  /** Evidence item entry references checked: each cites an entry whose inclusion proof verified. */
  proofs: number;
  summary?: Record<ControlStatus, number>;
  findings: BundleFinding[];
}

/**
 * Verify an evidence bundle offline, without the state directory or the network: the manifest's
 * Ed25519 signature with the pinned verifier key (or, unpinned, the bundle's own `verifier.pub`),
 * every file's SHA-256 against the manifest (no file missing, none added), the checkpoint's
 * signature, the ledger bundle's entries and inclusion proofs, and every evidence item's entry
 * references and proofs in report.json. Never throws for a bundle that does not verify: it
 * returns `ok: false` with findings naming the file and item. Throws
 * `OPDBUS_ERR_COMPLIANCE_NOT_FOUND` when `dir` is not a directory and `OPDBUS_ERR_COMPLIANCE_INPUT`
 * when the pinned key is not a verifier key.
 */
export async function verifyEvidenceBundle(
  dir: string,
  options: { verifierKey?: string | NoteVerifier } = {},
): Promise<EvidenceVerification> {
  const root = resolve(dir);
  let names: string[];
  try {
    if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
    names = await readdir(root);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_NOT_FOUND',
      `There is no evidence bundle at ${root}: ${(err as Error).message}.`,
      { data: { dir: root }, cause: err },
    );
  }
  const out: EvidenceVerification = {
    ok: false,
    dir: root,
    pinnedKey: options.verifierKey !== undefined,
    files: [],
    proofs: 0,
    findings: [],
  };
  const find = (file: string, message: string, item?: string): void => {
    out.findings.push({ file, ...(item === undefined ? {} : { item }), message });
  };
  const read = async (name: string): Promise<Buffer | undefined> => {
    try {
      return await readFile(join(root, name));
    } catch (err) {
      find(
        name,
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${name} is missing from the bundle`
          : `${name} cannot be read: ${(err as Error).message}`,
      );
      return undefined;
    }
  };

  // The key: pinned by the caller, or (weaker) the bundle's own.
  let verifier: NoteVerifier;
  if (options.verifierKey !== undefined) {
    try {
      verifier =
        options.verifierKey instanceof NoteVerifier
          ? options.verifierKey
          : NoteVerifier.parse(options.verifierKey);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_COMPLIANCE_INPUT',
        `The verifier key given is not usable: ${(err as Error).message}`,
        { cause: err },
      );
    }
  } else {
    const pub = await read(bundleFiles.verifier);
    if (pub === undefined) return finish(out);
    try {
      verifier = NoteVerifier.parse(pub.toString('utf8'));
    } catch (err) {
      find(bundleFiles.verifier, `verifier.pub is not a verifier key: ${(err as Error).message}`);
      return finish(out);
    }
  }
  out.key = verifier.toString();

  // The signed manifest.
  const manifestBytes = await read(bundleFiles.manifest);
  if (manifestBytes === undefined) return finish(out);
  let manifest: ReturnType<typeof parseManifestText>;
  try {
    const { note, verifiedBy } = verifyNote(manifestBytes.toString('utf8'), [verifier]);
    if (verifiedBy.length === 0) throw new Error(`it is not signed by ${verifier.name}`);
    manifest = parseManifestText(note.text);
    if (manifest === undefined) throw new Error('its text is not a compliance manifest');
  } catch (err) {
    find(
      bundleFiles.manifest,
      `MANIFEST does not verify with key ${verifier.name}: ${(err as Error).message.replace(/\.$/, '')}`,
    );
    return finish(out);
  }
  out.files = manifest.files;
  out.origin = manifest.origin;
  out.framework = manifest.framework;

  // Every file against the manifest; nothing missing, nothing added.
  const contents = new Map<string, Buffer>();
  for (const file of manifest.files) {
    const data = await read(file.name);
    if (data === undefined) continue;
    contents.set(file.name, data);
    const hash = sha256Hex(data);
    if (hash !== file.sha256 || data.length !== file.bytes)
      find(
        file.name,
        `${file.name} was changed: its SHA-256 is ${hash} (${data.length} bytes), the signed manifest says ${file.sha256} (${file.bytes} bytes)`,
      );
  }
  for (const name of names)
    if (name !== bundleFiles.manifest && !manifest.files.some((f) => f.name === name))
      find(name, `${name} is not listed in the signed manifest (it was added to the bundle)`);

  // The checkpoint.
  const checkpointText = contents.get(bundleFiles.checkpoint)?.toString('utf8');
  let checkpoint: Checkpoint | undefined;
  if (checkpointText !== undefined) {
    try {
      checkpoint = openCheckpoint(checkpointText, [verifier]).checkpoint;
      out.checkpoint = { size: checkpoint.size, root: checkpoint.root.toString('hex') };
    } catch (err) {
      find(bundleFiles.checkpoint, `checkpoint.txt does not verify: ${(err as Error).message}`);
    }
  }

  // The ledger entries and their proofs.
  const entries = new Map<number, string>();
  const ledgerText = contents.get(bundleFiles.ledgerBundle)?.toString('utf8');
  if (ledgerText !== undefined) {
    try {
      verifyBundle(ledgerText, { verifier });
      const bundle = JSON.parse(ledgerText) as EvidenceBundle;
      if (checkpointText !== undefined && bundle.checkpoint !== checkpointText)
        find(bundleFiles.ledgerBundle, "the ledger bundle's checkpoint is not the one in checkpoint.txt");
      for (const e of bundle.entries) entries.set(e.index, e.entry);
    } catch (err) {
      const index = isOpdbusError(err) ? err.data?.index : undefined;
      find(
        bundleFiles.ledgerBundle,
        `the ledger bundle does not verify: ${(err as Error).message}`,
        typeof index === 'number' ? `entry ${index}` : undefined,
      );
    }
  }

  // The report: its checkpoint and every item's entries and proofs.
  const reportText = contents.get(bundleFiles.report)?.toString('utf8');
  if (reportText !== undefined) {
    let report: ComplianceReport | undefined;
    try {
      report = JSON.parse(reportText) as ComplianceReport;
      if ((report.format as string) !== REPORT_FORMAT)
        throw new Error(`its format is not ${REPORT_FORMAT as string}`);
    } catch (err) {
      find(bundleFiles.report, `report.json is not a compliance report: ${(err as Error).message}`);
      report = undefined;
    }
    if (report !== undefined) {
      checkReport(report, checkpointText, checkpoint, entries, verifier, out, find);
      if (checkpoint !== undefined) await reevaluate(report, entries, verifier, find);
    }
  }
  return finish(out);
}

function checkReport(
  report: ComplianceReport,
  checkpointText: string | undefined,
  checkpoint: Checkpoint | undefined,
  entries: Map<number, string>,
  verifier: NoteVerifier,
  out: EvidenceVerification,
  find: (file: string, message: string, item?: string) => void,
): void {
  const file = bundleFiles.report;
  if (checkpointText !== undefined && report.ledger?.checkpoint !== checkpointText)
    find(file, "the report's checkpoint is not the one in checkpoint.txt", 'ledger.checkpoint');
  if (report.ledger?.verifierKey !== verifier.toString())
    find(
      file,
      `the report names verifier key ${String(report.ledger?.verifierKey)}, not ${verifier.toString()}`,
      'ledger.verifierKey',
    );
  out.summary = report.summary;
  const results = report.evidence !== null && typeof report.evidence === 'object' ? report.evidence : {};
  const citedBy = new Map<string, string[]>();
  for (const control of Array.isArray(report.controls) ? report.controls : []) {
    for (const ref of Array.isArray(control.evidence) ? control.evidence : []) {
      const result = results[ref.key];
      if (result === undefined) {
        find(
          file,
          `control ${String(control.id)} cites evidence ${String(ref.key)}, which the report does not hold`,
          `${String(control.id)} / ${String(ref.key)}`,
        );
        continue;
      }
      if (result.status !== ref.status)
        find(
          file,
          `control ${String(control.id)} says ${String(ref.key)} is ${String(ref.status)}; the evidence says ${String(result.status)}`,
          `${String(control.id)} / ${String(ref.key)}`,
        );
      citedBy.set(ref.key, [...(citedBy.get(ref.key) ?? []), String(control.id)]);
    }
  }
  if (checkpoint === undefined) return;
  for (const [key, result] of Object.entries(results)) {
    for (const item of Array.isArray(result.items) ? result.items : []) {
      for (const ref of Array.isArray(item.entries) ? item.entries : []) {
        const where = `${(citedBy.get(key) ?? ['no control']).join(', ')} / ${key} / ${String(item.id)} / entry ${String(ref.index)}`;
        const entry = entries.get(ref.index);
        if (entry === undefined) {
          find(file, `entry ${String(ref.index)} is not in ${bundleFiles.ledgerBundle}`, where);
          continue;
        }
        // The entry's inclusion proof was verified with the ledger bundle; the item must cite that entry.
        if (typeof ref.leafHash !== 'string' || leafHash(entry).toString('hex') !== ref.leafHash) {
          find(
            file,
            `the leaf hash cited for entry ${ref.index} is not the hash of that entry, whose inclusion proof leads to the checkpoint`,
            where,
          );
          continue;
        }
        out.proofs++;
      }
    }
  }
}

/** The ledger queries whose result depends only on the entries of the period (all in the bundle). */
const RECOMPUTABLE: readonly EvidenceQueryId[] = [
  'ledger.attribution',
  'ledger.change-records',
  'ledger.outcomes',
  'ledger.drift',
  'snapshots.restores',
];

/**
 * Run the ledger queries again over the entries of the ledger bundle (which holds every entry of
 * the period) and compare with what the report states: each item and its status.
 */
async function reevaluate(
  report: ComplianceReport,
  entries: Map<number, string>,
  verifier: NoteVerifier,
  find: (file: string, message: string, item?: string) => void,
): Promise<void> {
  const views = [...entries.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, text]) => ({ index, value: JSON.parse(text) as unknown }));
  const date = (v: unknown): Date | undefined => (typeof v === 'string' ? new Date(v) : undefined);
  const from = date(report.period?.from);
  const to = date(report.period?.to);
  const sources: EvidenceSources = {
    entries: views,
    period: { ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) },
    verifier,
    ref: (index) => ({ index, leafHash: leafHash(entries.get(index)!).toString('hex') }),
  };
  for (const query of RECOMPUTABLE) {
    const stated = report.evidence?.[query];
    if (stated === undefined) continue;
    const again = await runEvidenceQuery(query, sources);
    const list = (r: EvidenceResult): string =>
      `${r.status}: ${(Array.isArray(r.items) ? r.items : []).map((i) => `${String(i.id)}=${String(i.status)}`).join(' ')}`;
    if (list(again) !== list(stated))
      find(
        bundleFiles.report,
        `the entries in ${bundleFiles.ledgerBundle} give ${list(again).slice(0, 300)}; the report states ${list(stated).slice(0, 300)}`,
        query,
      );
  }
}

function finish(out: EvidenceVerification): EvidenceVerification {
  out.ok = out.findings.length === 0;
  return out;
}
