import { describe, expect, it } from 'vitest';
import { packagesProgressBar } from './progress.js';

function stream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { isTTY, text: '', write: (chunk: string) => ((s.text += chunk), true) };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

describe('packagesProgressBar', () => {
  it('draws one line per change, redrawn in place, ended at 100%', () => {
    const out = stream(true);
    const { packagesProgress } = packagesProgressBar(out);
    for (const percentage of [undefined, 0, 50, 50, 100])
      packagesProgress!({ change: 'opdbus-gamma', percentage, status: 9 });
    packagesProgress!({ change: 'opdbus-beta', percentage: 20, status: 9 });
    const lines = out.text.split(/\r/).filter((l) => l !== '');
    expect(lines[0]).toBe(`opdbus-gamma [${' '.repeat(30)}]   ?%\x1b[K`);
    expect(lines).toContain(`opdbus-gamma [${'#'.repeat(15)}${' '.repeat(15)}]  50%\x1b[K`);
    expect(lines).toHaveLength(5); // the repeated 50% is not redrawn
    expect(out.text).toContain(`opdbus-gamma [${'#'.repeat(30)}] 100%\x1b[K\n`);
    expect(out.text.endsWith(`opdbus-beta [${'#'.repeat(6)}${' '.repeat(24)}]  20%\x1b[K`)).toBe(true);
  });
  it('draws nothing when the stream is not a terminal', () => {
    expect(packagesProgressBar(stream(false))).toEqual({});
  });
});
