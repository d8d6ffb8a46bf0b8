/**
 * @opdbus/plugins-ssh: SSH authorized keys per user and sshd settings as declared state for op-dbus.
 *
 * @packageDocumentation
 */
export { sshErrors } from './errors.js';
export {
  blobProblem,
  fingerprint,
  keyOptions,
  keyTypes,
  optionProblem,
  parseKeyLine,
  renderKeyLine,
  splitOptions,
  type KeyLine,
} from './keys.js';
export {
  SSHD_DROPIN,
  parseDropin,
  renderDropin,
  sshdKeywords,
  sshdSchema,
  type DropinProblem,
  type SshdKeyword,
  type SshdSettings,
  type SshdValue,
} from './sshd.js';
export {
  createSshPlugin,
  diffSsh,
  sshPlugin,
  sshSchema,
  sshdKeywordNames,
  type AuthorizedKey,
  type AuthorizedKeyValue,
  type SshChange,
  type SshCheckpoint,
  type SshPlugin,
  type SshPluginOptions,
  type SshSection,
  type SshValue,
} from './plugin.js';
