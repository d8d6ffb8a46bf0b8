import type { Logger } from '@opdbus/core';
import type { Daemon } from './daemon.js';

/** What the daemon tells its service manager. */
export interface Notifier {
  /** Start periodic status (and, later, watchdog) messages; returns the function that stops them. */
  start(daemon: Daemon): () => void;
  /** READY=1 after the first comparison. */
  ready(daemon: Daemon): void;
  /** A STATUS= line. */
  status(text: string | Daemon): void;
  /** STOPPING=1. */
  stopping(): void;
}

/**
 * The service-manager notifier. Sending sd_notify datagrams needs a unix datagram socket, which
 * Node does not offer; until the daemon ships one, `$NOTIFY_SOCKET` is reported in the log and the
 * daemon runs as `Type=simple` (its readiness is `GET /healthz`).
 */
export function systemdNotifier(logger: Logger): Notifier {
  const socket = process.env.NOTIFY_SOCKET;
  if (socket !== undefined)
    logger.warn(
      { notifySocket: socket },
      'NOTIFY_SOCKET is set, but this build of opdbusd cannot send sd_notify datagrams: run it as Type=simple and use GET /healthz for readiness',
    );
  return {
    start: () => () => undefined,
    ready: (daemon) => logger.info(daemon.describe(), 'ready: first comparison with the desired state done'),
    status: () => undefined,
    stopping: () => undefined,
  };
}
