// Compliance evidence end to end: real transactions (sysctl and nftables) in a network namespace
// recorded by the real engine into a real ledger with snapshots; reports for every shipped
// framework are written as bundles, verify offline with the pinned key, and any changed byte,
// added or removed file, wrong key or forged item is caught and named.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine, PluginRegistry, parseStateDocument, type ApplyResult } from '@opdbus/core';
import { LedgerAuditSink, NoteSigner, formatNote, readSecretFile } from '@opdbus/ledger';
import { openNetns } from '@opdbus/netlink';
import { firewallPlugin } from '@opdbus/plugins-firewall';
import { sysctlPlugin } from '@opdbus/plugins-sysctl';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, itIf, requirement } from '@opdbus/sandbox/testing';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  bundleFiles,
  createEvidenceBundle,
  engineObserver,
  frameworkIds,
  loadFramework,
  manifestText,
  parseManifestText,
  sha256Hex,
  verifyEvidenceBundle,
  type ComplianceReport,
  type ControlResult,
  type EvidenceResult,
} from '../src/index.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root (network namespaces)');
const CHROMIUM = process.env.OPDBUS_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = requirement(
  'chromium',
  existsSync(CHROMIUM),
  `no Chromium at ${CHROMIUM} (apt install chromium, or set OPDBUS_CHROMIUM)`,
);

