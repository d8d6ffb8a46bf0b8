import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildReport,
  createEvidenceBundle,
  engineObserver,
  frameworkIds,
  loadFramework,
  verifyEvidenceBundle,
  type ComplianceReport,
  type ControlStatus,
} from '@opdbus/compliance';
import { OpdbusError } from '@opdbus/core';
import { Ledger } from '@opdbus/ledger';
import { exitCodes } from '../exitCodes.js';
import { createEngine, ledgerPaths, targetOf, type GlobalOptions, type Output } from '../runtime.js';

const json = (value: unknown): string => JSON.stringify(value, null, 2);

function date(text: string | undefined, what: string): Date | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_INPUT',
      `${what} "${text.slice(0, 100)}" is not a date; use ISO 8601, e.g. 2026-12-01 or 2026-12-01T00:00:00Z.`,
    );
  return new Date(t);
}

function period(options: { from?: string; to?: string }): { from?: Date; to?: Date } {
  const from = date(options.from, '--from');
  const to = date(options.to, '--to');
  if (from !== undefined && to !== undefined && to.getTime() <= from.getTime())
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_INPUT',
      `--to (${options.to}) must be after --from (${options.from}).`,
    );
  return { ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) };
}

function keyFiles(global: GlobalOptions): { name: string; file: string }[] {
  const paths = ledgerPaths(global.stateDir);
  return [
    { name: 'ledger signing key', file: paths.ledgerKey },
    { name: 'snapshot encryption key', file: paths.snapshotKey },
  ];
}

function counts(summary: Record<ControlStatus, number>): string {
  return `${summary.pass} pass, ${summary.fail} fail, ${summary.manual} manual, ${summary['not-applicable']} not applicable`;
}

/** `opdbus compliance report --framework NAME --out DIR`. */
export async function report(
  global: GlobalOptions,
  options: { framework: string; out: string; from?: string; to?: string },
  output: Output,
): Promise<number> {
  const framework = await loadFramework(options.framework);
  const paths = ledgerPaths(global.stateDir);
  const engine = await createEngine(global);
  const {
    report: result,
    files,
    dir,
  } = await createEvidenceBundle({
    framework,
    ledgerDir: paths.ledgerDir,
    keyFile: paths.ledgerKey,
    out: options.out,
    period: period(options),
    host: engineObserver(engine),
    keyFiles: keyFiles(global),
    snapshots: { dir: paths.snapshotsDir, keyFile: paths.snapshotKey },
    target: { ...targetOf(global) },
  });
  if (global.json)
    output.out(json({ ok: true, dir, framework: result.framework, summary: result.summary, files }));
  else {
    output.out(
      `Wrote ${result.framework.title} evidence for ${result.host} to ${dir}: ${counts(result.summary)} (${result.controls.length} controls; ledger checkpoint at ${result.ledger.size} entries).`,
    );
    output.out(
      `Verify it anywhere with: opdbus compliance verify ${dir} --key-file ${join(paths.ledgerDir, 'verifier.pub')}`,
    );
  }
  return exitCodes.OK.code;
}

/** `opdbus compliance verify DIR [--key-file F | --key K]`: offline. */
export async function verify(
  global: GlobalOptions,
  dir: string,
  options: { keyFile?: string; key?: string },
  output: Output,
): Promise<number> {
  let key = options.key;
  if (key === undefined && options.keyFile !== undefined) {
    try {
      key = (await readFile(options.keyFile, 'utf8')).trim();
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_COMPLIANCE_INPUT',
        `Cannot read the verifier key file ${options.keyFile}: ${(err as Error).message}.`,
        { data: { file: options.keyFile }, cause: err },
      );
    }
  }
  const result = await verifyEvidenceBundle(dir, key === undefined ? {} : { verifierKey: key });
  if (!result.ok) {
    const [first, ...rest] = result.findings;
    const line = (f: typeof first): string =>
      f!.message.startsWith(f!.file) && f!.item === undefined
        ? f!.message
        : `${f!.file}${f!.item === undefined ? '' : ` (${f!.item})`}: ${f!.message}`;
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_TAMPERED',
      `The evidence bundle ${result.dir} does not verify: ${line(first)}.${rest
        .slice(0, 19)
        .map((f) => `\n  also ${line(f)}`)
        .join('')}${rest.length > 19 ? `\n  … and ${rest.length - 19} more` : ''}`,
      {
        data: {
          dir: result.dir,
          file: first!.file,
          ...(first!.item === undefined ? {} : { item: first!.item }),
          findings: result.findings,
        },
      },
    );
  }
  if (global.json) output.out(json(result));
  else {
    output.out(
      `Evidence bundle verified: ${result.files.length} files match the manifest signed by ${result.key?.split('+')[0] ?? '?'}; ${result.proofs} inclusion proofs lead to the signed checkpoint at ${result.checkpoint?.size ?? '?'} entries (${result.framework ?? '?'}${result.summary === undefined ? '' : `; ${counts(result.summary)}`}).`,
    );
    if (!result.pinnedKey)
      output.out(
        'Note: verified with the key in the bundle; pass --key-file with the key you trust to pin it.',
      );
  }
  return exitCodes.OK.code;
}

