/**
 * @opdbus/compliance: evidence an auditor can verify offline. Framework mappings (SOC 2, PCI DSS
 * 4.0, HIPAA Security Rule) name, for each control, the evidence queries that support it; the
 * queries read op-dbus's tamper-evident ledger (who changed what, when, verified or rolled back,
 * snapshots) and the host through the plugins' own queries (sysctl, nftables, timedated). A
 * report is written as a bundle — JSON, self-contained HTML, the ledger entries with inclusion
 * proofs, the signed checkpoint, the verifier key and a signed manifest of every file's hash —
 * and verified offline with the pinned key.
 *
 * @packageDocumentation
 */
export { complianceErrors, type ComplianceErrorCode } from './errors.js';
export {
  evidenceQueryIds,
  frameworkFile,
  frameworkIds,
  frameworkSchema,
  loadFramework,
  type ControlMapping,
  type EvidenceQueryId,
  type EvidenceRef,
  type Framework,
  type FrameworkId,
} from './framework.js';
export {
  combineStatus,
  defaultSysctlBaseline,
  engineObserver,
  runEvidenceQuery,
  type ControlStatus,
  type EntryRef,
  type EntryView,
  type EvidenceItem,
  type EvidenceResult,
  type EvidenceSources,
  type HostObserver,
} from './evidence.js';
export {
  LEDGER_BUNDLE_FILE,
  REPORT_FORMAT,
  buildReport,
  type BuildReportOptions,
  type ComplianceReport,
  type ControlResult,
} from './report.js';
export { escapeHtml, renderHtml } from './html.js';
export {
  MANIFEST_FORMAT,
  bundleFiles,
  createEvidenceBundle,
  manifestText,
  parseManifestText,
  sha256Hex,
  writeEvidenceBundle,
  type CreateEvidenceBundleOptions,
  type ManifestFile,
  type WriteBundleOptions,
} from './bundle.js';
export { verifyEvidenceBundle, type BundleFinding, type EvidenceVerification } from './verify.js';
