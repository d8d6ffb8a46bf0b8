import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the users plugin (documented in docs/errors.md). */
export const usersErrors = defineErrorCodes({
  OPDBUS_ERR_USERS_LOCKED: {
    summary:
      'The password files are locked by another program (/etc/.pwd.lock held with lckpwdf, or a shadow-utils FILE.lock) for longer than op-dbus waits.',
    remedy:
      'Wait for the other program (useradd, usermod, passwd, vipw …) to finish, or find it with `fuser ROOT/etc/.pwd.lock`, then apply again.',
  },
  OPDBUS_ERR_USERS_NO_DATABASE: {
    summary: 'The target has no /etc/passwd or /etc/group under its root, or they cannot be read.',
    remedy: 'Check `--root`: it must be the root of a Linux filesystem with /etc/passwd and /etc/group.',
  },
  OPDBUS_ERR_USERS_UNKNOWN_GROUP: {
    summary:
      'A user names a primary or supplementary group that does not exist and is not created by the same document.',
    remedy: 'Add the group under `users.groups` in the same document, or fix the name.',
  },
  OPDBUS_ERR_USERS_ID_TAKEN: {
    summary: 'The uid or gid asked for belongs to another user or group already.',
    remedy:
      'Pick a free id (see `getent passwd` / `getent group`), or leave `uid`/`gid` out to have one allocated.',
  },
  OPDBUS_ERR_USERS_BUSY: {
    summary: 'A user to be removed (`state: absent`) has running processes.',
    remedy:
      'Stop the processes (`pkill -u USER` or end the session), or set `force: true` on the user to remove it anyway.',
  },
  OPDBUS_ERR_USERS_GROUP_IN_USE: {
    summary: "A group to be removed is still some user's primary group.",
    remedy: 'Remove that user or give it another primary group in the same document first.',
  },
  OPDBUS_ERR_USERS_NO_ID: {
    summary:
      'No free uid or gid is left in the range login.defs allows (UID_MIN..UID_MAX, GID_MIN..GID_MAX).',
    remedy: 'Give `uid`/`gid` explicitly, or widen the range in ROOT/etc/login.defs.',
  },
  OPDBUS_ERR_USERS_WRITE: {
    summary: 'A password database file or a home directory could not be written.',
    remedy: 'Run as root, and check that the target filesystem is writable and not full.',
  },
  OPDBUS_ERR_USERS_ACCOUNTS: {
    summary:
      'AccountsService (org.freedesktop.Accounts) refused a call or is not reachable although the accountsservice backend was asked for.',
    remedy:
      'Read the D-Bus error in the message (access denied: run as root or allow it in polkit); use the files backend (`backend: files`) where AccountsService does not run.',
  },
  OPDBUS_ERR_USERS_UNSAFE: {
    summary:
      'A unlock would leave an account with an empty password, or a home directory path leads out of the root through a symbolic link.',
    remedy: 'Give a password hash with `password` before unlocking, or fix the home directory path.',
  },
});
