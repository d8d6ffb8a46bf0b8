import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the packages plugin (documented in docs/errors.md). */
export const packagesErrors = defineErrorCodes({
  OPDBUS_ERR_PACKAGES_UNKNOWN: {
    summary:
      'The state document names a package that no configured repository has and that is not installed.',
    remedy:
      'Check the name (`apt-cache policy NAME`), and that the repository providing it is configured and its index refreshed.',
  },
  OPDBUS_ERR_PACKAGES_VERSION: {
    summary: 'The state document asks for a version of a package that the repositories do not have.',
    remedy:
      'Pick one of the versions the error lists (`opdbus query --plugin packages --all` shows them), or `latest`.',
  },
  OPDBUS_ERR_PACKAGES_TRANSACTION: {
    summary:
      'A PackageKit transaction failed (its ErrorCode and message say why: a maintainer script failed, a dependency is missing, authorisation was refused).',
    remedy: 'Read the PackageKit error in the message; `journalctl -u packagekit` on the target has more.',
  },
  OPDBUS_ERR_PACKAGES_RESTORE: {
    summary:
      'Rollback could not reinstall the previous version of a package: the repositories no longer have it.',
    remedy:
      'Install that version by hand from a package file (dpkg -i), or accept the version that is installed now.',
  },
});
