// Users and groups in a root with 1,000 users: op-dbus (in-process, files edited under the
// shadow-utils lock, one verified transaction) against shadow-utils' useradd/userdel --root, and
// reading one user against glibc's getent (run in a chroot of the same root, so both read the
// same files).
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { createUsersPlugin } from '@opdbus/plugins-users';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { has, measure, ms, ratio, sh, table } from '../lib.mjs';

export const title = 'users: create, remove and read a user among 1,000';

const USERS = 1000;

async function makeRoot() {
  const root = await mkdtemp(join(tmpdir(), 'opdbus-bench-users-'));
  await mkdir(join(root, 'etc'), { recursive: true });
  const passwd = ['root:x:0:0:root:/root:/bin/bash'];
  const shadow = ['root:*:19000:0:99999:7:::'];
  const group = ['root:x:0:', 'users:x:100:'];
  const gshadow = ['root:*::', 'users:*::'];
  for (let i = 0; i < USERS; i++) {
    passwd.push(`u${i}:x:${3000 + i}:${3000 + i}:User ${i}:/home/u${i}:/bin/bash`);
    shadow.push(`u${i}:!:19000:0:99999:7:::`);
    group.push(`u${i}:x:${3000 + i}:`);
    gshadow.push(`u${i}:!::`);
  }
  for (const [name, lines, mode] of [
    ['passwd', passwd, 0o644],
    ['shadow', shadow, 0o640],
    ['group', group, 0o644],
    ['gshadow', gshadow, 0o640],
  ])
    await writeFile(join(root, 'etc', name), `${lines.join('\n')}\n`, { mode });
  await writeFile(
    join(root, 'etc', 'login.defs'),
    'UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\n',
  );
  // getent and the libraries it loads, so that `chroot ROOT getent` reads ROOT's files.
  for (const file of [
    '/usr/bin/getent',
    ...[...sh('ldd', ['/usr/bin/getent']).matchAll(/(\/\S+)/g)].map((m) => m[1]),
  ]) {
    await mkdir(join(root, dirname(file)), { recursive: true });
    await copyFile(file, join(root, file));
  }
  await writeFile(join(root, 'etc', 'nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\n');
  return root;
}

export async function run({ log }) {
  const root = await makeRoot();
  const stateDir = await mkdtemp(join(tmpdir(), 'opdbus-bench-users-state-'));
  try {
    const plugin = createUsersPlugin();
    const registry = new PluginRegistry([plugin]);
    const engine = new Engine({ registry, stateDir, target: { root } });
    const ctx = engine.context('users');
    const doc = (state) =>
      parseStateDocument(
        JSON.stringify({ version: 1, plugins: { users: { users: { bench: { uid: 2000, state } } } } }),
        { source: 'bench', registry },
      );

    log('read one user');
    const query = await measure(() => plugin.query(ctx, { scope: { users: { u500: {} } } }), {
      iterations: 50,
    });
    const getent = await measure(() => sh('chroot', [root, '/usr/bin/getent', 'passwd', 'u500']), {
      iterations: 50,
    });

    log('create and remove a user');
    const create = [];
    const remove = [];
    for (let i = 0; i < 23; i++) {
      const t0 = performance.now();
      await engine.apply(doc('present'));
      const t1 = performance.now();
      await engine.apply(doc('absent'));
      const t2 = performance.now();
      if (i >= 3) {
        create.push(t1 - t0);
        remove.push(t2 - t1);
      }
    }
    const useradd = has('useradd')
      ? await measure(
          () => {
            sh('useradd', ['--root', root, '-u', '2000', 'bench']);
            sh('userdel', ['--root', root, 'bench']);
          },
          { iterations: 20 },
        )
      : undefined;
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ours = median(create) + median(remove);

    return [
      table(
        ['Task', 'op-dbus', 'shadow-utils / glibc', 'Ratio'],
        [
          [
            `Read one user of ${USERS}`,
            `${ms(query.median)} (scoped query: passwd, shadow, group parsed)`,
            `${ms(getent.median)} (\`chroot ROOT getent passwd\`, a process)`,
            ratio(getent.median, query.median) + ' faster',
          ],
          [
            'Create a user, then remove it',
            `${ms(ours)} (${ms(median(create))} + ${ms(median(remove))}; two transactions: lock, checkpoint, fsync'd journal, atomic writes, verify)`,
            `${ms(useradd?.median)} (\`useradd --root\` + \`userdel --root\`, no verify, no rollback)`,
            useradd ? ratio(ours, useradd.median) + ' the time' : 'n/a',
          ],
        ],
      ),
      '',
      'Both sides take /etc/.pwd.lock and rewrite the files by rename; op-dbus also fsyncs each file and',
      'its directory, journals the transaction before the first write, and re-reads the files to verify',
      'the result, which is what makes a failed or interrupted change roll back to the exact old bytes.',
    ].join('\n');
  } finally {
    await rm(root, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  }
}
