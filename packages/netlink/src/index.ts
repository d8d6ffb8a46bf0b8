/**
 * @opdbus/netlink: network namespaces (enter, create, delete) and, over netlink, the host's
 * network configuration: a typed rtnetlink client (links, addresses, routes, neighbours), a
 * multicast event monitor that resynchronises after overruns, generic netlink, and the
 * attribute codec they are built on.
 *
 * @packageDocumentation
 */
export {
  NETNS_RUN_DIR,
  Netns,
  createNamedNetns,
  deleteNamedNetns,
  listNamedNetns,
  netnsPath,
  openNetns,
  type CreateNetnsOptions,
} from './netns.js';
export { Rtnetlink, type RtnetlinkOptions } from './rtnetlink.js';
export {
  ConfinedRoot,
  hasOpenat2,
  openat2,
  resolveFlags,
  type ConfinedRootOptions,
  type EntryKind,
} from './confined.js';
export { IFNAMSIZ, interfaceNameProblem, isValidInterfaceName } from '@opdbus/core';
export {
  RtnetlinkMonitor,
  allMonitorGroups,
  type MonitorAction,
  type MonitorGroup,
  type MonitorOptions,
  type NetlinkEvent,
} from './monitor.js';
export {
  GenericNetlink,
  ctrlAttrs,
  genlmsghdr,
  type GenericNetlinkOptions,
  type GenlFamily,
  type GenlMessage,
  type GenlRequestOptions,
} from './genl.js';
export {
  NetlinkConnection,
  NetlinkSocket,
  type ConnectionOptions,
  type MessageDecoder,
  type NetlinkSocketOptions,
  type NetnsTarget,
  type RequestSpec,
} from './socket.js';
export {
  AttributeSet,
  NLMSG_HDRLEN,
  StructDef,
  Writer,
  beginMessage,
  defineAttributes,
  endMessage,
  readString,
  type AttrDef,
  type AttrKindDef,
  type FieldKind,
  type ScalarKind,
} from './codec.js';
export * as constants from './constants.js';
export {
  canonicalCidr,
  canonicalIp,
  canonicalMac,
  canonicalNetwork,
  formatIp,
  formatIpv4,
  formatIpv6,
  formatMac,
  hasHostBits,
  isIp,
  isMac,
  networkBytes,
  parseCidr,
  parseIp,
  parseMac,
  prefixContains,
  tryParseCidr,
  tryParseIp,
  type IpFamily,
  type ParsedCidr,
  type ParsedIp,
} from './ip.js';
export { decodeAddress, decodeLink, decodeNeighbour, decodeRoute } from './decode.js';
export * from './types.js';
export { errnoInfo, netlinkErrors, type NetlinkErrorCode } from './errors.js';
