import { isOpdbusError } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { formatCpuList, formatCpuMask, parseCpuList, parseCpuMask } from './cpuList.js';

describe('kernel list format', () => {
  it('parses ranges, single numbers, empty lists and grouped ranges', () => {
    expect(parseCpuList('0-3,8-11\n')).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    expect(parseCpuList('5')).toEqual([5]);
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList(' \n')).toEqual([]);
    expect(parseCpuList('3, 1-2 ,1')).toEqual([1, 2, 3]);
    expect(parseCpuList('0-15:2/4')).toEqual([0, 1, 4, 5, 8, 9, 12, 13]);
    expect(parseCpuList('8-11,0-3')).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    expect(parseCpuList('0-2,2-4')).toEqual([0, 1, 2, 3, 4]);
  });

  it('reads values that older kernels end with "\\n\\0" (as C strings)', () => {
    expect(parseCpuList('0-7\n\0')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(parseCpuList('0\n\0')).toEqual([0]);
    expect(parseCpuList('0, 2\n\0garbage')).toEqual([0, 2]);
    expect(parseCpuMask('00000000,00000011\n\0')).toEqual([0, 4]);
  });

  it('formats runs as ranges', () => {
    expect(formatCpuList([0, 1, 2, 3, 8, 9, 10, 11])).toBe('0-3,8-11');
    expect(formatCpuList([5, 1, 3, 2, 2])).toBe('1-3,5');
    expect(formatCpuList([])).toBe('');
    expect(formatCpuList([7])).toBe('7');
  });

  it('round-trips', () => {
    const cpus = [0, 2, 3, 4, 63, 64, 65, 127, 200];
    expect(parseCpuList(formatCpuList(cpus))).toEqual(cpus);
  });

  it('refuses what is not a list, naming the text and what it was', () => {
    for (const bad of [
      'a',
      '3-1',
      '1-',
      '0-8:0/4',
      '0-8:5/4',
      '-1',
      '1,,2',
      '1,',
      ',1',
      '0-99999999',
      '2,1-3x',
    ]) {
      let err: unknown;
      try {
        parseCpuList(bad, 'node 1 cpulist');
      } catch (e) {
        err = e;
      }
      expect(isOpdbusError(err, 'OPDBUS_ERR_NUMA_CPU_LIST'), bad).toBe(true);
      expect((err as Error).message).toContain(`node 1 cpulist "${bad}"`);
    }
  });
});

describe('kernel mask format', () => {
  it('parses comma-separated 32-bit words, most significant first', () => {
    expect(parseCpuMask('0000000f')).toEqual([0, 1, 2, 3]);
    expect(parseCpuMask('00000001,00000000,80000001\n')).toEqual([0, 31, 64]);
    expect(parseCpuMask('00000000,00000000')).toEqual([]);
  });

  it('formats with a minimum number of words, as sysfs sizes masks to the possible CPUs', () => {
    expect(formatCpuMask([0, 1, 2, 3])).toBe('0000000f');
    expect(formatCpuMask([0, 31, 64])).toBe('00000001,00000000,80000001');
    expect(formatCpuMask([1], 2)).toBe('00000000,00000002');
    expect(parseCpuMask(formatCpuMask([5, 40, 255], 8))).toEqual([5, 40, 255]);
  });

  it('refuses what is not a mask', () => {
    expect(() => parseCpuMask('xyz')).toThrow(/not a 32-bit hex word/);
    expect(() => parseCpuMask('123456789')).toThrow(/OPDBUS|not a 32-bit hex word/);
  });
});
