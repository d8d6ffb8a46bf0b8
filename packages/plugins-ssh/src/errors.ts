import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the ssh plugin (documented in docs/errors.md). */
export const sshErrors = defineErrorCodes({
  OPDBUS_ERR_SSH_UNKNOWN_USER: {
    summary:
      'Authorized keys are declared for a user that does not exist in the target (and is not created by the same plan).',
    remedy: 'Create the user under `users.users` in the same document, or fix the name.',
  },
  OPDBUS_ERR_SSH_UNSAFE_PATH: {
    summary:
      "The user's ~/.ssh or authorized_keys is a symbolic link, not a directory or file, or the home directory is writable by others (sshd's StrictModes would ignore the keys).",
    remedy:
      'Replace the link with a real directory or file (mode 0700 / 0600, owned by the user), and make the home directory writable only by its owner.',
  },
  OPDBUS_ERR_SSH_INVALID_CONFIG: {
    summary:
      'The rendered sshd drop-in did not parse back to the declared settings, or `sshd -t` refused it.',
    remedy: 'Read the sshd message in the error and fix the value in the state document.',
  },
  OPDBUS_ERR_SSH_WRITE: {
    summary: 'An authorized_keys file or the sshd drop-in could not be written.',
    remedy: 'Run as root, and check that the target filesystem is writable and not full.',
  },
});