describeIf(asRoot, 'compliance evidence bundles from real transactions in a network namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  let engine: Engine;
  const ledgerDir = () => join(dir, 'ledger');
  const keyFile = () => join(dir, 'keys', 'ledger.key');
  const results: ApplyResult[] = [];
  let verifierKey: string;

  const doc = (plugins: Record<string, unknown>) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins }), {
      source: 'test.json',
      registry: engine.registry,
    });

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-compliance-'));
    const registry = new PluginRegistry([sysctlPlugin, firewallPlugin]);
    engine = new Engine({
      registry,
      stateDir: join(dir, 'state'),
      target: { netns: netns.name },
      openNetns,
      audit: new LedgerAuditSink({
        ledger: { dir: ledgerDir(), keyFile: keyFile(), origin: 'compliance-test/opdbus' },
        snapshots: {
          dir: join(dir, 'snapshots'),
          keyFile: join(dir, 'keys', 'snapshot.key'),
          backend: 'directory',
          capture: () => engine.query(undefined, { showSecrets: true }),
        },
      }),
    });
    results.push(await engine.apply(doc({ sysctl: { 'net.ipv4.ip_forward': '1' } })));
    results.push(
      await engine.apply(
        doc({
          sysctl: { 'net.ipv4.ip_forward': '0', 'net.ipv4.tcp_syncookies': '1' },
          firewall: {
            tables: [
              {
                family: 'inet',
                name: 'filter',
                chains: [{ name: 'input', hook: 'input', policy: 'drop', rules: [] }],
              },
            ],
          },
        }),
      ),
    );
    results.push(await engine.apply(doc({ sysctl: { 'net.ipv4.ip_default_ttl': '77' } })));
    await engine.rollback(results[2]!.txId);
    verifierKey = NoteSigner.parse((await readSecretFile(keyFile())).toString('utf8')).verifier.toString();
  });
  afterAll(async () => {
    await netns?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const report = async (framework: string, out: string) =>
    createEvidenceBundle({
      framework: await loadFramework(framework),
      ledgerDir: ledgerDir(),
      keyFile: keyFile(),
      out,
      host: engineObserver(engine),
      keyFiles: [
        { name: 'ledger signing key', file: keyFile() },
        { name: 'snapshot encryption key', file: join(dir, 'keys', 'snapshot.key') },
      ],
      snapshots: {
        dir: join(dir, 'snapshots'),
        keyFile: join(dir, 'keys', 'snapshot.key'),
        backend: 'directory',
      },
      target: { netns: netns.name },
    });

  const control = (r: ComplianceReport, id: string): ControlResult => {
    const c = r.controls.find((x) => x.id === id);
    if (c === undefined) throw new Error(`no control ${id}`);
    return c;
  };
  /** The result of a control's evidence query (its first one when no query is named). */
  const evidenceOf = (r: ComplianceReport, id: string, query?: string): EvidenceResult => {
    const ref = control(r, id).evidence.find((e) => query === undefined || e.query === query);
    const result = ref === undefined ? undefined : r.evidence[ref.key];
    if (result === undefined) throw new Error(`no evidence ${query ?? ''} in control ${id}`);
    return result;
  };

  it('writes a report for every framework that verifies offline with the pinned key', async () => {
    for (const framework of frameworkIds) {
      const out = join(dir, `ev-${framework}`);
      const { report: r, files } = await report(framework, out);
      expect((await readdir(out)).sort()).toEqual(Object.values(bundleFiles).sort());
      expect(files.map((f) => f.name)).not.toContain(bundleFiles.manifest);
      expect(r.framework.id).toBe(framework);
      const verified = await verifyEvidenceBundle(out, { verifierKey });
      expect(verified.findings).toEqual([]);
      expect(verified).toMatchObject({ ok: true, pinnedKey: true, framework: `${framework} 1.0` });
      expect(verified.proofs).toBeGreaterThan(0);
      // Every control of the mapping is in the report, with a status.
      const mapping = await loadFramework(framework);
      expect(r.controls.map((c) => c.id)).toEqual(mapping.controls.map((c) => c.id));
      const total = Object.values(r.summary).reduce((a, b) => a + b, 0);
      expect(total).toBe(mapping.controls.length);
    }
  });

  it('evaluates the evidence from what happened: changes, their records, outcomes, snapshots, host state', async () => {
    const { report: r } = await report('soc2', join(dir, 'soc2-eval'));
    const cc81 = control(r, 'CC8.1');
    expect(cc81.status).toBe('pass');
    const attribution = evidenceOf(r, 'CC8.1', 'ledger.attribution');
    // Three applies and one rollback, each attributed.
    expect(attribution.items.map((i) => i.description.split(' ')[0])).toEqual([
      'apply',
      'apply',
      'apply',
      'rollback',
    ]);
    expect(attribution.items.every((i) => i.status === 'pass')).toBe(true);
    const outcomes = evidenceOf(r, 'CC8.1', 'ledger.outcomes');
    expect(outcomes.items.map((i) => i.status)).toEqual(['pass', 'pass', 'pass']);

    // The firewall's input chain drops by default: CC6.6 passes, resting on the apply that made it.
    const cc66 = control(r, 'CC6.6');
    expect(cc66.status).toBe('pass');
    const chain = evidenceOf(r, 'CC6.6').items.find((i) => i.id === 'chain:inet/filter/input')!;
    expect(chain).toMatchObject({ status: 'pass', observed: 'drop' });
    expect(chain.entries.map((e) => e.index)).toHaveLength(1);

    // Kernel values read in the namespace: ip_forward 0 passes and rests on the apply that set it
    // last; the namespace's default redirects settings fail the baseline.
    const sysctl = evidenceOf(r, 'CC6.8');
    const forward = sysctl.items.find((i) => i.id === 'sysctl:net.ipv4.ip_forward')!;
    expect(forward).toMatchObject({ status: 'pass', observed: '0' });
    const ledgerEntries = JSON.parse(
      await readFile(join(dir, 'soc2-eval', bundleFiles.ledgerBundle), 'utf8'),
    ) as {
      entries: { index: number; entry: string }[];
    };
    const setter = ledgerEntries.entries.find((e) => e.index === forward.entries[0]!.index)!;
    expect(JSON.parse(setter.entry)).toMatchObject({ kind: 'apply', txId: results[1]!.txId });
    expect(sysctl.items.find((i) => i.id === 'sysctl:net.ipv4.conf.all.send_redirects')).toMatchObject({
      status: 'fail',
      observed: '1',
    });
    expect(control(r, 'CC6.8').status).toBe('fail');

    // Every committed apply left an encrypted snapshot; the keys are mode 0600.
    const a12 = control(r, 'A1.2');
    expect(a12.status).toBe('pass');
    expect(evidenceOf(r, 'A1.2').items).toHaveLength(3);
    expect(evidenceOf(r, 'A1.2').items[0]!.description).toContain('on disk, matching the ledger');
    expect(evidenceOf(r, 'CC6.1').items.map((i) => i.status)).toEqual(['pass', 'pass']);
    // No daemon recorded drift: that part is manual, and said so.
    expect(control(r, 'CC7.2').status).toBe('manual');
    expect(control(r, 'CC7.3')).toMatchObject({ status: 'manual', evidence: [] });
    // The HTML carries every control.
    const html = await readFile(join(dir, 'soc2-eval', bundleFiles.html), 'utf8');
    for (const c of r.controls) expect(html).toContain(`id="control-${c.id}"`);
    expect(html).not.toMatch(/<script|<link|src=/);
  });

  it('a period selects the entries: before the first transaction nothing happened', async () => {
    const pci = await loadFramework('pci-dss');
    const { report: r } = await createEvidenceBundle({
      framework: pci,
      ledgerDir: ledgerDir(),
      keyFile: keyFile(),
      out: join(dir, 'pci-empty'),
      period: { to: new Date('2000-01-01T00:00:00Z') },
    });
    expect(control(r, '10.2.1')).toMatchObject({ status: 'not-applicable' });
    // Without a host, the host checks are manual, not passed.
    expect(control(r, '1.3.1').status).toBe('manual');
    expect((await verifyEvidenceBundle(join(dir, 'pci-empty'), { verifierKey })).ok).toBe(true);
  });

  it('one changed byte in any file fails verification and names the file', async () => {
    const out = join(dir, 'ev-tamper');
    await report('hipaa', out);
    for (const name of Object.values(bundleFiles)) {
      const file = join(out, name);
      const original = await readFile(file);
      const changed = Buffer.from(original);
      const at = Math.floor(changed.length / 2);
      changed[at] = changed[at]! ^ 1;
      await writeFile(file, changed);
      const result = await verifyEvidenceBundle(out, { verifierKey });
      expect(result.ok, name).toBe(false);
      expect(result.findings[0]!.file, JSON.stringify(result.findings)).toBe(name);
      await writeFile(file, original);
      expect((await verifyEvidenceBundle(out, { verifierKey })).ok).toBe(true);
    }
  });

  it('an added or removed file, or another key, fails verification', async () => {
    const out = join(dir, 'ev-files');
    await report('soc2', out);
    await writeFile(join(out, 'notes.txt'), 'added later\n');
    expect((await verifyEvidenceBundle(out, { verifierKey })).findings).toEqual([
      { file: 'notes.txt', message: expect.stringContaining('not listed in the signed manifest') },
    ]);
    await unlink(join(out, 'notes.txt'));
    const html = await readFile(join(out, bundleFiles.html));
    await unlink(join(out, bundleFiles.html));
    expect((await verifyEvidenceBundle(out, { verifierKey })).findings[0]).toMatchObject({
      file: bundleFiles.html,
      message: expect.stringContaining('missing'),
    });
    await writeFile(join(out, bundleFiles.html), html);
    const other = NoteSigner.generate('compliance-test/opdbus').verifier.toString();
    expect((await verifyEvidenceBundle(out, { verifierKey: other })).findings[0]).toMatchObject({
      file: bundleFiles.manifest,
    });
    // A bundle re-signed by another key verifies only unpinned (with the key it carries).
    await appendFile(join(out, bundleFiles.html), ' ');
    const forger = NoteSigner.generate('compliance-test/opdbus');
    const manifest = parseManifestText(
      (await readFile(join(out, bundleFiles.manifest), 'utf8')).split('\n\n')[0]! + '\n',
    )!;
    const files = await Promise.all(
      manifest.files.map(async (f) => {
        const data = await readFile(join(out, f.name));
        return { name: f.name, sha256: sha256Hex(data), bytes: data.length };
      }),
    );
    const text = manifestText(manifest.origin, manifest.framework, files);
    await writeFile(join(out, bundleFiles.manifest), formatNote({ text, signatures: [forger.sign(text)] }));
    expect((await verifyEvidenceBundle(out, { verifierKey })).findings[0]!.file).toBe(bundleFiles.manifest);
  });

  it('an evidence item citing another entry is named, even in a bundle signed with the right key', async () => {
    const out = join(dir, 'ev-item');
    const { report: r } = await report('soc2', out);
    const item = evidenceOf(r, 'CC8.1', 'ledger.attribution').items[1]!;
    item.entries[0]!.leafHash = randomBytes(32).toString('hex');
    const body = `${JSON.stringify(r, null, 2)}\n`;
    await writeFile(join(out, bundleFiles.report), body);
    // Re-sign the manifest with the ledger's own key: only the entry check can catch this.
    const signer = NoteSigner.parse((await readSecretFile(keyFile())).toString('utf8'));
    const old = parseManifestText(
      (await readFile(join(out, bundleFiles.manifest), 'utf8')).split('\n\n')[0]! + '\n',
    )!;
    const files = old.files.map((f) =>
      f.name === bundleFiles.report ? { ...f, sha256: sha256Hex(body), bytes: Buffer.byteLength(body) } : f,
    );
    const text = manifestText(old.origin, old.framework, files);
    await writeFile(join(out, bundleFiles.manifest), formatNote({ text, signatures: [signer.sign(text)] }));
    const result = await verifyEvidenceBundle(out, { verifierKey });
    expect(result.ok).toBe(false);
    expect(result.findings).toContainEqual({
      file: bundleFiles.report,
      item: `CC7.2, CC8.1 / ledger.attribution / ${item.id} / entry ${item.entries[0]!.index}`,
      message: expect.stringContaining('is not the hash of that entry'),
    });
  });

  it('a snapshot gone from disk without a pruning record fails the backup control', async () => {
    const snapshots = join(dir, 'snapshots');
    const [first] = (await readdir(snapshots)).sort();
    await rename(join(snapshots, first!), join(dir, 'moved-away'));
    try {
      const { report: r } = await report('soc2', join(dir, 'ev-missing-snapshot'));
      const a12 = control(r, 'A1.2');
      expect(a12.status).toBe('fail');
      expect(evidenceOf(r, 'A1.2').items.find((i) => i.status === 'fail')!.description).toContain(
        `snapshot ${first!}`,
      );
    } finally {
      await rename(join(dir, 'moved-away'), join(snapshots, first!));
    }
  });

  it('a report that hides a recorded change is caught: the queries run again over the bundled entries', async () => {
    const out = join(dir, 'ev-hidden');
    const { report: r } = await report('pci-dss', out);
    const attribution = r.evidence['ledger.attribution']!;
    const hidden = attribution.items.pop()!;
    const body = `${JSON.stringify(r, null, 2)}\n`;
    await writeFile(join(out, bundleFiles.report), body);
    const signer = NoteSigner.parse((await readSecretFile(keyFile())).toString('utf8'));
    const old = parseManifestText(
      (await readFile(join(out, bundleFiles.manifest), 'utf8')).split('\n\n')[0]! + '\n',
    )!;
    const files = old.files.map((f) =>
      f.name === bundleFiles.report ? { ...f, sha256: sha256Hex(body), bytes: Buffer.byteLength(body) } : f,
    );
    const text = manifestText(old.origin, old.framework, files);
    await writeFile(join(out, bundleFiles.manifest), formatNote({ text, signatures: [signer.sign(text)] }));
    const result = await verifyEvidenceBundle(out, { verifierKey });
    expect(result.findings).toEqual([
      {
        file: bundleFiles.report,
        item: 'ledger.attribution',
        message: expect.stringContaining(`${hidden.id}=pass`),
      },
    ]);
  });

  it('refuses a non-empty output directory and a missing ledger, naming them', async () => {
    const out = join(dir, 'ev-full');
    await report('soc2', out);
    await expect(report('soc2', out)).rejects.toMatchObject({ code: 'OPDBUS_ERR_COMPLIANCE_INPUT' });
    await expect(
      createEvidenceBundle({
        framework: await loadFramework('soc2'),
        ledgerDir: join(dir, 'nowhere'),
        keyFile: keyFile(),
        out: join(dir, 'ev-none'),
      }),
    ).rejects.toMatchObject({ code: 'OPDBUS_ERR_COMPLIANCE_NOT_FOUND' });
    await expect(verifyEvidenceBundle(join(dir, 'no-bundle'))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_COMPLIANCE_NOT_FOUND',
    });
  });

  itIf(
    hasChromium,
    'the HTML report opens in Chromium with nothing fetched from outside, and prints',
    async () => {
      const out = join(dir, 'ev-html');
      const { report: r } = await report('soc2', out);
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
        const fetched: string[] = [];
        page.on('request', (request) => fetched.push(request.url()));
        const url = pathToFileURL(join(out, bundleFiles.html)).href;
        await page.goto(url);
        expect(await page.title()).toContain(r.framework.title);
        expect(await page.locator('section.control').count()).toBe(r.controls.length);
        expect(await page.locator('.control .badge.fail').count()).toBeGreaterThan(0);
        // Self-contained: the page itself is the only thing loaded.
        expect(fetched).toEqual([url]);
        const pdf = await page.pdf({ format: 'A4' });
        expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
        // The screenshot in docs/compliance.md (written there when OPDBUS_SCREENSHOT_DIR is set).
        const shots = process.env.OPDBUS_SCREENSHOT_DIR ?? join(dir, 'screenshots');
        await mkdir(shots, { recursive: true });
        const png = await page.screenshot({ path: resolve(shots, 'compliance-report.png') });
        expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
