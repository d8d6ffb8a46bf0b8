import { defineErrorCodes } from '@opdbus/core';

/** Error codes of @opdbus/compliance (documented in docs/errors.md). */
export const complianceErrors = defineErrorCodes({
  OPDBUS_ERR_COMPLIANCE_TAMPERED: {
    exit: 'TAMPERED',
    summary:
      'A compliance evidence bundle does not verify: a file was changed, added or removed, the signed manifest or the checkpoint does not verify with the pinned key, or an evidence item cites a ledger entry that is not in the ledger bundle or is not the entry proven there (the message names the file and the item).',
    remedy:
      'Do not rely on the bundle. Ask the host for a fresh one (`opdbus compliance report`), verify it with the verifier key you pinned, and keep the altered copy for forensics.',
  },
  OPDBUS_ERR_COMPLIANCE_FRAMEWORK: {
    exit: 'INVALID_INPUT',
    summary: 'The framework asked for is unknown, or a framework mapping file is not valid.',
    remedy:
      'Use one of soc2, pci-dss, hipaa (`opdbus compliance report --framework NAME`); for a mapping file of your own, fix the path and field the message names.',
  },
  OPDBUS_ERR_COMPLIANCE_INPUT: {
    exit: 'INVALID_INPUT',
    summary:
      'An argument of a compliance command is not usable: a date that does not parse, a period that ends before it starts, an output directory that is not empty.',
    remedy:
      'Pass ISO 8601 dates (2026-12-01 or 2026-12-01T00:00:00Z) with --from before --to, and a new or empty directory to --out.',
  },
  OPDBUS_ERR_COMPLIANCE_NOT_FOUND: {
    exit: 'NOT_FOUND',
    summary: 'There is no evidence bundle, ledger or ledger key where the command looked.',
    remedy:
      'Check the directory named in the message; a report needs the state directory of a host that has applied at least once.',
  },
});

/** A code of {@link complianceErrors}. */
export type ComplianceErrorCode = keyof typeof complianceErrors;
