import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the firewall plugin (documented in docs/errors.md). */
export const firewallErrors = defineErrorCodes({
  OPDBUS_ERR_FIREWALL_INVALID: {
    summary:
      'The firewall section cannot be applied as written: a set to create without a type, a rule that cannot be encoded (an `iif` naming an interface that does not exist, a port mapping without a transport protocol …). The message names the place in the state document or the change.',
    remedy:
      'Correct the state document at the path given; `opdbus query --plugin firewall` shows what exists.',
  },
  OPDBUS_ERR_FIREWALL_CONFLICT: {
    summary:
      'The ruleset changed under op-dbus: a table, chain or set is neither as the plan found it nor as it wants it, or another writer committed an nftables transaction between reading the ruleset and writing the batch (the generation id moved). Nothing was changed.',
    remedy: 'Run `opdbus diff` to see the current ruleset, then apply again.',
  },
  OPDBUS_ERR_FIREWALL_APPLY: {
    summary:
      'The kernel refused the nftables batch (one message of it: the errno, the kernel message and the change are given). The batch is atomic, so nothing was changed.',
    remedy:
      'Read the errno and the change: ENOENT is a chain jumped to or a set looked up that does not exist, EBUSY a chain or set still in use, EOPNOTSUPP a hook or statement the chain type or kernel does not allow (dnat outside prerouting/output, masquerade outside postrouting), EEXIST overlapping set elements.',
  },
});

/** An error code of the firewall plugin. */
export type FirewallErrorCode = keyof typeof firewallErrors;
