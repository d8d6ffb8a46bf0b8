import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { OpdbusError } from '@opdbus/core';

/** What a bearer token may do: `read` (queries, plans) or `write` (also apply, confirm, rollback). */
export type TokenScope = 'read' | 'write';

/** A token from a token file, without its secret. */
export interface TokenIdentity {
  /** Its name (the actor recorded in the ledger for what it does), or `FILE:LINE` when unnamed. */
  name: string;
  /** What it may do. */
  scope: TokenScope;
}

interface TokenEntry extends TokenIdentity {
  digest: Buffer;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The bearer tokens of a token file, shared by the daemon's API and the MCP server's HTTP transport.
 *
 * The file has one token per line: `TOKEN [SCOPE [NAME]]`, fields separated by spaces; SCOPE is
 * `read` (the default) or `write`; `#` starts a comment line. A token is at least 16 characters.
 * The file must not be readable by group or others (like ssh's keys), since it holds secrets.
 * Tokens are compared by their SHA-256 digests with `timingSafeEqual`, every entry every time, so
 * neither the result nor the time tells how much of a wrong token was right.
 *
 * @example
 * ```ts
 * const tokens = TokenFile.load('/etc/opdbus/tokens'); // "s3cr3t-0123456789 write ci"
 * tokens.check('s3cr3t-0123456789'); // { name: 'ci', scope: 'write' }
 * TokenFile.allows({ name: 'ci', scope: 'read' }, 'write'); // false
 * ```
 */
export class TokenFile {
  readonly #entries: TokenEntry[];

  private constructor(
    /** The file the tokens came from. */
    readonly path: string,
    entries: TokenEntry[],
  ) {
    this.#entries = entries;
  }

  /** How many tokens the file holds. */
  get size(): number {
    return this.#entries.length;
  }

  /** The names and scopes of the tokens (no secrets). */
  identities(): TokenIdentity[] {
    return this.#entries.map(({ name, scope }) => ({ name, scope }));
  }

  /**
   * Read and check a token file. Throws `OPDBUS_ERR_TOKEN_FILE` naming the file and line for a file
   * that cannot be read, is readable by group or others, holds no token, or has a bad line.
   */
  static load(path: string): TokenFile {
    const fail = (why: string, cause?: unknown): never => {
      throw new OpdbusError('OPDBUS_ERR_TOKEN_FILE', `${path}: ${why}`, {
        data: { file: path },
        ...(cause === undefined ? {} : { cause }),
      });
    };
    let text = '';
    try {
      const st = statSync(path);
      if (!st.isFile()) fail('is not a regular file; give a file with one token per line.');
      if ((st.mode & 0o077) !== 0)
        fail(`is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it.`);
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      fail(`cannot be read: ${(err as Error).message}`, err);
    }
    const entries: TokenEntry[] = [];
    const names = new Set<string>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const at = `${path}:${i + 1}`;
      const [token = '', scope = 'read', name = at, ...rest] = line.split(/\s+/);
      if (rest.length > 0)
        fail(`line ${i + 1}: too many fields; write TOKEN [read|write [NAME]] (names have no spaces).`);
      if (token.length < 16) fail(`line ${i + 1}: a token must be at least 16 characters long.`);
      if (scope !== 'read' && scope !== 'write')
        fail(`line ${i + 1}: scope "${scope.slice(0, 20)}" is neither read nor write.`);
      if (names.has(name)) fail(`line ${i + 1}: the name "${name}" is used twice; names must be unique.`);
      names.add(name);
      entries.push({ name, scope: scope as TokenScope, digest: sha256(token) });
    });
    if (entries.length === 0) fail('holds no token; write one per line: TOKEN [read|write [NAME]].');
    return new TokenFile(path, entries);
  }

  /** The identity of `presented`, or undefined when it is no token of this file (constant time). */
  check(presented: string): TokenIdentity | undefined {
    const digest = sha256(presented);
    let found: TokenEntry | undefined;
    for (const entry of this.#entries) {
      // Every entry is compared, so the time does not depend on which one matched.
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry;
    }
    return found === undefined ? undefined : { name: found.name, scope: found.scope };
  }

  /** The token in an `Authorization: Bearer TOKEN` header value, if it has that form. */
  static bearer(header: string | undefined): string | undefined {
    const match = /^Bearer ([^\s]+)\s*$/i.exec(header ?? '');
    return match?.[1];
  }

  /** Whether `identity` may do what `needed` asks (`write` includes `read`). */
  static allows(identity: TokenIdentity, needed: TokenScope): boolean {
    return needed === 'read' || identity.scope === 'write';
  }
}
