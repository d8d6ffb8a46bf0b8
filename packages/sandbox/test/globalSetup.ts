// Root vitest globalSetup: before any test runs, remove what an earlier, SIGKILLed test run left
// behind (namespaces, daemons, mounts of `opdbus-sbx-*` resources whose owner is gone).
import { reapStaleSandboxes } from '../src/index.js';

export default async function setup(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const report = await reapStaleSandboxes();
  if (report.reaped.length > 0)
    process.stderr.write(
      `[sandbox] reaped ${report.reaped.length} stale sandbox resource(s) from earlier runs\n`,
    );
}
