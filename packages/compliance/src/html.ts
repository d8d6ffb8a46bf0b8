import type { ControlStatus, EvidenceItem } from './evidence.js';
import type { ComplianceReport, ControlResult } from './report.js';

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => escapes[c]!);
}

const statusLabel: Record<ControlStatus, string> = {
  pass: 'Pass',
  fail: 'Fail',
  manual: 'Manual',
  'not-applicable': 'N/A',
};

const badge = (status: ControlStatus): string =>
  `<span class="badge ${status}">${statusLabel[status]}</span>`;

const STYLE = `
:root { --pass:#1a7f37; --fail:#cf222e; --manual:#9a6700; --na:#57606a; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.meta { color: #57606a; margin: 0 0 1rem; } .meta dt { font-weight: 600; float: left; clear: left; width: 9rem; } .meta dd { margin-left: 9.5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.badge { display: inline-block; min-width: 4.2rem; text-align: center; border-radius: 1rem; padding: .05rem .5rem; color: #fff; font-size: .8rem; font-weight: 600; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); } .badge.manual { background: var(--manual); } .badge.not-applicable { background: var(--na); }
.summary span { margin-right: 1rem; }
.control { page-break-inside: avoid; border: 1px solid #d0d7de; border-radius: .4rem; padding: .2rem 1rem .8rem; margin: 1rem 0; }
.evidence { margin: .6rem 0; } .why { color: #57606a; font-size: .9rem; margin: .1rem 0 .3rem; }
.manual-note { background: #fff8c5; border-left: 4px solid var(--manual); padding: .4rem .6rem; font-size: .92rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .82rem; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
@media print { body { margin: 0; max-width: none; } .control { border: none; border-top: 1px solid #d0d7de; border-radius: 0; } a { color: inherit; } }
`;

function entriesCell(item: EvidenceItem): string {
  if (item.entries.length === 0) return '—';
  return item.entries
    .map((e) => `<code title="leaf hash ${escapeHtml(e.leafHash)}">#${e.index}</code>`)
    .join(' ');
}

/** The most items of one evidence query the page lists (failures first); the JSON has them all. */
export const HTML_ITEMS_PER_EVIDENCE = 50;

const order: Record<ControlStatus, number> = { fail: 0, manual: 1, pass: 2, 'not-applicable': 3 };

function renderControl(control: ControlResult, report: ComplianceReport): string {
  const evidence = control.evidence
    .map((ref) => {
      const e = report.evidence[ref.key];
      if (e === undefined) return '';
      const shown = [...e.items]
        .sort((a, b) => order[a.status] - order[b.status])
        .slice(0, HTML_ITEMS_PER_EVIDENCE);
      const more = e.items.length - shown.length;
      const rows = shown
        .map(
          (item) =>
            `<tr><td>${badge(item.status)}</td><td>${escapeHtml(item.description)}</td><td>${entriesCell(item)}</td></tr>`,
        )
        .join('\n');
      const tail =
        more > 0
          ? `<tr><td colspan="3">… and ${more} more (${e.items.filter((i) => i.status === 'pass').length} pass in all): see <code>report.json</code>, evidence <code>${escapeHtml(ref.key)}</code>.</td></tr>`
          : '';
      return `<div class="evidence">
<div>${badge(e.status)} <strong><code>${escapeHtml(e.query)}</code></strong> (${escapeHtml(e.source)}): ${escapeHtml(e.summary)}</div>
<p class="why">${escapeHtml(ref.why)}</p>
${rows === '' ? '' : `<table><thead><tr><th>Status</th><th>Evidence</th><th>Ledger entries</th></tr></thead><tbody>\n${rows}${tail}\n</tbody></table>`}
</div>`;
    })
    .join('\n');
  return `<section class="control" id="control-${escapeHtml(control.id)}">
<h3>${badge(control.status)} ${escapeHtml(control.id)} — ${escapeHtml(control.title)}</h3>
${evidence === '' ? '<p>No evidence op-dbus can produce for this control.</p>' : evidence}
${control.manual === undefined ? '' : `<p class="manual-note"><strong>Checked by hand:</strong> ${escapeHtml(control.manual)}</p>`}
</section>`;
}

/**
 * The human-readable report: one self-contained HTML page (inline style, no scripts, no external
 * resources) that prints well. Everything in it comes from the report; the JSON is the record.
 */
export function renderHtml(report: ComplianceReport): string {
  const { framework, summary } = report;
  const period =
    report.period.from === null && report.period.to === null
      ? 'the whole ledger'
      : `${report.period.from ?? 'the start'} to ${report.period.to ?? 'now'}`;
  const target =
    report.target === undefined
      ? ''
      : `<dt>Observed in</dt><dd>${escapeHtml(
          Object.entries(report.target)
            .map(([k, v]) => `${k} ${String(v)}`)
            .join(', '),
        )}</dd>`;
  const overview = report.controls
    .map(
      (c) =>
        `<tr><td>${badge(c.status)}</td><td><a href="#control-${escapeHtml(c.id)}">${escapeHtml(c.id)}</a></td><td>${escapeHtml(c.title)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(framework.title)} — ${escapeHtml(report.host)} — op-dbus compliance evidence</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(framework.title)}</h1>
<dl class="meta">
<dt>Host</dt><dd>${escapeHtml(report.host)}</dd>
${target}
<dt>Standard</dt><dd>${escapeHtml(framework.standard)} (op-dbus mapping ${escapeHtml(framework.version)})</dd>
<dt>Period</dt><dd>${escapeHtml(period)}</dd>
<dt>Generated</dt><dd>${escapeHtml(report.generatedAt)}</dd>
<dt>Ledger</dt><dd>${escapeHtml(report.ledger.origin)}, ${report.ledger.size} entries, root <code>${escapeHtml(report.ledger.root)}</code></dd>
</dl>
<p class="summary">${(['pass', 'fail', 'manual', 'not-applicable'] as const)
    .map((s) => `<span>${badge(s)} ${summary[s]}</span>`)
    .join('')}</p>
<h2>Controls</h2>
<table><thead><tr><th>Status</th><th>Control</th><th>Title</th></tr></thead><tbody>
${overview}
</tbody></table>
<h2>Evidence</h2>
${report.controls.map((c) => renderControl(c, report)).join('\n')}
<h2>Verifying this evidence</h2>
<p>Every ledger entry cited is in <code>${escapeHtml(report.ledger.bundle)}</code> with its RFC 9162 inclusion proof to the signed checkpoint below; every file of this bundle is listed with its SHA-256 in <code>MANIFEST</code>, signed with the same Ed25519 key. Verify offline, with the verifier key obtained from the host's operator (not from this bundle):</p>
<pre>opdbus compliance verify DIR --key-file verifier.pub</pre>
<p>Verifier key:</p>
<pre>${escapeHtml(report.ledger.verifierKey)}</pre>
<p>Signed checkpoint:</p>
<pre>${escapeHtml(report.ledger.checkpoint)}</pre>
</body>
</html>
`;
}
