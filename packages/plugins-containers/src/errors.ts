import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the containers plugin (documented in docs/errors.md). */
export const containersErrors = defineErrorCodes({
  OPDBUS_ERR_CONTAINERS_INVALID: {
    summary:
      'A machine cannot be applied as written: no image and no source to make one from, a command with `boot: true`, a source directory or tarball that does not exist under the target root or cannot be extracted.',
    remedy:
      'Fix the machine entry at the path in the message; `opdbus query --plugin containers` shows the machines and images there are.',
  },
  OPDBUS_ERR_CONTAINERS_MACHINE: {
    summary:
      'systemd-machined or systemd refused a machine operation (clone or remove an image, start or stop `systemd-nspawn@NAME.service`), or the machine did not start.',
    remedy:
      'Read the D-Bus error or the job result in the message; `journalctl -u systemd-nspawn@NAME.service` on the target says why a machine did not start.',
  },
  OPDBUS_ERR_CONTAINERS_PODMAN: {
    summary:
      "Podman's REST API (libpod, on its unix socket) could not be reached or refused an operation on a container (create, start, stop, remove), e.g. an image it does not have.",
    remedy:
      "Read Podman's message in the error; check the service (`systemctl status podman.socket`, or the socket passed as `podmanSocket`) and `podman images` on the target.",
  },
  OPDBUS_ERR_CONTAINERS_RESTORE: {
    summary: 'Putting machines back from a checkpoint failed for some of them.',
    remedy:
      'Read the list in the message; fix those machines by hand (`machinectl`, `systemctl`) or run `opdbus rollback TXID` again.',
  },
});

/** An error code of the containers plugin. */
export type ContainersErrorCode = keyof typeof containersErrors;
