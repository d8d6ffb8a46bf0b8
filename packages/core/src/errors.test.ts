import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OpdbusError, isOpdbusError } from './errors.js';
import type * as Errors from './errors.js';

describe('OpdbusError', () => {
  it('is recognised across copies of @opdbus/core in one process', async () => {
    // A second instance of the module, as a bundled app and a plugin package each with its own copy.
    const url = `${pathToFileURL(new URL('./errors.ts', import.meta.url).pathname).href}?copy=2`;
    const other = (await import(/* @vite-ignore */ url)) as typeof Errors;
    expect(other.OpdbusError).not.toBe(OpdbusError);
    const foreign = new other.OpdbusError('OPDBUS_ERR_LOCKED', 'held');
    expect(foreign instanceof OpdbusError).toBe(true);
    expect(isOpdbusError(foreign, 'OPDBUS_ERR_LOCKED')).toBe(true);
    expect(new OpdbusError('OPDBUS_ERR_LOCKED', 'held') instanceof other.OpdbusError).toBe(true);
  });

  it('is not any error', () => {
    expect(new Error('x') instanceof OpdbusError).toBe(false);
    expect(Object.assign(new Error('x'), { code: 'OPDBUS_ERR_LOCKED' }) instanceof OpdbusError).toBe(false);
    const values: unknown[] = [null, 'OPDBUS_ERR_LOCKED', { code: 'OPDBUS_ERR_LOCKED' }];
    for (const value of values) expect(value instanceof OpdbusError).toBe(false);
  });
});
