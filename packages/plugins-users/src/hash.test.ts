import { describe, expect, it } from 'vitest';
import { cryptHashProblem, isCryptHash } from './hash.js';

describe('crypt hashes', () => {
  it('accepts the hashes crypt(3) writes', () => {
    for (const hash of [
      '$y$j9T$aVW3dSsMXh6fxO1bNS0/S/$5LbiHKiMHx3UoXeHn6GYkQTTZ1bQe7bd7YdoXPAzKE/',
      '$6$opdbus$bQ4NUrUgBekraevyiG.dLVUoW3WRBiCCKTjA1VtxtfJ6w7SYWeMNQ3Rp49N5OXZF4h2FoHTJmpY9vVhaTIowX.',
      '$6$rounds=5000$opdbus$bQ4NUrUgBekraevyiG.dLVUoW3WRBiCCKTjA1VtxtfJ6w7SYWeMNQ3Rp49N5OXZF4h2FoHTJmpY9vVhaTIowX.',
      '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
      '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/',
    ])
      expect(isCryptHash(hash), hash).toBe(true);
  });

  it('refuses clear text, DES and truncated hashes, saying what to do', () => {
    expect(cryptHashProblem('hunter2')).toMatch(/never a clear-text password/);
    expect(cryptHashProblem('abJnggxhB/yWI')).toMatch(/never a clear-text password/);
    expect(cryptHashProblem('$6$salt$short')).toMatch(/not a complete sha512crypt hash/);
    expect(cryptHashProblem('$y$j9T$x$')).toMatch(/yescrypt/);
  });
});
