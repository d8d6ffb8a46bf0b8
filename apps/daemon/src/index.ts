/**
 * @opdbus/daemon: `opdbusd`, the op-dbus daemon: keeps a host at its desired state from the
 * plugins' native event streams (observe, enforce or ignore, per plugin and resource), and serves
 * an authenticated HTTP API (state, drift, plan, apply, ledger, metrics, events).
 *
 * @packageDocumentation
 */
export { buildApi, listen, type ApiOptions } from './api.js';
export {
  checkPlanPolicy,
  loadScorer,
  scoreChanges,
  type AnomalyOptions,
  type DriftPolicy,
  type PlanPolicy,
  type ScoreSummary,
} from './anomaly.js';
export {
  AuthFailureAudit,
  DAEMON_AUTH_FAILED_KIND,
  type AuthFailureAuditOptions,
  type AuthFailureReason,
} from './authAudit.js';
export {
  ChatService,
  parseChatEndpoint,
  readChatKeyFile,
  type ChatEntry,
  type ChatMessage,
  type ChatOptions,
  type ChatTurn,
  type PendingApproval,
} from './chat.js';
export { Daemon, type DaemonEvent, type DaemonOptions, type DaemonStatus, type DriftItem } from './daemon.js';
export { FlapDamper, defaultDamping, type DampingOptions, type Hold } from './damper.js';
export { daemonErrors, type DaemonErrorCode } from './errors.js';
export {
  MAX_DOCUMENTS,
  desiredSections,
  documentSections,
  loadDesired,
  mergeDocuments,
} from '@opdbus/runtime';
export { checkListeners, isLoopback, parseListener, type Listener } from './listen.js';
export { createMetrics, type DaemonMetrics } from './metrics.js';
export { ModePolicy, loadModesFile, modes, parseModeRule, type Mode, type ModeRule } from './modes.js';
export { main, program, version } from './main.js';
export { statusLine, systemdNotifier, type Notifier, type NotifySource } from './notify.js';
export { defaultV8Flags } from './v8Flags.js';
