import { describe, expect, it } from 'vitest';
import { JsonStreamParser } from './jsonStream.js';

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('JsonStreamParser', () => {
  it('splits concatenated values with and without whitespace between them', () => {
    const p = new JsonStreamParser();
    expect(p.push(enc('{"id":1,"result":[]}{"id":2}\n [1,[2]] {"a":{}}'))).toEqual([
      { id: 1, result: [] },
      { id: 2 },
      [1, [2]],
      { a: {} },
    ]);
    expect(p.partial).toBe(false);
  });

  it('reassembles a value split at every possible byte, including inside strings, escapes and UTF-8', () => {
    const text = '{"s":"a}\\"b{\\\\","u":"Grüße 🙂","n":[1,{"k":"]"}]}{"next":true}';
    const bytes = enc(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new JsonStreamParser();
      const first = p.push(bytes.subarray(0, cut));
      const second = p.push(bytes.subarray(cut));
      expect([...first, ...second]).toEqual([
        { s: 'a}"b{\\', u: 'Grüße 🙂', n: [1, { k: ']' }] },
        { next: true },
      ]);
    }
  });

  it('feeds one byte at a time', () => {
    const p = new JsonStreamParser();
    const values: unknown[] = [];
    for (const byte of enc('{"method":"update","params":[null,{"T":{"u":{"new":{"x":"\\\\"}}}}],"id":null}'))
      values.push(...p.push(Uint8Array.of(byte)));
    expect(values).toEqual([
      { method: 'update', params: [null, { T: { u: { new: { x: '\\' } } } }], id: null },
    ]);
  });

  it('does not keep a reference to the caller’s chunk for a partial value', () => {
    const p = new JsonStreamParser();
    const chunk = enc('{"a":"bc');
    p.push(chunk);
    chunk.fill(0x20);
    expect(p.push(enc('d"}'))).toEqual([{ a: 'bcd' }]);
  });

  it('rejects a stream that does not start a JSON object or array', () => {
    const p = new JsonStreamParser();
    expect(() => p.push(enc('HTTP/1.1 400'))).toThrow(
      expect.objectContaining({
        code: 'OPDBUS_ERR_OVSDB_PROTOCOL',
        message: expect.stringContaining('0x48'),
      }),
    );
  });

  it('rejects invalid JSON inside a balanced value, and recovers after reset', () => {
    const p = new JsonStreamParser();
    expect(() => p.push(enc('{"a":01}'))).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_OVSDB_PROTOCOL' }),
    );
    expect(p.push(enc('{"a":1}'))).toEqual([{ a: 1 }]);
  });

  it('bounds the size of one value', () => {
    const p = new JsonStreamParser({ maxValueBytes: 16 });
    expect(p.push(enc('{"a":"0123"}'))).toEqual([{ a: '0123' }]);
    expect(() => p.push(enc('{"a":"0123456789'))).not.toThrow();
    expect(() => p.push(enc('abcdefgh"}'))).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_OVSDB_PROTOCOL' }),
    );
    expect(() => p.push(enc('{"a":"0123456789abcdef"}'))).toThrow(/exceeds 16 bytes/);
  });
});
