import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the sessions plugin (documented in docs/errors.md). */
export const sessionsErrors = defineErrorCodes({
  OPDBUS_ERR_SESSIONS_UNKNOWN_USER: {
    summary: 'A user named in the `linger` map does not exist on the target.',
    remedy: 'Create the user first, correct the name, or give the numeric uid as the key.',
  },
  OPDBUS_ERR_SESSIONS_ROOT: {
    summary:
      "User names cannot be resolved: the root's /etc/passwd does not belong to the targeted logind (another machine id).",
    remedy: 'With --bus pointing at a container, pass its root with --root, or use numeric uids as keys.',
  },
  OPDBUS_ERR_SESSIONS_LOGIND: {
    summary: 'systemd-logind refused a request (set linger, terminate a session).',
    remedy: 'Read the D-Bus error in the message; these calls need root (or polkit authorization).',
  },
});
