// Builds the native addon with node-gyp against the running Node's headers. Debian's nodejs
// ships them in /usr/include/node; point node-gyp there so it never tries to download them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const args = ['rebuild'];
const execPrefix = dirname(dirname(process.execPath));
for (const candidate of [process.env.npm_config_nodedir, execPrefix, '/usr', '/usr/local']) {
  if (candidate && existsSync(join(candidate, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${candidate}`);
    break;
  }
}
const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
process.exit(result.status ?? 1);
