import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the WireGuard plugin (documented in docs/errors.md). */
export const wireguardErrors = defineErrorCodes({
  OPDBUS_ERR_WIREGUARD_INVALID: {
    exit: 'INVALID_INPUT',
    summary:
      'A WireGuard value is malformed (a key that is not 44 characters of base64, an endpoint that is not ADDRESS:PORT, an allowed IP that is not a prefix) or an interface cannot be applied as written.',
    remedy:
      'Fix the value at the path in the message; `wg pubkey < private.key` prints a public key in the expected form.',
  },
  OPDBUS_ERR_WIREGUARD_UNAVAILABLE: {
    exit: 'UNAVAILABLE',
    summary:
      'Neither WireGuard backend works here: the kernel has no `wireguard` generic netlink family and no userspace implementation (wireguard-go) was found.',
    remedy:
      'Load the wireguard kernel module, or install wireguard-go (Debian: `apt-get install --no-install-recommends wireguard-go`) or point OPDBUS_WIREGUARD_GO at it.',
  },
  OPDBUS_ERR_WIREGUARD_DEVICE: {
    summary:
      'A WireGuard device refused a configuration request or could not be created: the UAPI socket answered errno=N, or the kernel returned an errno.',
    remedy:
      'Read the errno: EADDRINUSE is a listen port another socket holds, EINVAL a value the device refuses, ENODEV an interface that is gone. For wireguard-go, its log (LOG_LEVEL=verbose) says more.',
  },
  OPDBUS_ERR_WIREGUARD_KEY: {
    summary:
      'A stored WireGuard key is missing, cannot be decrypted with the key file, or already exists under that id; or a device holds another key than the document pins.',
    remedy:
      'Keys are generated on the node that owns them: apply on that node. A key file that does not decrypt was altered or sealed with another STATE_DIR/keys/wireguard.key; restore it from a backup of the state directory.',
  },
  OPDBUS_ERR_WIREGUARD_RESTORE: {
    summary: 'Putting WireGuard interfaces or peers back from a checkpoint failed for some of them.',
    remedy:
      'Read the list in the message; fix those interfaces by hand (`wg set`, `ip link`) or run `opdbus rollback TXID` again.',
  },
});

/** An error code of the WireGuard plugin. */
export type WireguardErrorCode = keyof typeof wireguardErrors;
