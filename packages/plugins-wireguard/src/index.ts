/**
 * @opdbus/plugins-wireguard: WireGuard interfaces and peers as declared state for op-dbus, over
 * the kernel's `wireguard` generic netlink family or the cross-platform userspace UAPI socket
 * (wireguard-go), chosen by probing. Private keys live sealed in the node's key store and appear
 * in documents, plans and queries only as references.
 *
 * @packageDocumentation
 */
export { wireguardErrors, type WireguardErrorCode } from './errors.js';
export {
  interfaceSchema,
  peerSchema,
  secretRefSchema,
  wireguardSchema,
  type InterfaceEntry,
  type InterfaceOwn,
  type PeerEntry,
  type SecretRef,
  type WireguardSection,
  type WireguardValue,
} from './schema.js';
export { diffSection, interfaceResource, peerResource } from './diff.js';
export {
  KEY_LENGTH,
  decodeKey,
  encodeKey,
  generatePresharedKey,
  generatePrivateKey,
  isBase64Key,
  keyFromId,
  keyId,
  publicKeyOf,
} from './keys.js';
export {
  WireguardKeyStore,
  keyFingerprint,
  storedKeyIdPattern,
  type KeyStoreOptions,
  type StoredKeyInfo,
  type StoredKeyKind,
} from './keyStore.js';
export {
  canonicalAllowedIp,
  canonicalEndpoint,
  isAllowedIp,
  isEndpoint,
  type DeviceState,
  type DeviceUpdate,
  type PeerState,
  type PeerUpdate,
} from './device.js';
export {
  UAPI_SOCKET_DIR,
  UapiClient,
  formatSetRequest,
  parseGetResponse,
  type UapiClientOptions,
} from './uapi.js';
export {
  WG_CMD,
  WG_GENL_NAME,
  WG_GENL_VERSION,
  WGALLOWEDIP_A,
  WGDEVICE_A,
  WGDEVICE_F,
  WGPEER_A,
  WGPEER_F,
  allowedIpAttrs,
  deviceAttrs,
  mergeGetDevice,
  peerAttrs,
  setDeviceMessages,
} from './wgNetlink.js';
export {
  KernelBackend,
  UserspaceBackend,
  findUserspaceImplementation,
  listUapiSockets,
  openBackend,
  type BackendKind,
  type BackendOptions,
  type BackendTarget,
  type WireguardBackend,
} from './backend.js';
export {
  createWireguardPlugin,
  wireguardPlugin,
  type WireguardChange,
  type WireguardCheckpoint,
  type WireguardPlugin,
  type WireguardPluginOptions,
} from './plugin.js';
