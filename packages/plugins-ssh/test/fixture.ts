import { execFileSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh key pair made by ssh-keygen; returns the public key line. */
export async function makeKey(dir: string, name: string, type = 'ed25519'): Promise<string> {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name}@test`, '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

/** `ssh-keygen -lf` of a public key line: the fingerprint as OpenSSH prints it. */
export function keygenFingerprint(dir: string, pub: string): string {
  const out = execFileSync('ssh-keygen', ['-lf', '-'], { input: `${pub}\n`, cwd: dir, encoding: 'utf8' });
  return out.split(' ')[1]!;
}

/** A throwaway root with alice (uid 2100, home /home/alice with an authorized_keys op-dbus does not manage). */
export async function makeRoot(): Promise<{
  root: string;
  keys: string;
  unmanaged: string;
  remove(): Promise<void>;
}> {
  const root = await mkdtemp(join(tmpdir(), 'opdbus-ssh-'));
  const keys = await mkdtemp(join(tmpdir(), 'opdbus-ssh-keys-'));
  await mkdir(join(root, 'etc', 'ssh', 'sshd_config.d'), { recursive: true });
  await writeFile(
    join(root, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/bash\nalice:x:2100:2100::/home/alice:/bin/bash\n',
  );
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nalice:x:2100:\n');
  await mkdir(join(root, 'home', 'alice', '.ssh'), { recursive: true, mode: 0o700 });
  await chown(join(root, 'home', 'alice'), 2100, 2100);
  await chown(join(root, 'home', 'alice', '.ssh'), 2100, 2100);
  const unmanagedKey = await makeKey(keys, 'unmanaged');
  const unmanaged = `# written by hand\ncommand="/usr/bin/rrsync -ro /srv",no-pty ${unmanagedKey}\n`;
  await writeFile(join(root, 'home', 'alice', '.ssh', 'authorized_keys'), unmanaged, { mode: 0o600 });
  await chown(join(root, 'home', 'alice', '.ssh', 'authorized_keys'), 2100, 2100);
  return {
    root,
    keys,
    unmanaged,
    remove: async () => {
      await rm(root, { recursive: true, force: true });
      await rm(keys, { recursive: true, force: true });
    },
  };
}
