// Builds the optional native hashing addon with node-gyp against the running Node's headers
// (Debian's nodejs ships them in /usr/include/node; node-gyp is pointed there so it never
// downloads anything). The addon only batches SHA-256 calls into Node's own OpenSSL; without it
// the ledger uses node:crypto and is slower at bulk verification. With --optional a failed
// build is reported and the install goes on.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const optional = process.argv.includes('--optional');
const here = dirname(dirname(fileURLToPath(import.meta.url)));
const args = ['rebuild'];
const execPrefix = dirname(dirname(process.execPath));
let nodedir;
for (const candidate of [process.env.npm_config_nodedir, execPrefix, '/usr', '/usr/local']) {
  if (candidate && existsSync(join(candidate, 'include', 'node', 'node_api.h'))) {
    nodedir = candidate;
    break;
  }
}
function skip(reason) {
  process.stderr.write(`@opdbus/ledger: native hashing addon not built (${reason}); using node:crypto.\n`);
  process.exit(optional ? 0 : 1);
}
if (nodedir === undefined) skip("Node's headers (include/node/node_api.h) were not found");
if (!existsSync(join(nodedir, 'include', 'node', 'openssl', 'sha.h')))
  skip("Node's OpenSSL headers were not found");
args.push(`--nodedir=${nodedir}`, '--loglevel=warn');
let nodeGyp = process.env.npm_config_node_gyp;
if (nodeGyp === undefined || !existsSync(nodeGyp)) {
  try {
    nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    skip('node-gyp is not installed');
  }
}
const result = spawnSync(process.execPath, [nodeGyp, ...args], {
  cwd: here,
  stdio: ['ignore', optional ? 'ignore' : 'inherit', 'inherit'],
});
if (result.status !== 0) skip(`node-gyp exited with ${result.status ?? result.signal}`);
