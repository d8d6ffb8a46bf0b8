/**
 * @opdbus/plugins-network: links, addresses and routes as declared state for op-dbus, over
 * rtnetlink (@opdbus/netlink).
 *
 * @packageDocumentation
 */
export { networkErrors, type NetworkErrorCode } from './errors.js';
export {
  addressFlags,
  addressSchema,
  bondModes,
  linkKinds,
  linkSchema,
  macvlanModes,
  networkSchema,
  nexthopSchema,
  peerSchema,
  routeSchema,
  routeTypes,
  type AddressEntry,
  type LinkEntry,
  type LinkKind,
  type NetworkSection,
  type NetworkValue,
  type NexthopEntry,
  type RouteEntry,
} from './schema.js';
export { addressKey, canonicalDestination, linkKey, routeKey, routeMetric } from './model.js';
export {
  createNetworkPlugin,
  networkPlugin,
  type NetworkCheckpoint,
  type NetworkPlugin,
  type NetworkPluginOptions,
} from './plugin.js';
