/**
 * CPU and node sets in the two formats the kernel prints: the list format (`0-3,8-11`, cpulist(5)
 * and sysfs `*_list` files) and the mask format (`ff,00000000`, comma-separated 32-bit words,
 * most significant first, as sysfs `cpumap` and `*_siblings` files).
 */
import { OpdbusError } from '@opdbus/core';

const rangePattern = /^(\d+)(?:-(\d+)(?::(\d+)\/(\d+))?)?$/;
/** Guard against absurd input ("0-4294967295"): the kernel's NR_CPUS limit is far below. */
const maxIndex = 1 << 20;

function listError(text: string, what: string, detail: string): OpdbusError {
  return new OpdbusError(
    'OPDBUS_ERR_NUMA_CPU_LIST',
    `${what} "${text.trim()}" is not a valid list: ${detail}; expected the kernel list format, e.g. "0-3,8-11".`,
    { data: { text, what } },
  );
}

/** The text before the first NUL: older kernels end some sysfs values with "\n\0". */
function beforeNul(text: string): string {
  const nul = text.indexOf('\0');
  return nul === -1 ? text : text.slice(0, nul);
}

/**
 * Parse the kernel list format: `0-3,8-11`, `5`, an empty string, and the grouped form
 * `0-15:2/4` (the first 2 of every 4, as bitmap_parselist). Whitespace around elements is allowed,
 * and so is what follows a NUL (older kernels end some sysfs values with "\n\0").
 * Returns the members sorted and without duplicates.
 *
 * @param what - what the text is, for the error message (e.g. "node 1 cpulist").
 * @throws OpdbusError `OPDBUS_ERR_NUMA_CPU_LIST` when the text is not a list.
 */
export function parseCpuList(raw: string, what = 'CPU list'): number[] {
  const text = beforeNul(raw);
  const fast = parseSimpleList(text);
  if (fast !== undefined) return fast;
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const out = new Set<number>();
  for (const part of trimmed.split(',')) {
    const element = part.trim();
    const match = rangePattern.exec(element);
    if (match === null) throw listError(text, what, `"${element}" is neither N nor N-M`);
    const start = Number(match[1]);
    const end = match[2] === undefined ? start : Number(match[2]);
    if (end < start) throw listError(text, what, `range "${element}" ends before it starts`);
    if (end > maxIndex) throw listError(text, what, `${end} is beyond any CPU or node number`);
    const used = match[3] === undefined ? 1 : Number(match[3]);
    const group = match[4] === undefined ? 1 : Number(match[4]);
    if (group === 0 || used === 0 || used > group)
      throw listError(text, what, `group "${element}" needs 0 < used ≤ group size`);
    for (let i = start; i <= end; i++) if ((i - start) % group < used) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * The common case, as the kernel prints it: ascending `N` and `N-M` elements separated by commas,
 * with a final newline. Returns undefined for anything else (the general parser handles it).
 */
function parseSimpleList(text: string): number[] | undefined {
  const out: number[] = [];
  let end = text.length;
  while (end > 0 && (text.charCodeAt(end - 1) === 10 || text.charCodeAt(end - 1) === 32)) end--;
  let i = 0;
  while (i < end) {
    let start = 0;
    let digits = 0;
    for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) {
      start = start * 10 + (c - 48);
      digits++;
    }
    if (digits === 0 || digits > 7) return undefined;
    let last = start;
    if (i < end && text.charCodeAt(i) === 45) {
      i++;
      last = 0;
      digits = 0;
      for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) {
        last = last * 10 + (c - 48);
        digits++;
      }
      if (digits === 0 || digits > 7 || last < start || last > maxIndex) return undefined;
    }
    if (out.length > 0 && start <= out[out.length - 1]!) return undefined;
    for (let n = start; n <= last; n++) out.push(n);
    if (i === end) return out;
    if (text.charCodeAt(i) !== 44 || i + 1 === end) return undefined;
    i++;
  }
  return out;
}

/**
 * Format numbers in the kernel list format: `[0, 1, 2, 3, 8]` → `"0-3,8"`; `[]` → `""`.
 * Input need not be sorted; duplicates are ignored.
 */
export function formatCpuList(members: Iterable<number>): string {
  const sorted = [...new Set(members)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i]!;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) {
      end++;
      i++;
    }
    parts.push(end === start ? String(start) : `${start}-${end}`);
    i++;
  }
  return parts.join(',');
}

/**
 * Parse the kernel mask format: comma-separated 32-bit hexadecimal words, most significant first
 * (`00000000,0000000f` → `[0, 1, 2, 3]`). What follows a NUL is ignored, as in
 * {@link parseCpuList}.
 *
 * @throws OpdbusError `OPDBUS_ERR_NUMA_CPU_LIST` when the text is not a mask.
 */
export function parseCpuMask(raw: string, what = 'CPU mask'): number[] {
  const text = beforeNul(raw);
  const fast = parseSimpleMask(text);
  if (fast !== undefined) return fast;
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const words = trimmed.split(',');
  const out: number[] = [];
  for (let w = 0; w < words.length; w++) {
    const word = words[words.length - 1 - w]!;
    if (!/^[0-9a-fA-F]{1,8}$/.test(word)) throw listError(text, what, `"${word}" is not a 32-bit hex word`);
    const value = parseInt(word, 16);
    if (value === 0) continue;
    for (let bit = 0; bit < 32; bit++) if ((value >>> bit) & 1) out.push(w * 32 + bit);
  }
  // Words are visited least significant first and bits in order: already sorted.
  return out;
}

/** The hex value of a character code, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * The mask format as the kernel prints it (words of 1 to 8 hex digits, a final newline), without
 * intermediate strings; undefined for anything else (the general parser handles it).
 */
function parseSimpleMask(text: string): number[] | undefined {
  let end = text.length;
  while (end > 0 && (text.charCodeAt(end - 1) === 10 || text.charCodeAt(end - 1) === 32)) end--;
  if (end === 0) return undefined;
  const out: number[] = [];
  let word = 0;
  let i = end;
  while (i > 0) {
    let value = 0;
    let digits = 0;
    while (i > 0 && text.charCodeAt(i - 1) !== 44) {
      const d = hexDigit(text.charCodeAt(i - 1));
      if (d === -1 || digits === 8) return undefined;
      value += d * 16 ** digits;
      digits++;
      i--;
    }
    if (digits === 0) return undefined;
    for (let bit = 0; value !== 0; bit++, value = Math.floor(value / 2))
      if (value % 2 === 1) out.push(word * 32 + bit);
    word++;
    if (i > 0) {
      i--; // the comma
      if (i === 0) return undefined;
    }
  }
  return out;
}

/**
 * Format numbers in the kernel mask format (`[0, 1, 2, 3]` → `"0000000f"`), with at least
 * `minWords` 32-bit words, as sysfs prints masks sized to the possible CPUs.
 */
export function formatCpuMask(members: Iterable<number>, minWords = 1): string {
  const list = [...new Set(members)];
  const highest = list.length === 0 ? 0 : Math.max(...list);
  const words = Math.max(minWords, Math.floor(highest / 32) + 1);
  const values = new Array<number>(words).fill(0);
  for (const m of list) values[Math.floor(m / 32)]! |= 1 << (m % 32);
  return values
    .reverse()
    .map((v) => (v >>> 0).toString(16).padStart(8, '0'))
    .join(',');
}
