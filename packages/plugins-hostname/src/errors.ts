import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the hostname plugin (documented in docs/errors.md). */
export const hostnameErrors = defineErrorCodes({
  OPDBUS_ERR_HOSTNAME_SET: {
    summary:
      'systemd-hostnamed refused a value (an invalid hostname, chassis or deployment, or access denied).',
    remedy: 'Read the D-Bus error in the message: fix the value in the state document, or run as root.',
  },
});
