/**
 * @opdbus/nftables: a native nftables client for Node over nfnetlink — what `nft` does through
 * libnftnl, without spawning it. Tables, chains, sets (with their elements) and rules are read
 * as a consistent snapshot and written as one atomic batch guarded by the ruleset generation;
 * rules have a readable, typed form (matches, statements, a verdict) that is compiled to the
 * kernel's expressions and read back from them; a monitor follows the nftables multicast group.
 *
 * @packageDocumentation
 */
export {
  NftBatch,
  messageName,
  type BatchMessage,
  type BatchRule,
  type EncodedBatch,
  type RulePosition,
} from './batch.js';
export {
  NftClient,
  type CommitResult,
  type NftClientOptions,
  type NftRuleset,
  type NftSetWithElements,
  type NftTableRef,
} from './client.js';
export {
  BITWISE_OPS,
  CMP_OPS,
  CT_KEYS,
  META_KEYS,
  PAYLOAD_BASES,
  decodeExpressions,
  encodeExpr,
  exprKey,
  stableJson,
  type BitwiseExpr,
  type ByteorderExpr,
  type CmpExpr,
  type CounterExpr,
  type CtExpr,
  type ImmediateExpr,
  type LimitExpr,
  type LogExpr,
  type LookupExpr,
  type MasqExpr,
  type MetaExpr,
  type NatExpr,
  type NftAnonymousSet,
  type NftElementData,
  type NftExpr,
  type NftVerdict,
  type PayloadExpr,
  type RangeExpr,
  type RedirExpr,
  type RejectExpr,
  type UnknownExpr,
} from './expr.js';
export { NftMonitor, type NftMonitorEvent, type NftMonitorOptions, type NftObjectEvent } from './monitor.js';
export {
  FAMILY_NUMBER,
  familyName,
  type NftChain,
  type NftFamily,
  type NftGeneration,
  type NftHook,
  type NftRule,
  type NftSet,
  type NftTable,
} from './wire.js';
export { nftablesErrors, type NftablesErrorCode } from './errors.js';
export * as nftConstants from './constants.js';
export * from './model/types.js';
export {
  compileRule,
  decompileRule,
  normalizeRule,
  syntheticInterfaces,
  type InterfaceResolver,
  type RuleContext,
} from './model/rules.js';
export {
  elementCodec,
  elementsFromNft,
  elementsToNft,
  keyTypesOf,
  normalizeElements,
  setFromNft,
  setToNft,
  verdictFromNft,
  verdictToNft,
  type ElementCodec,
} from './model/sets.js';
export { ruleKey, ruleText, ruleToNftJson } from './model/format.js';
export {
  chainFromNft,
  chainKey,
  chainToNft,
  parsePriority,
  readRuleset,
  readableFromRaw,
  resolverFromLinks,
  type ReadableRuleset,
  type RuleHandles,
} from './model/ruleset.js';
export {
  CT_STATES,
  DATATYPES,
  formatDuration,
  parseDuration,
  parseValue,
  type DataType,
  type DataTypeName,
  type WireValue,
} from './model/values.js';
