import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeBindings } from './codegen.js';
import { generateShippedBindings } from './shippedBindings.js';

const packageDir = fileURLToPath(new URL('../', import.meta.url));

describe('shipped bindings (src/bindings)', () => {
  it('are what codegen makes of interfaces/*.xml (OPDBUS_UPDATE_BINDINGS=1 rewrites them)', async () => {
    const files = await generateShippedBindings(`${packageDir}interfaces`);
    if (process.env.OPDBUS_UPDATE_BINDINGS === '1') await writeBindings(files, `${packageDir}src/bindings`);
    for (const file of files) {
      expect(readFileSync(`${packageDir}src/bindings/${file.path}`, 'utf8'), file.path).toBe(file.content);
    }
    expect(files.map((f) => f.path).sort()).toEqual([
      'hostname1.ts',
      'index.ts',
      'login1Manager.ts',
      'login1Seat.ts',
      'login1Session.ts',
      'login1User.ts',
      'systemd1Manager.ts',
      'systemd1Service.ts',
      'systemd1Timer.ts',
      'systemd1Unit.ts',
      'timedate1.ts',
    ]);
  });
});

describe('writeBindings', () => {
  it('writes only plain .ts file names inside the output directory', async () => {
    const { mkdtemp, readdir, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/opdbus-bindings-`);
    try {
      for (const path of ['../evil.ts', '/etc/cron.d/x.ts', 'a/b.ts', 'x.js', '..ts'])
        await expect(writeBindings([{ path, content: '' }], `${dir}/out`), path).rejects.toMatchObject({
          code: 'OPDBUS_ERR_PATH_UNSAFE',
        });
      expect(await readdir(dir)).toEqual([]);
      await writeBindings([{ path: 'fine.ts', content: 'export {};\n' }], `${dir}/out`);
      expect(await readdir(`${dir}/out`)).toEqual(['fine.ts']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
