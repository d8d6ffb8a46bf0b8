import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import { Ledger, NoteSigner, formatNote, readSecretFile, type EvidenceBundle } from '@opdbus/ledger';
import { renderHtml } from './html.js';
import { LEDGER_BUNDLE_FILE, buildReport, type BuildReportOptions, type ComplianceReport } from './report.js';

/** The first line of a manifest's note text. */
export const MANIFEST_FORMAT = 'opdbus-compliance-manifest/v1';

/** The files of an evidence bundle. */
export const bundleFiles = {
  report: 'report.json',
  html: 'report.html',
  ledgerBundle: LEDGER_BUNDLE_FILE,
  checkpoint: 'checkpoint.txt',
  verifier: 'verifier.pub',
  /** The signed manifest: every other file's SHA-256 and size, signed with the ledger's key (C2SP signed note). */
  manifest: 'MANIFEST',
} as const;

/** One line of a manifest. */
export interface ManifestFile {
  name: string;
  sha256: string;
  bytes: number;
}

/** The note text of a manifest. */
export function manifestText(origin: string, framework: string, files: readonly ManifestFile[]): string {
  return [
    MANIFEST_FORMAT,
    origin,
    `framework ${framework}`,
    ...files.map((f) => `sha256 ${f.sha256} ${f.bytes} ${f.name}`),
    '',
  ].join('\n');
}

/** Parse a manifest's (already verified) note text. Returns undefined when it is not one. */
export function parseManifestText(
  text: string,
): { origin: string; framework: string; files: ManifestFile[] } | undefined {
  const lines = text.replace(/\n$/, '').split('\n');
  const [format, origin, framework, ...rest] = lines;
  if (format !== MANIFEST_FORMAT || origin === undefined || !framework?.startsWith('framework '))
    return undefined;
  const files: ManifestFile[] = [];
  for (const line of rest) {
    const m = /^sha256 ([0-9a-f]{64}) (\d+) ([A-Za-z0-9._-]+)$/.exec(line);
    if (m === null) return undefined;
    files.push({ sha256: m[1]!, bytes: Number(m[2]), name: m[3]! });
  }
  return { origin, framework: framework.slice('framework '.length), files };
}

/** SHA-256 hex of bytes. */
export const sha256Hex = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

/** Options of {@link writeEvidenceBundle}. */
export interface WriteBundleOptions {
  report: ComplianceReport;
  ledgerBundle: EvidenceBundle;
  /** The ledger's signing key: the manifest is signed with the key that signs the checkpoints. */
  signer: NoteSigner;
}

/**
 * Write an evidence bundle into `dir` (new, or empty): `report.json`, `report.html`,
 * `ledger-bundle.json`, `checkpoint.txt`, `verifier.pub` and `MANIFEST` (each file's SHA-256,
 * signed with the ledger's Ed25519 key as a C2SP signed note). The files are written into a
 * temporary directory beside `dir` and renamed into place, so a reader never sees half a bundle.
 * Returns the manifest's file list.
 */
export async function writeEvidenceBundle(dir: string, options: WriteBundleOptions): Promise<ManifestFile[]> {
  const { report, ledgerBundle, signer } = options;
  if (signer.verifier.toString() !== report.ledger.verifierKey)
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_INPUT',
      `The manifest would be signed with key ${signer.name}, which is not the ledger's key (${report.ledger.verifierKey}); pass the ledger's signing key.`,
    );
  const target = resolve(dir);
  let existing: string[] | undefined;
  try {
    const info = await lstat(target);
    if (!info.isDirectory() || info.isSymbolicLink())
      throw new OpdbusError(
        'OPDBUS_ERR_COMPLIANCE_INPUT',
        `${target} exists and is not a directory; name a new or empty directory for the bundle.`,
        { data: { dir: target } },
      );
    existing = await readdir(target);
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing !== undefined && existing.length > 0)
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_INPUT',
      `The output directory ${target} is not empty; name a new or empty directory for the bundle.`,
      { data: { dir: target } },
    );

  const contents: [string, string][] = [
    [bundleFiles.report, `${JSON.stringify(report, null, 2)}\n`],
    [bundleFiles.html, renderHtml(report)],
    [bundleFiles.ledgerBundle, `${JSON.stringify(ledgerBundle, null, 2)}\n`],
    [bundleFiles.checkpoint, report.ledger.checkpoint],
    [bundleFiles.verifier, `${report.ledger.verifierKey}\n`],
  ];
  const files = contents.map(([name, text]) => ({
    name,
    sha256: sha256Hex(text),
    bytes: Buffer.byteLength(text),
  }));
  const text = manifestText(
    report.ledger.origin,
    `${report.framework.id} ${report.framework.version}`,
    files,
  );
  const manifest = formatNote({ text, signatures: [signer.sign(text)] });

  await mkdir(dirname(target), { recursive: true });
  const tmp = join(
    dirname(target),
    `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  await mkdir(tmp, { mode: 0o755 });
  try {
    for (const [name, body] of [...contents, [bundleFiles.manifest, manifest] as [string, string]])
      await writeFile(join(tmp, name), body, { mode: 0o644, flag: 'wx' });
    if (existing !== undefined) await rmdir(target);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new OpdbusError(
      'OPDBUS_ERR_OUTPUT_WRITE',
      `Cannot write the evidence bundle to ${target}: ${(err as Error).message}.`,
      { data: { dir: target }, cause: err },
    );
  }
  return files;
}

/** Options of {@link createEvidenceBundle}. */
export interface CreateEvidenceBundleOptions extends Omit<BuildReportOptions, 'ledger'> {
  /** The ledger directory (read without taking the writer's lock). */
  ledgerDir: string;
  /** The ledger's signing key file (mode 0600), which signs the manifest. */
  keyFile: string;
  /** The bundle directory to create (new or empty). */
  out: string;
}

/**
 * Evaluate a framework and write its evidence bundle: {@link buildReport} over the ledger in
 * `ledgerDir` (opened read-only, up to its last signed checkpoint), then
 * {@link writeEvidenceBundle} with the manifest signed by the ledger's key from `keyFile`.
 */
export async function createEvidenceBundle(
  options: CreateEvidenceBundleOptions,
): Promise<{ report: ComplianceReport; files: ManifestFile[]; dir: string }> {
  const { ledgerDir, keyFile, out, ...rest } = options;
  let ledger: Ledger;
  try {
    await lstat(join(ledgerDir, 'log'));
    ledger = await Ledger.open({ dir: ledgerDir, readOnly: true });
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_NOT_FOUND',
      `There is no ledger in ${ledgerDir}: a report needs the state directory of a host that has applied at least once.`,
      { data: { dir: ledgerDir }, cause: err },
    );
  }
  try {
    let signer: NoteSigner;
    try {
      signer = NoteSigner.parse((await readSecretFile(keyFile)).toString('utf8'));
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      throw new OpdbusError(
        'OPDBUS_ERR_COMPLIANCE_NOT_FOUND',
        `Cannot read the ledger's signing key ${keyFile}: ${(err as Error).message}; run as the user that applies (root).`,
        { data: { file: keyFile }, cause: err },
      );
    }
    const { report, ledgerBundle } = await buildReport({ ...rest, ledger });
    const files = await writeEvidenceBundle(out, { report, ledgerBundle, signer });
    return { report, files, dir: resolve(out) };
  } finally {
    await ledger.close();
  }
}
