import { describe, expect, it } from 'vitest';
import { checkListeners, parseListener } from './listen.js';

describe('listeners', () => {
  it('parses unix and tcp specs', () => {
    expect(parseListener('unix:/run/x.sock')).toMatchObject({ kind: 'unix', path: '/run/x.sock' });
    expect(parseListener('tcp:127.0.0.1:9180')).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 9180 });
    expect(parseListener('tcp:[::1]:9180')).toMatchObject({ kind: 'tcp', host: '::1', port: 9180 });
    expect(() => parseListener('http://x')).toThrow(/unix:PATH or tcp:HOST:PORT/);
  });

  it('refuses TCP without tokens, and a non-loopback address without TLS', () => {
    const lo = [parseListener('tcp:127.0.0.1:9180')];
    const wide = [parseListener('tcp:0.0.0.0:9180')];
    expect(() => checkListeners(lo, { tokens: false, tls: false })).toThrow(/--token-file/);
    expect(() => checkListeners(lo, { tokens: true, tls: false })).not.toThrow();
    expect(() => checkListeners(wide, { tokens: true, tls: false })).toThrow(/TLS/);
    expect(() => checkListeners(wide, { tokens: true, tls: true })).not.toThrow();
  });
});
