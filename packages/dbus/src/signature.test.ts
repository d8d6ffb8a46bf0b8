import { isOpdbusError } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { formatType, isValidSignature, parseSignature, tsType, zodSchema } from './signature.js';
import { fromJson, toJson } from './values.js';
import { Variant } from './variant.js';
import { escapePathElement, isObjectPath, unescapePathElement } from './names.js';
import { formatMatchRule, matchesRule } from './connection.js';

describe('signatures', () => {
  it('parses and formats complete types', () => {
    for (const sig of ['s', 'a{sv}', 'a(sssssssssso)', '(ia(ss))', 'aay', 'a{sa{sv}}', 'v', 'ta{ou}'])
      expect(parseSignature(sig).map(formatType).join('')).toBe(sig);
    expect(parseSignature('ssb')).toHaveLength(3);
  });
  it('rejects invalid signatures with the position', () => {
    for (const sig of ['a', '(', '()', 'a{vs}', 'a{sss}', 'z', '(s', '{ss}']) {
      expect(isValidSignature(sig), sig).toBe(false);
    }
    try {
      parseSignature('a{vs}');
    } catch (err) {
      expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_SIGNATURE')).toBe(true);
      expect((err as Error).message).toContain('position 2');
    }
  });
  it('maps to TypeScript types by direction', () => {
    const [t] = parseSignature('a(st)');
    expect(tsType(t!, 'out')).toBe('Array<[string, bigint]>');
    expect(tsType(t!, 'in')).toBe('Array<[string, bigint | number]>');
    expect(tsType(parseSignature('ay')[0]!)).toBe('Uint8Array');
    expect(tsType(parseSignature('a{sv}')[0]!)).toBe('Record<string, Variant>');
  });
  it('builds zod schemas that enforce ranges and shapes', () => {
    const u = zodSchema(parseSignature('u')[0]!);
    expect(u.safeParse(5).success).toBe(true);
    expect(u.safeParse(-1).success).toBe(false);
    expect(u.safeParse(2 ** 32).success).toBe(false);
    const t = zodSchema(parseSignature('t')[0]!);
    expect(t.safeParse(2n ** 64n - 1n).success).toBe(true);
    expect(t.safeParse(-1n).success).toBe(false);
    const s = zodSchema(parseSignature('a(sv)')[0]!);
    expect(s.safeParse([['CPUWeight', new Variant('t', 100n)]]).success).toBe(true);
    expect(s.safeParse([['CPUWeight', 100]]).success).toBe(false);
    expect(zodSchema(parseSignature('o')[0]!).safeParse('not/a/path').success).toBe(false);
  });
});

describe('values', () => {
  it('converts D-Bus values to JSON and back by signature', () => {
    expect(
      toJson([new Variant('t', 5n), Buffer.from([1, 2]), { a: new Variant('s', 'x') }, 2n ** 63n]),
    ).toEqual([5, [1, 2], { a: 'x' }, '9223372036854775808']);
    expect(fromJson('t', 1024)).toBe(1024n);
    expect(fromJson('a(ss)', [['a', 'b']])).toEqual([['a', 'b']]);
    const v = fromJson('v', { signature: 'u', value: 3 }) as Variant;
    expect(v).toBeInstanceOf(Variant);
    expect(v.signature).toBe('u');
    expect(() => fromJson('b', 'yes', 'x.y')).toThrow(/x\.y: "yes" is not a valid D-Bus "b" value/);
  });
});

describe('names and match rules', () => {
  it('escapes path elements like sd-bus', () => {
    expect(escapePathElement('dbus.service')).toBe('dbus_2eservice');
    expect(escapePathElement('systemd-tmpfiles-clean.timer')).toBe('systemd_2dtmpfiles_2dclean_2etimer');
    expect(unescapePathElement('getty_40tty1_2eservice')).toBe('getty@tty1.service');
    expect(escapePathElement('')).toBe('_');
    expect(isObjectPath('/org/freedesktop/systemd1/unit/dbus_2eservice')).toBe(true);
    expect(isObjectPath('/a/')).toBe(false);
  });
  it('formats match rules and matches signals locally', () => {
    const rule = {
      sender: 'org.x',
      interface: 'org.x.I',
      member: 'M',
      pathNamespace: '/org/x',
      args: { 0: "it's" },
    };
    expect(formatMatchRule(rule)).toBe(
      `type='signal',sender='org.x',interface='org.x.I',member='M',path_namespace='/org/x',arg0='it'\\''s'`,
    );
    const message = {
      sender: ':1.5',
      path: '/org/x/a',
      interface: 'org.x.I',
      member: 'M',
      signature: 's',
      body: ["it's"],
    };
    expect(matchesRule(rule, message, () => ':1.5')).toBe(true);
    expect(matchesRule(rule, message, () => ':1.6')).toBe(false);
    expect(matchesRule({ ...rule, pathNamespace: '/org/y' }, message, () => ':1.5')).toBe(false);
    expect(matchesRule({ path: '/org/x' }, message)).toBe(false);
  });
});
