import { mkdtemp, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOutputFile } from './output.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-output-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeOutputFile', () => {
  it('writes a new file (0600) and replaces a regular one', async () => {
    const file = join(dir, 'bundle.json');
    expect(await writeOutputFile(file, 'one')).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await writeOutputFile(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
  });

  it('never writes through a link, into a directory, a device or a NUL-truncated name', async () => {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'KEEP');
    await symlink(victim, join(dir, 'link.json'));
    await mkdir(join(dir, 'adir'));
    for (const path of [join(dir, 'link.json'), join(dir, 'adir'), '/dev/null', `${dir}/x\0y`, `${dir}/..`]) {
      await expect(writeOutputFile(path, 'PWNED'), path).rejects.toMatchObject({
        code: 'OPDBUS_ERR_PATH_UNSAFE',
      });
    }
    expect(await readFile(victim, 'utf8')).toBe('KEEP');
  });

  it('names the directory that does not exist', async () => {
    await expect(writeOutputFile(join(dir, 'nope', 'x.json'), 'x')).rejects.toMatchObject({
      code: 'OPDBUS_ERR_OUTPUT_WRITE',
      message: expect.stringContaining(join(dir, 'nope')),
    });
  });
});
