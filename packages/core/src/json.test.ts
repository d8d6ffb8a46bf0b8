import { describe, expect, it } from 'vitest';
import { canonicalJson, hashJson } from './json.js';

describe('canonicalJson (RFC 8785)', () => {
  it('sorts members by UTF-16 code units and drops whitespace', () => {
    // RFC 8785 section 3.2.3 sorting example (keys chosen to exercise code-unit order).
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Object.keys would list "1" first (an array index); read the order off the text instead.
    const text = canonicalJson(input);
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) =>
      text.indexOf(JSON.stringify(k) + ':'),
    );
    expect(order.every((pos, i) => pos >= 0 && (i === 0 || pos > order[i - 1]!))).toBe(true);
    expect(text).not.toMatch(/\s(?=[:,{}])/);
  });

  it('serialises numbers in ECMAScript shortest form, as RFC 8785 appendix B', () => {
    expect(canonicalJson([0, -0, 1e21, 1e-7, 333333333.3333333, 4.5, 2e-3, 9007199254740992])).toBe(
      '[0,0,1e+21,1e-7,333333333.3333333,4.5,0.002,9007199254740992]',
    );
  });

  it('matches the RFC 8785 section 3.2.2 example', () => {
    const input = {
      numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
      string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/',
      literals: [null, true, false],
    };
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('refuses what JSON cannot carry', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/NaN/);
    expect(() => canonicalJson({ a: 1n })).toThrow(/bigint/);
    expect(() => canonicalJson({ a: { b: [1, Number.POSITIVE_INFINITY] } })).toThrow(
      'canonicalJson: $.a.b[1] is Infinity, which JSON cannot carry',
    );
    expect(() => canonicalJson([{ f: () => 1 }])).toThrow(
      'canonicalJson: $[0].f is a function, which JSON cannot carry',
    );
    expect(canonicalJson({ b: undefined, a: [undefined], d: new Date(0) })).toBe(
      '{"a":[null],"d":"1970-01-01T00:00:00.000Z"}',
    );
  });

  it('hashes equal values equally regardless of member order', () => {
    expect(hashJson({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(hashJson({ b: [1, { d: 3, c: 2 }], a: 1 }));
    expect(hashJson({ a: 1 })).not.toBe(hashJson({ a: 2 }));
  });
});
