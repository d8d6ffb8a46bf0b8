import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the timedate plugin (documented in docs/errors.md). */
export const timedateErrors = defineErrorCodes({
  OPDBUS_ERR_TIMEDATE_SET: {
    summary:
      'systemd-timedated refused a setting (an unknown time zone, NTP not supported, or access denied).',
    remedy:
      'Read the D-Bus error in the message: use a zone from `timedatectl list-timezones`; NTP needs an NTP service such as systemd-timesyncd.',
  },
});
