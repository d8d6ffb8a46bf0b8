import { defineErrorCodes } from '@opdbus/core';

/** Error codes of @opdbus/runtime (documented in docs/errors.md). */
export const runtimeErrors = defineErrorCodes({
  OPDBUS_ERR_TOKEN_FILE: {
    summary:
      'The token file cannot be used: unreadable, readable by group or others, empty, or a line that is not `TOKEN [read|write [NAME]]`.',
    remedy:
      'Fix the named line; tokens are at least 16 characters, names unique; run `chmod 600` on the file.',
  },
});

/** A code of {@link runtimeErrors}. */
export type RuntimeErrorCode = keyof typeof runtimeErrors;
