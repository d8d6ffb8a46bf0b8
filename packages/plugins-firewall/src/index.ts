/**
 * @opdbus/plugins-firewall: the nftables firewall — tables, chains with their rules in readable
 * form, sets and maps with their elements — as declared state for op-dbus, over native
 * nfnetlink with @opdbus/nftables (never `nft`).
 *
 * @packageDocumentation
 */
export { effectiveChanges, planBatch, ruleOperations, type PlannedBatch } from './apply.js';
export { describeRules, diffSection, type FirewallFacts } from './diff.js';
export { firewallErrors, type FirewallErrorCode } from './errors.js';
export {
  chainResource,
  normalizeChain,
  normalizeSet,
  parseResource,
  scopedSection,
  setResource,
  tableResource,
  type FirewallChange,
  type FirewallValue,
  type ResourceRef,
  type TableView,
} from './model.js';
export {
  createFirewallPlugin,
  firewallPlugin,
  restoreSection,
  type DeclaredConnection,
  type FirewallCheckpoint,
  type FirewallPlugin,
  type FirewallPluginOptions,
} from './plugin.js';
export { dropsConnection, type ManagementConnection } from './risk.js';
export {
  chainSchema,
  families,
  hookNames,
  matchSchema,
  ruleSchema,
  setFlags,
  setKeyTypes,
  setSchema,
  statementSchema,
  tableSchema,
  verdictSchema,
  type ChainEntry,
  type FirewallSection,
  type RuleEntry,
  type SetEntry,
  type TableEntry,
} from './schema.js';
export { firewallSchema } from './sectionSchema.js';
