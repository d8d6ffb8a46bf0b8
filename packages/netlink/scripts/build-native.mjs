// Builds the native addon (setns/unshare/mount and the AF_NETLINK socket) with node-gyp against
// the running Node's headers. Debian's nodejs ships them in /usr/include/node; node-gyp is pointed
// there so it never tries to download them. Runs at install time (npm hands install scripts its
// bundled node-gyp in npm_config_node_gyp) and as part of the workspace build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
function fail(reason) {
  process.stderr.write(
    `@opdbus/netlink: cannot build the native addon: ${reason}. It needs python3, make, g++ and Node's headers ` +
      '(on Debian: apt-get install python3 make g++ nodejs); then run `node scripts/build-native.mjs` in the package directory.\n',
  );
  process.exit(1);
}
const args = ['rebuild', '--loglevel=warn'];
const execPrefix = dirname(dirname(process.execPath));
let nodedir;
for (const candidate of [process.env.npm_config_nodedir, execPrefix, '/usr', '/usr/local']) {
  if (candidate && existsSync(join(candidate, 'include', 'node', 'node_api.h'))) {
    nodedir = candidate;
    break;
  }
}
if (nodedir === undefined) fail("Node's headers (include/node/node_api.h) were not found");
args.push(`--nodedir=${nodedir}`);
let nodeGyp = process.env.npm_config_node_gyp;
if (nodeGyp === undefined || !existsSync(nodeGyp)) {
  try {
    nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    fail('node-gyp was found neither in npm_config_node_gyp nor in node_modules');
  }
}
const result = spawnSync(process.execPath, [nodeGyp, ...args], {
  cwd: here,
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (result.status !== 0) fail(`node-gyp exited with ${result.status ?? result.signal}`);
