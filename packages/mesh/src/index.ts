/**
 * @opdbus/mesh: a WireGuard mesh planned from a definition and its enrolled nodes. The controller
 * keeps the mesh state (stable addresses from the pool, public keys, revoked keys, one-time join
 * tokens) and signs a roster; each node renders its own document from the roster — a `wireguard`
 * interface with its peers, `network` routes to the subnets behind other nodes, `sysctl`
 * forwarding — and applies it with op-dbus. Keys are generated on the node that owns them; only
 * public keys leave it.
 *
 * @packageDocumentation
 */
export { meshErrors, type MeshErrorCode } from './errors.js';
export {
  canonicalSubnet,
  defaultInterface,
  meshDefinitionSchema,
  meshNamePattern,
  meshNodeSchema,
  nodeNamePattern,
  parseDefinition,
  resolveDefinition,
  type MeshDefinitionInput,
  type MeshNodeInput,
  type MeshSettings,
} from './definition.js';
export { allocateAddress, canonicalAddress } from './ipam.js';
export {
  controllerKeyName,
  signRoster,
  verifyRoster,
  type RevokedKey,
  type Roster,
  type RosterNode,
} from './roster.js';
export {
  meshKeyId,
  peersOf,
  pendingSwitches,
  planNode,
  rosterAt,
  type MeshRoute,
  type NodeDocument,
} from './planner.js';
export {
  checkProof,
  formatToken,
  joinProof,
  newTokenId,
  parseToken,
  tokenSecret,
  type JoinToken,
} from './token.js';
export {
  MeshController,
  keyRequestText,
  meshDir,
  foldRotations,
  rosterOf,
  type ControllerNode,
  type ControllerOptions,
  type ControllerState,
  type JoinRequest,
  type KeyRequest,
  type MeshEvent,
  type MeshRecorder,
  type TokenRecord,
} from './controller.js';
export { MeshMember, type MemberOptions, type MemberState } from './member.js';
export { callController, type CallOptions } from './client.js';
export { createMeshServer, type MeshServerOptions } from './server.js';
