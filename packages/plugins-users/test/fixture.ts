import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A hash of "secret" made with `openssl passwd -6 -salt opdbus secret`. */
export const HASH =
  '$6$opdbus$bQ4NUrUgBekraevyiG.dLVUoW3WRBiCCKTjA1VtxtfJ6w7SYWeMNQ3Rp49N5OXZF4h2FoHTJmpY9vVhaTIowX.';

/** Content of the fixture's files: comments, a NIS line and odd entries that must survive edits. */
export const fixtureFiles = {
  passwd:
    'root:x:0:0:root:/root:/bin/bash\n# keep this comment\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nodd:x:999:999:has  two  spaces , and commas:/nonexistent:/usr/sbin/nologin:extra\n+@netgroup\n',
  group: 'root:x:0:\ndaemon:x:1:\nusers:x:100:\nodd:x:999:\nadm:x:4:odd',
  shadow: 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nodd:!*:19000::::::\n',
  gshadow: 'root:*::\ndaemon:*::\nusers:*::\nodd:!::\nadm:*::odd\n',
  'login.defs': '# test\nUID_MIN 2000\nUID_MAX 2999\nGID_MIN 2000\nGID_MAX 2999\nHOME_MODE 0750\n',
} as const;

/** A throwaway root with /etc/{passwd,group,shadow,gshadow,login.defs,skel}. */
export async function makeRoot(prefix = 'opdbus-users-'): Promise<{ root: string; remove(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(root, 'etc', 'skel', '.config'), { recursive: true });
  await mkdir(join(root, 'home'), { mode: 0o755 });
  for (const [name, text] of Object.entries(fixtureFiles)) await writeFile(join(root, 'etc', name), text);
  await chmod(join(root, 'etc', 'shadow'), 0o640);
  await chmod(join(root, 'etc', 'gshadow'), 0o640);
  await chown(join(root, 'etc', 'shadow'), 0, 42);
  await writeFile(join(root, 'etc', 'skel', '.profile'), '# skel profile\n');
  await writeFile(join(root, 'etc', 'skel', '.config', 'app.conf'), 'x=1\n', { mode: 0o600 });
  return { root, remove: () => rm(root, { recursive: true, force: true }) };
}
