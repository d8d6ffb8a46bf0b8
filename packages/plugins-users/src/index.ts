/**
 * @opdbus/plugins-users: local users and groups as declared state for op-dbus.
 *
 * @packageDocumentation
 */
export { usersErrors } from './errors.js';
export { cryptHashProblem, cryptMethods, isCryptHash } from './hash.js';
export {
  DatabaseFile,
  databases,
  lockPasswordFiles,
  readDatabases,
  type DatabaseName,
  type Databases,
  type LockOptions,
  type PasswordFilesLock,
} from './db.js';
export {
  createUsersPlugin,
  diffUsers,
  groupSchema,
  userSchema,
  usersPlugin,
  usersSchema,
  type GroupSpec,
  type UserSpec,
  type UsersCheckpoint,
  type UsersPluginOptions,
  type UsersSection,
} from './plugin.js';
