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
