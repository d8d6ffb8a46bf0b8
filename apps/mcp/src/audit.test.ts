import { describe, expect, it } from 'vitest';
import { redactArguments } from './audit.js';
import { TokenBucket } from './rateLimit.js';

describe('redactArguments', () => {
  it('withholds secrets by name and keeps a document only by hash', () => {
    const document =
      'version: 1\nplugins:\n  wireguard: { interfaces: [{ name: wg0, privateKey: c2VjcmV0 }] }\n';
    const out = redactArguments({
      document,
      txId: 'abc',
      nested: { password: 'hunter2', apiToken: 'x', keep: 1 },
    });
    expect(out).toMatchObject({
      document: {
        $hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        $bytes: Buffer.byteLength(JSON.stringify(document)),
      },
      txId: 'abc',
      nested: { password: { $redacted: true }, apiToken: { $redacted: true }, keep: 1 },
    });
    expect(JSON.stringify(out)).not.toContain('c2VjcmV0');
    expect(JSON.stringify(out)).not.toContain('hunter2');
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket({ perMinute: 6, burst: 2, now: () => now });
    expect(bucket.take().ok).toBe(true);
    expect(bucket.take().ok).toBe(true);
    expect(bucket.take()).toEqual({ ok: false, retryAfterS: 10 });
    now += 10_000;
    expect(bucket.take().ok).toBe(true);
    expect(bucket.take().ok).toBe(false);
  });
});
