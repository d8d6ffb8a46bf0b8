import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the mesh planner (documented in docs/errors.md). */
export const meshErrors = defineErrorCodes({
  OPDBUS_ERR_MESH_INVALID: {
    exit: 'INVALID_INPUT',
    summary:
      'A mesh definition or request is not valid: a name, pool, endpoint or subnet that is malformed, a hub that is not a node, an address outside the pool.',
    remedy:
      'Fix the value the message names (file and path, or the command-line option) and run the command again.',
  },
  OPDBUS_ERR_MESH_NOT_FOUND: {
    exit: 'NOT_FOUND',
    summary:
      'This node has no such mesh: it neither controls it (`opdbus mesh init`) nor is a member (`opdbus mesh join`), or the controller does not know the node.',
    remedy:
      '`opdbus mesh list` shows the meshes of this state directory; join with a token from the controller.',
  },
  OPDBUS_ERR_MESH_TOKEN: {
    exit: 'INVALID_INPUT',
    summary:
      'A join token is malformed, expired, already used, for another node, or its proof does not verify.',
    remedy:
      'Ask the controller for a new token (`opdbus mesh token MESH`); tokens are one-time and expire (default 1 hour).',
  },
  OPDBUS_ERR_MESH_NODE: {
    exit: 'CONFLICT',
    summary:
      'A node cannot be enrolled or changed: its name is taken by another key, it was removed from the mesh, or a signed request from it does not verify or is replayed.',
    remedy:
      'Use another node name, or remove the old node first (`opdbus mesh remove MESH NODE`) on the controller.',
  },
  OPDBUS_ERR_MESH_POOL: {
    exit: 'CONFLICT',
    summary:
      "The mesh's address pool has no free address left (addresses of removed nodes are not reused while others are free).",
    remedy: 'Remove nodes that are gone, or create the mesh with a larger pool.',
  },
  OPDBUS_ERR_MESH_ROSTER: {
    exit: 'TAMPERED',
    summary:
      "The roster the controller sent does not verify with the controller's key from the join token, is for another mesh, or is older than one this node already applied (a replay).",
    remedy:
      'Check that the node talks to the right controller (the URL in its member file); if the controller was rebuilt, join again with a new token.',
  },
  OPDBUS_ERR_MESH_CONTROLLER: {
    exit: 'UNAVAILABLE',
    summary: 'The mesh controller could not be reached or answered with an error.',
    remedy:
      'Check that `opdbus mesh serve` runs on the controller and that its address (in the token) is reachable from this node.',
  },
});

/** An error code of the mesh planner. */
export type MeshErrorCode = keyof typeof meshErrors;
