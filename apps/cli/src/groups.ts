import { registerCodegen } from './groups/codegen.js';
import { registerLedger } from './groups/ledger.js';
import { registerMesh } from './groups/mesh.js';
import { registerSnapshot } from './groups/snapshot.js';
import { registerNuma } from './groups/numa.js';
import { registerPlugin } from './groups/plugin.js';
import { registerAnomaly } from './groups/anomaly.js';
import { registerCompliance } from './groups/compliance.js';
import { registerDaemon } from './groups/daemon.js';
import type { CommandContext } from './context.js';

export type { CommandContext } from './context.js';

/**
 * Command groups beyond the core commands (e.g. `ledger`, `snapshot`, `numa`, `codegen`). Each
 * group lives in its own module under `groups/` and imports its implementation lazily inside its
 * actions, so `opdbus --help` stays fast. Add a group by appending its register function here.
 */
export const commandGroups: ReadonlyArray<(context: CommandContext) => void> = [
  registerCodegen,
  registerLedger,
  registerSnapshot,
  registerNuma,
  registerAnomaly,
  registerMesh,
  registerCompliance,
  registerPlugin,
  registerDaemon,
];
