import { OpdbusError, defineErrorCodes } from '@opdbus/core';

/**
 * The error codes of @opdbus/nftables, thrown as `OpdbusError`. A kernel refusal keeps its
 * netlink identity in `data`: `errno` (e.g. `ENOENT`), `errnoNumber`, `request` (e.g.
 * `NFT_MSG_NEWRULE`), `description` (what was asked, e.g. `add rule inet filter input`), the
 * kernel's `extack` text, `index` (the message's position in the batch) and `netns`.
 */
export const nftablesErrors = defineErrorCodes({
  OPDBUS_ERR_NFT_REQUEST: {
    summary:
      'The kernel refused an nftables request or a message of a batch (a table, chain, set, element or rule); the errno and the kernel message say why. A refused batch changes nothing.',
    remedy:
      'Read the errno and the object in the message: ENOENT names a table, chain or set that does not exist, EEXIST one that exists already, EBUSY one still in use (a chain jumped to, a set a rule looks up), EOPNOTSUPP a hook or expression this kernel lacks, EINVAL a value out of range.',
  },
  OPDBUS_ERR_NFT_GENERATION: {
    summary:
      'The ruleset changed (another writer committed a transaction) after it was read and before the batch computed from it reached the kernel (ERESTART on the batch generation id). Nothing was changed.',
    remedy: 'Read the ruleset again, recompute the change, and apply again.',
  },
  OPDBUS_ERR_NFT_INVALID: {
    summary:
      'A value cannot be encoded as nftables expects (an address, a port, a set type, a name longer than 255 bytes, an expression with a missing operand).',
    remedy: 'Correct the value named in the message.',
  },
  OPDBUS_ERR_NFT_BATCH: {
    summary:
      'The kernel did not answer every message of an nftables batch (its replies were lost to a full receive buffer), so whether it was committed is unknown.',
    remedy: 'Read the ruleset again (the generation id tells whether it changed) and apply again.',
  },
});

/** An error code of @opdbus/nftables. */
export type NftablesErrorCode = keyof typeof nftablesErrors;

/** The error for a value that cannot be encoded. */
export function invalid(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_NFT_INVALID', message, { data });
}
