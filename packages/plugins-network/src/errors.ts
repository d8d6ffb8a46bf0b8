import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the network plugin (documented in docs/errors.md). */
export const networkErrors = defineErrorCodes({
  OPDBUS_ERR_NETWORK_INVALID: {
    summary:
      'The network section of the state document cannot be applied as written (a link to create without a kind, a veth without a peer, an address on a link that does not exist ...).',
    remedy: 'Fix the entry at the path in the message; `opdbus query --plugin network` shows what exists.',
  },
  OPDBUS_ERR_NETWORK_APPLY: {
    summary:
      'The kernel refused a network change (create a link, set an MTU, add an address or a route); the errno says why.',
    remedy:
      'Read the errno and the kernel message: EINVAL is a value out of range (an MTU), EEXIST a name or VNI already taken, EOPNOTSUPP a link kind this kernel lacks, ENETUNREACH a gateway with no route to it.',
  },
  OPDBUS_ERR_NETWORK_RESTORE: {
    summary: 'Putting links, addresses or routes back from a checkpoint failed for some of them.',
    remedy:
      'Read the list in the message; fix those resources by hand (`ip link`, `ip addr`, `ip route`) or run `opdbus rollback TXID` again.',
  },
});

/** An error code of the network plugin. */
export type NetworkErrorCode = keyof typeof networkErrors;
