import { defineErrorCodes } from '@opdbus/core';

/** The error codes of @opdbus/dbus (documented in docs/errors.md). */
export const dbusErrors = defineErrorCodes({
  OPDBUS_ERR_DBUS_CONNECT: {
    exit: 'UNAVAILABLE',
    summary:
      'The D-Bus bus could not be reached (no socket at the address, refused, or authentication failed).',
    remedy:
      'Check the address (`--bus unix:path=…`, `$DBUS_SYSTEM_BUS_ADDRESS`) and that the bus daemon runs; run as a user the bus accepts.',
  },
  OPDBUS_ERR_DBUS_CALL: {
    summary:
      'A D-Bus method call returned an error; `data.dbusError` holds the D-Bus error name (e.g. org.freedesktop.DBus.Error.AccessDenied).',
    remedy:
      'Read the D-Bus error name and message: a missing service or object, a denied call (polkit), or arguments the service refused.',
  },
  OPDBUS_ERR_DBUS_TIMEOUT: {
    summary: 'A D-Bus call got no reply in time.',
    remedy: 'Check that the service is alive and not blocked; raise the call timeout for slow methods.',
  },
  OPDBUS_ERR_DBUS_CLOSED: {
    summary: 'The D-Bus connection was closed (by us or the bus) while a call was pending or was made on it.',
    remedy: 'Open a new connection; if the bus daemon went away, restart it.',
  },
  OPDBUS_ERR_DBUS_SIGNATURE: {
    summary:
      'A D-Bus type signature is not valid (unbalanced brackets, unknown type code, dict outside an array).',
    remedy: 'Correct the signature; the message names the position of the error.',
  },
  OPDBUS_ERR_DBUS_ARGS: {
    summary: 'The arguments passed to a D-Bus method or property do not match its signature.',
    remedy:
      'Pass values of the types the signature names; the message names the argument and what was expected.',
  },
  OPDBUS_ERR_DBUS_INTROSPECTION: {
    summary: 'Introspection XML could not be parsed or is not valid D-Bus introspection data.',
    remedy:
      'Check the XML file (or the service returning it): the message names the element and what is wrong.',
  },
  OPDBUS_ERR_DBUS_CODEGEN: {
    summary:
      'Bindings could not be generated or written (nothing to generate, a name clash, or an unwritable directory).',
    remedy: 'Read the message: pick interfaces with `--interface`, or choose a writable `--out` directory.',
  },
  OPDBUS_ERR_DBUS_READ_ONLY: {
    summary:
      'A change was asked of a D-Bus property that the auto plugin cannot write (read-only, or writes not enabled).',
    remedy:
      'Remove the property from the state document, or create the auto plugin with `writable: true` for properties with access "readwrite".',
  },
  OPDBUS_ERR_DBUS_UNKNOWN_MEMBER: {
    summary: 'The state document names a D-Bus object, interface or property the service does not have.',
    remedy: 'Check the names against `opdbus query` or the introspection data of the service.',
  },
});

/** An error code of @opdbus/dbus. */
export type DbusErrorCode = keyof typeof dbusErrors;
