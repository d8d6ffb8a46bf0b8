import { defineErrorCodes, errorCodeInfo, exitCategories, isErrorCodeMap } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { exitCodeFor, exitCodes } from './exitCodes.js';

describe('exit codes from the error codes’ definitions', () => {
  it('gives every exit category a distinct exit code', () => {
    const codes = exitCategories.map((category) => exitCodes[category].code);
    expect(new Set(codes).size).toBe(exitCategories.length);
    expect(codes).not.toContain(0);
  });

  it('takes the exit category of a code from the map that defines it', () => {
    const map = defineErrorCodes({
      OPDBUS_ERR_EXIT_TEST_BUSY: { summary: 'busy', remedy: 'wait', exit: 'CONFLICT' },
      OPDBUS_ERR_EXIT_TEST_PLAIN: { summary: 'plain', remedy: 'read it' },
    });
    expect(isErrorCodeMap(map)).toBe(true);
    expect(isErrorCodeMap({ ...map })).toBe(false);
    expect(errorCodeInfo('OPDBUS_ERR_EXIT_TEST_BUSY')?.exit).toBe('CONFLICT');
    expect(exitCodeFor('OPDBUS_ERR_EXIT_TEST_BUSY')).toBe(exitCodes.CONFLICT.code);
    // Without an exit category: INVALID_INPUT when the error names a document path, else INTERNAL.
    expect(exitCodeFor('OPDBUS_ERR_EXIT_TEST_PLAIN')).toBe(exitCodes.INTERNAL.code);
    expect(exitCodeFor('OPDBUS_ERR_EXIT_TEST_PLAIN', { path: 'plugins.x' })).toBe(
      exitCodes.INVALID_INPUT.code,
    );
    // The framework's own codes are defined with theirs.
    expect(exitCodeFor('OPDBUS_ERR_STATE_INVALID')).toBe(3);
    expect(exitCodeFor('OPDBUS_ERR_RESTORE_FAILED')).toBe(6);
  });
});
