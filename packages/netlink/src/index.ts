/**
 * @opdbus/netlink: network namespaces (enter, create, delete) and, over netlink, the host's
 * network configuration.
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