/** `opdbus compliance check`: the controls evaluated now, for CI. */
export async function check(
  global: GlobalOptions,
  options: { framework?: string[]; from?: string; to?: string; all?: boolean },
  output: Output,
): Promise<number> {
  const names = options.framework ?? [...frameworkIds];
  const frameworks = await Promise.all(names.map((name) => loadFramework(name)));
  const paths = ledgerPaths(global.stateDir);
  if (!existsSync(join(paths.ledgerDir, 'log')))
    throw new OpdbusError(
      'OPDBUS_ERR_COMPLIANCE_NOT_FOUND',
      `There is no ledger in ${paths.ledgerDir} yet; it is created by the first apply.`,
      { data: { dir: paths.ledgerDir } },
    );
  const engine = await createEngine(global);
  const host = engineObserver(engine);
  const ledger = await Ledger.open({ dir: paths.ledgerDir, readOnly: true });
  const reports: ComplianceReport[] = [];
  try {
    for (const framework of frameworks)
      reports.push(
        (
          await buildReport({
            framework,
            ledger,
            period: period(options),
            host,
            keyFiles: keyFiles(global),
            snapshots: { dir: paths.snapshotsDir, keyFile: paths.snapshotKey },
            target: { ...targetOf(global) },
          })
        ).report,
      );
  } finally {
    await ledger.close();
  }
  const failed = reports.some((r) => r.summary.fail > 0);
  if (global.json)
    output.out(
      json({
        ok: !failed,
        frameworks: reports.map((r) => ({
          framework: r.framework,
          summary: r.summary,
          controls: r.controls.map((c) => ({
            id: c.id,
            title: c.title,
            status: c.status,
            evidence: c.evidence.map((e) => ({
              query: e.query,
              status: e.status,
              summary: r.evidence[e.key]?.summary ?? '',
              failing: (r.evidence[e.key]?.items ?? [])
                .filter((i) => i.status === 'fail')
                .map((i) => i.description),
            })),
            ...(c.manual === undefined ? {} : { manual: c.manual }),
          })),
        })),
      }),
    );
  else
    for (const r of reports) {
      output.out(`${r.framework.title} (mapping ${r.framework.version}): ${counts(r.summary)}`);
      for (const c of r.controls) {
        if (!options.all && (c.status === 'pass' || c.status === 'not-applicable')) continue;
        output.out(`  ${c.status.toUpperCase().padEnd(14)} ${c.id}  ${c.title}`);
        const results = c.evidence.flatMap((ref) => {
          const e = r.evidence[ref.key];
          return e === undefined ? [] : [e];
        });
        for (const e of results)
          for (const item of e.items.filter(
            (i) => i.status === 'fail' || (options.all === true && i.status !== 'pass'),
          ))
            output.out(`      ${e.query}: ${item.description}`);
        if (c.status === 'manual' || options.all)
          for (const e of results.filter((x) => x.status === 'manual'))
            output.out(`      ${e.query}: ${e.summary}`);
      }
    }
  return failed ? exitCodes.COMPLIANCE_FAILED.code : exitCodes.OK.code;
}
