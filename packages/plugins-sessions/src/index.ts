/**
 * @opdbus/plugins-sessions: login sessions, users and seats of systemd-logind
 * (org.freedesktop.login1) for op-dbus: lingering per user, and a policy that terminates
 * sessions matching a selector (observe-only by default).
 *
 * @packageDocumentation
 */
export { sessionsErrors } from './errors.js';
export {
  createSessionsPlugin,
  matchesSelector,
  sessionSelectorSchema,
  sessionsPlugin,
  sessionsSchema,
  type SessionInfo,
  type SessionSelector,
  type SessionsChange,
  type SessionsCheckpoint,
  type SessionsPlugin,
  type SessionsSection,
  type SessionsValue,
} from './plugin.js';
